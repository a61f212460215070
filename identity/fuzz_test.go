package identity

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/test/oidctest"
)

// FuzzVerify feeds arbitrary strings to a verifier with one fixed issuer.
// Verify must never panic, must fail with a typed error, and must accept
// nothing but the validly signed seeds: a mutation cannot carry a signature.
func FuzzVerify(f *testing.F) {
	e := newEnv(f, envOpt{})
	iss := e.iss
	gh := iss.GitHubClaims
	good := map[string]bool{}
	for _, claims := range []map[string]any{gh(nil), gh(map[string]any{"aud": []string{oidctest.DefaultAudience}}), gh(map[string]any{"environment": nil})} {
		tok := iss.Mint(f, claims)
		good[tok] = true
		f.Add(tok)
	}
	for _, tok := range []string{
		iss.Mint(f, gh(nil), oidctest.WithAlg("none")),
		iss.Mint(f, gh(nil), oidctest.WithAlg("HS256")),
		iss.Mint(f, gh(nil), oidctest.WithUnpublishedKey()),
		iss.Mint(f, gh(nil), oidctest.WithUnpublishedKey(), oidctest.WithHeader("jwk", json.RawMessage(attackerJWK))),
		iss.Mint(f, gh(nil), oidctest.WithHeader("crit", []string{"b64"}), oidctest.WithHeader("b64", false)),
		iss.Mint(f, gh(nil), oidctest.WithKid(strings.Repeat("k", 300))),
		iss.Mint(f, gh(nil), oidctest.WithKid("../../x\r\n")),
		iss.Mint(f, gh(map[string]any{"exp": json.Number("1e309")})),
		iss.Mint(f, gh(map[string]any{"aud": []string{oidctest.DefaultAudience, "x"}})),
		iss.Mint(f, nil, oidctest.WithRawPayload([]byte(`{"iss":"`+iss.URL()+`","iss":"x"}`))),
		"", ".", "..", "...", "a.b.c", "e30.e30.", "e30.e30.e30", "eyJhbGciOiJub25lIn0.e30.",
		strings.Repeat(".", 100), strings.Repeat("a", MaxTokenSize+1),
	} {
		f.Add(tok)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := e.v.Verify(context.Background(), tok)
		if err == nil {
			if !good[tok] {
				t.Fatalf("accepted a token that was not signed by the issuer: %q", tok)
			}
			if c == nil || c.Repository == "" {
				t.Fatalf("accepted without claims")
			}
			return
		}
		if c != nil {
			t.Fatalf("claims returned with error %v", err)
		}
		var ie *Error
		if !errors.As(err, &ie) || ie.Reason == "" {
			t.Fatalf("untyped error %v", err)
		}
		n := 0
		for _, s := range []error{ErrInvalidToken, ErrUntrustedIssuer, ErrUnavailable} {
			if errors.Is(err, s) {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("error %v matches %d sentinels", err, n)
		}
	})
}

// FuzzNormalize feeds arbitrary claim JSON to the normaliser of every kind:
// no panics, and whatever it accepts has the promised shapes.
func FuzzNormalize(f *testing.F) {
	for _, name := range []string{"github-actions.json", "gitlab-ci.json"} {
		m := sample(f, name, "https://issuer.example")
		b, err := json.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		`{}`, `[]`, `null`, `{"iss":1}`, `{"iss":"x","sub":"s","jti":"j","ref":"refs/heads/../x"}`,
		`{"repository":"а/b","repository_id":"1"}`, `{"aud":[],"exp":1e309,"iat":-1,"nbf":"1"}`,
		`{"project_path":"a//b","ref":"main","ref_type":"tag"}`, `{"a":1,"A":2}`,
		`{"iss":"x","sub":"s","jti":"j","repository":"a/b","repository_id":"1","repository_owner":"a","repository_owner_id":"2","ref":"refs/heads/m","run_id":"3"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		obj, err := parseObject(data)
		if err != nil {
			return
		}
		_, _ = checkTimes(obj, t0, DefaultClockSkew, DefaultMaxTokenLifetime, DefaultMaxTokenAge)
		_, _ = checkAudience(obj, []string{"https://bridge.example.com"})
		for _, kind := range []Kind{KindGitHub, KindGitLab, KindGeneric} {
			c, e := normalize(kind, obj, data)
			if e != nil {
				if c != nil {
					t.Fatalf("%s: claims with error", kind)
				}
				if e.Reason != ReasonMissingClaim && e.Reason != ReasonInvalidClaim {
					t.Fatalf("%s: unexpected reason %s", kind, e.Reason)
				}
				continue
			}
			if c.Subject == "" || c.JTI == "" || c.Issuer == "" || c.Raw == nil {
				t.Fatalf("%s: accepted without sub/jti/iss: %+v", kind, c)
			}
			if c.Ref != "" && !validRef(c.Ref) {
				t.Fatalf("%s: accepted ref %q", kind, c.Ref)
			}
			for _, s := range []string{c.Repository, c.RepositoryID, c.Ref, c.Actor, c.Environment, c.WorkflowRef, c.EventName} {
				if hasControl(s) {
					t.Fatalf("%s: control characters in %q", kind, s)
				}
			}
			switch kind {
			case KindGitHub:
				if !validGitHubRepository(c.Repository) || !isDigits(c.RepositoryID) || !isDigits(c.RepositoryOwnerID) || !isDigits(c.RunID) || c.Ref == "" {
					t.Fatalf("github: accepted %+v", c)
				}
			case KindGitLab:
				if !validGitLabPath(c.Repository, 2) || !isDigits(c.RepositoryID) || !isDigits(c.RunID) || !isDigits(c.JobID) || c.Ref == "" || c.RunAttempt != "" {
					t.Fatalf("gitlab: accepted %+v", c)
				}
			}
		}
	})
}

// BenchmarkVerify measures a warm-cache verification of a GitHub token.
func BenchmarkVerify(b *testing.B) {
	e := newEnv(b, envOpt{})
	tok := e.iss.Mint(b, e.iss.GitHubClaims(nil))
	ctx := context.Background()
	if _, err := e.v.Verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyRejectOversized shows an 8 MiB token costs nothing: it is
// refused on its length.
func BenchmarkVerifyRejectOversized(b *testing.B) {
	e := newEnv(b, envOpt{})
	tok := strings.Repeat(".", 8<<20)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.v.Verify(ctx, tok); err == nil {
			b.Fatal("accepted")
		}
	}
}

// BenchmarkVerifyRejectUnknownKID is the flood case: a forged token with a
// fresh kid, refused from the cache.
func BenchmarkVerifyRejectUnknownKID(b *testing.B) {
	e := newEnv(b, envOpt{})
	ctx := context.Background()
	if _, err := e.v.Verify(ctx, e.iss.Mint(b, e.iss.GitHubClaims(nil))); err != nil {
		b.Fatal(err)
	}
	tok := e.iss.Mint(b, e.iss.GitHubClaims(nil), oidctest.WithKid("unknown"), oidctest.WithUnpublishedKey())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.v.Verify(ctx, tok); err == nil {
			b.Fatal("accepted")
		}
	}
}

// FuzzParseObject checks the duplicate-name detection against a slow
// reference that walks the object with json.Decoder.
func FuzzParseObject(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"a":1}`, `{"a":1,"a":2}`, `{"a":{"a":1,"a":2}}`, `{"a":[{"b":1},{"b":2}],"b":"}{,\"\\"}`,
		`{"a\u0062":1,"ab":2}`, `{"\ud800":1,"\udc00":2}`, `{"A":1,"a":2}`, `{"\u017f":1,"S":2}`, `null`, `[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		obj, err := parseObject(data)
		names, refErr := referenceNames(data)
		if refErr != nil {
			if err == nil {
				t.Fatalf("parseObject accepted what the reference refuses (%v): %q", refErr, data)
			}
			return
		}
		seen := map[string]bool{}
		dup := false
		for _, n := range names {
			if seen[foldName(n)] {
				dup = true
			}
			seen[foldName(n)] = true
		}
		if dup != (err != nil) {
			t.Fatalf("duplicates %v but parseObject error %v: %q", dup, err, data)
		}
		if err == nil && len(obj) != len(names) {
			t.Fatalf("%d members, reference %d", len(obj), len(names))
		}
	})
}

func referenceNames(b []byte) ([]string, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, err
	}
	if probe == nil {
		return nil, errors.New("null")
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	var names []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		names = append(names, tok.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
	}
	return names, nil
}
