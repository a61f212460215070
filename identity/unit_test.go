package identity

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestValidateIssuerURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url      string
		insecure bool
		wantOK   bool
	}{
		{"https://token.actions.githubusercontent.com", false, true},
		{"https://token.actions.githubusercontent.com/acme", false, true},
		{"https://gitlab.com", false, true},
		{"https://ghes.example.com/_services/token", false, true},
		{"https://issuer.example.com/", false, true},
		{"https://issuer.example.com:8443", false, true},
		{"http://token.actions.githubusercontent.com", false, false},
		{"http://token.actions.githubusercontent.com", true, false},
		{"http://127.0.0.1:8080", false, false},
		{"http://127.0.0.1:8080", true, true},
		{"http://127.0.0.2", true, true},
		{"http://[::1]:9000/x", true, true},
		{"http://localhost:9000", true, true},
		{"http://localhost.evil.example", true, false},
		{"http://127.0.0.1.nip.io", true, false},
		{"http://169.254.169.254", true, false},
		{"http://0.0.0.0", true, false},
		{"https://Token.Actions.GithubUserContent.com", false, false},
		{"HTTPS://gitlab.com", false, false},
		{"https://user:pass@gitlab.com", false, false},
		{"https://gitlab.com?x=1", false, false},
		{"https://gitlab.com#f", false, false},
		{"https://gitlab.com/a%2Fb", false, false},
		{"https://gitlab.com/a/../b", false, false},
		{"https://gitlab.com/a//b", false, false},
		{"https://gitlab.com/a/.", false, false},
		{"https://gitlab.com/ a", false, false},
		{"https://gitlab.com\n", false, false},
		{"https://gitlab.com\\@evil.example", false, false},
		{"https://gitläb.com", false, false},
		{"gitlab.com", false, false},
		{"https:gitlab.com", false, false},
		{"https://", false, false},
		{"https://:443", false, false},
		{"ftp://gitlab.com", false, false},
		{"", false, false},
		{"https://gitlab.com/" + strings.Repeat("a", 1100), false, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q/%v", tt.url, tt.insecure), func(t *testing.T) {
			t.Parallel()
			err := ValidateIssuerURL(tt.url, tt.insecure)
			if (err == nil) != tt.wantOK {
				t.Errorf("ValidateIssuerURL(%q, %v) = %v, want ok=%v", tt.url, tt.insecure, err, tt.wantOK)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "identity: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestValidRef(t *testing.T) {
	t.Parallel()
	good := []string{
		"refs/heads/main", "refs/tags/v1.2.3", "refs/pull/1/merge", "refs/heads/feature/x-y_z",
		"refs/merge-requests/7/head", "refs/heads/x/refs/heads/main", "refs/heads/ünïcode", "refs/heads/a.b",
		"refs/heads/x%2Fmain", "refs/heads/@", "refs/heads/a@b",
	}
	bad := []string{
		"", "main", "heads/main", "refs/", "refs", "refs/heads/", "refs/heads//main", "refs//heads",
		"refs/heads/x/../main", "refs/heads/..", "refs/heads/a..b", "refs/heads/main/", "refs/heads/main.",
		"refs/heads/.x", "refs/heads/x/.y", "refs/heads/x.lock", "refs/heads/x.lock/y", "refs/heads/a@{1}",
		"refs/heads/a b", "refs/heads/a\tb", "refs/heads/a\x00", "refs/heads/a\x7f", "refs/heads/a\x1b[2J",
		"refs/heads/a~1", "refs/heads/a^", "refs/heads/a:b", "refs/heads/a?", "refs/heads/a*", "refs/heads/a[",
		`refs/heads/a\b`, "/refs/heads/main", "REFS/heads/main",
	}
	for _, r := range good {
		if !validRef(r) {
			t.Errorf("validRef(%q) = false, want true", r)
		}
	}
	for _, r := range bad {
		if validRef(r) {
			t.Errorf("validRef(%q) = true, want false", r)
		}
	}
}

func TestNames(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"acme/web": true, "Acme-1/web.site_x-2": true, "a/b": true,
		"acme": false, "acme/": false, "/web": false, "acme/web/x": false, "ac_me/web": false,
		"acme/.": false, "acme/..": false, "acme/we b": false, "аcme/web": false, "acme/web\u200b": false,
	} {
		if got := validGitHubRepository(s); got != want {
			t.Errorf("validGitHubRepository(%q) = %v, want %v", s, got, want)
		}
	}
	for s, want := range map[string]bool{
		"group/project": true, "g/sub/p": true, "g.x/p_y-z": true,
		"project": false, "g//p": false, "g/p/": false, "/g/p": false, "g/../p": false, "g/./p": false, "g/p q": false,
	} {
		if got := validGitLabPath(s, 2); got != want {
			t.Errorf("validGitLabPath(%q, 2) = %v, want %v", s, got, want)
		}
	}
	for s, want := range map[string]bool{"0": true, "0123": true, "18446744073709551616": true, "": false, "-1": false, "1.0": false, "1e3": false, "١": false, " 1": false} {
		if got := isDigits(s); got != want {
			t.Errorf("isDigits(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestNumericDate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw     string
		want    time.Time
		wantErr bool
	}{
		{"0", time.Unix(0, 0), false},
		{"1795712400", time.Unix(1795712400, 0), false},
		{"1795712400.5", time.Unix(1795712400, 500_000_000), false},
		{"1.7957124e9", time.Unix(1795712400, 0), false},
		{"4102444800", time.Unix(4102444800, 0), false},
		{"253402300799", time.Unix(253402300799, 0), false},
		{"-0", time.Unix(0, 0), false},
		{"253402300800", time.Time{}, true},
		{"-1", time.Time{}, true},
		{"-0.5", time.Time{}, true},
		{"1e309", time.Time{}, true},
		{"-1e309", time.Time{}, true},
		{"9223372036854775807", time.Time{}, true},
		{"9223372036854775808", time.Time{}, true},
		{"1e20", time.Time{}, true},
		{`"1893456000"`, time.Time{}, true},
		{"null", time.Time{}, true},
		{"true", time.Time{}, true},
		{"[1]", time.Time{}, true},
		{"{}", time.Time{}, true},
	}
	for _, tt := range tests {
		got, present, e := numericDate(jsonObject{"exp": []byte(tt.raw)}, "exp")
		if !present {
			t.Errorf("%s: not present", tt.raw)
		}
		if (e != nil) != tt.wantErr {
			t.Errorf("numericDate(%s) error = %v, want error %v", tt.raw, e, tt.wantErr)
			continue
		}
		if e != nil && e.Reason != ReasonInvalidClaim {
			t.Errorf("numericDate(%s) reason = %s", tt.raw, e.Reason)
		}
		if !got.Equal(tt.want) {
			t.Errorf("numericDate(%s) = %v, want %v", tt.raw, got, tt.want)
		}
	}
}

func TestParseObject(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    jsonObject
		wantErr bool
	}{
		{`{}`, jsonObject{}, false},
		{` {"a" : 1 , "b":[1,{"a":2,"a":3}]} `, jsonObject{"a": []byte(`1`), "b": []byte(`[1,{"a":2,"a":3}]`)}, false},
		{`{"A":1,"b":2}`, jsonObject{"A": []byte(`1`), "b": []byte(`2`)}, false},
		{`{"a":1,"a":1}`, nil, true},
		{`{"a":1,"A":1}`, nil, true},
		{`{"Iss":1,"iSS":1}`, nil, true},
		{`{"sub":1,"\u017fub":1}`, nil, true},
		{`{"kid":1,"\u212aid":1}`, nil, true},
		{`[]`, nil, true},
		{`"x"`, nil, true},
		{`{"a":1}{}`, nil, true},
		{`{"a":1`, nil, true},
		{`{"a":}`, nil, true},
		{``, nil, true},
	}
	for _, tt := range tests {
		got, err := parseObject([]byte(tt.in))
		if (err != nil) != tt.wantErr {
			t.Errorf("parseObject(%s) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if diff := cmp.Diff(tt.want, got); err == nil && diff != "" {
			t.Errorf("parseObject(%s) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestErrorIs(t *testing.T) {
	t.Parallel()
	tests := map[string]error{
		ReasonMalformedToken: ErrInvalidToken, ReasonTokenTooLarge: ErrInvalidToken, ReasonUnsupportedAlg: ErrInvalidToken,
		ReasonUnknownKey: ErrInvalidToken, ReasonBadSignature: ErrInvalidToken, ReasonAudienceMismatch: ErrInvalidToken,
		ReasonTokenExpired: ErrInvalidToken, ReasonTokenNotYetValid: ErrInvalidToken, ReasonTokenTooOld: ErrInvalidToken,
		ReasonLifetimeTooLong: ErrInvalidToken, ReasonMissingClaim: ErrInvalidToken, ReasonInvalidClaim: ErrInvalidToken,
		ReasonUntrustedIssuer: ErrUntrustedIssuer, ReasonDiscoveryFailed: ErrUntrustedIssuer,
		ReasonIssuerSourceUnavailable: ErrUnavailable, ReasonDiscoveryUnavailable: ErrUnavailable, ReasonJWKSUnavailable: ErrUnavailable,
	}
	cause := errors.New("cause")
	for reason, want := range tests {
		err := fmt.Errorf("bridge: %w", &Error{Reason: reason, Err: cause})
		for _, s := range []error{ErrInvalidToken, ErrUntrustedIssuer, ErrUnavailable} {
			if got := errors.Is(err, s); got != (s == want) {
				t.Errorf("errors.Is(%s, %v) = %v", reason, s, got)
			}
		}
		if !errors.Is(err, cause) {
			t.Errorf("%s does not unwrap to its cause", reason)
		}
		if Reason(err) != reason {
			t.Errorf("Reason() = %q, want %q", Reason(err), reason)
		}
		if msg := err.Error(); !strings.Contains(msg, "identity: "+reason+": cause") {
			t.Errorf("message %q", msg)
		}
	}
	if Reason(errors.New("x")) != "" {
		t.Error("Reason of a foreign error is not empty")
	}
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	c := Config{ClockSkew: 5 * time.Minute}.withDefaults()
	if c.ClockSkew != MaxClockSkew {
		t.Errorf("ClockSkew = %v, want capped at %v", c.ClockSkew, MaxClockSkew)
	}
	z := Config{}.withDefaults()
	got := []time.Duration{z.ClockSkew, z.MaxTokenLifetime, z.MaxTokenAge, z.KeyRefreshInterval, z.CacheTTL}
	want := []time.Duration{60 * time.Second, 6 * time.Hour, 6 * time.Hour, 30 * time.Second, time.Hour}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	if z.Now == nil || z.Logger == nil {
		t.Error("Now or Logger not defaulted")
	}
	s := Config{ClockSkew: 10 * time.Second}.withDefaults()
	if s.ClockSkew != 10*time.Second {
		t.Errorf("ClockSkew = %v, want 10s kept", s.ClockSkew)
	}
}

// A smaller skew applies to every time check alike.
func TestClockSkewConfigured(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpt{config: func(c *Config) {
		c.ClockSkew = 10 * time.Second
		c.MaxTokenAge = 10 * time.Minute
		c.MaxTokenLifetime = 20 * time.Minute
	}})
	now := t0.Unix()
	tests := []struct {
		name       string
		overrides  map[string]any
		wantReason string
	}{
		{"exp now-9s", map[string]any{"exp": now - 9, "iat": now - 60}, ""},
		{"exp now-11s", map[string]any{"exp": now - 11, "iat": now - 60}, ReasonTokenExpired},
		{"nbf now+9s", map[string]any{"nbf": now + 9}, ""},
		{"nbf now+11s", map[string]any{"nbf": now + 11}, ReasonTokenNotYetValid},
		{"iat now+11s", map[string]any{"iat": now + 11, "nbf": nil}, ReasonTokenNotYetValid},
		{"age 10m", map[string]any{"iat": now - 600, "nbf": nil}, ""},
		{"age 10m11s", map[string]any{"iat": now - 611, "nbf": nil}, ReasonTokenTooOld},
		{"lifetime 20m", map[string]any{"iat": now - 60, "exp": now + 1140}, ""},
		{"lifetime 20m1s", map[string]any{"iat": now - 60, "exp": now + 1141}, ReasonLifetimeTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := e.v.Verify(t.Context(), e.iss.Mint(t, e.iss.GitHubClaims(tt.overrides)))
			if tt.wantReason == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			checkErr(t, err, ErrInvalidToken, tt.wantReason)
		})
	}
}

// Each issuer has its own age and lifetime limits: its kind's defaults (15
// minutes for GitHub, whose tokens live 5; 6 hours for GitLab and generic
// issuers) or its own, never above the Config's ceiling.
func TestIssuerTokenLimits(t *testing.T) {
	t.Parallel()
	now := t0.Unix()
	tests := []struct {
		name      string
		kind      Kind
		age, life time.Duration // the issuer's own; 0: the kind's
		config    func(*Config)
		overrides map[string]any
		want      string
	}{
		{"github lifetime 15m", KindGitHub, 0, 0, nil, map[string]any{"iat": now - 60, "exp": now + 840}, ""},
		{"github lifetime 15m1s", KindGitHub, 0, 0, nil, map[string]any{"iat": now - 60, "exp": now + 841}, ReasonLifetimeTooLong},
		{"github lifetime 1h", KindGitHub, 0, 0, nil, map[string]any{"iat": now - 60, "exp": now + 3540}, ReasonLifetimeTooLong},
		{"github age 15m", KindGitHub, 0, 0, nil, map[string]any{"iat": now - 900, "nbf": nil, "exp": now}, ""},
		{"github age 16m1s", KindGitHub, 0, 0, nil, map[string]any{"iat": now - 961, "nbf": nil, "exp": now}, ReasonTokenTooOld},
		{"gitlab lifetime 6h", KindGitLab, 0, 0, nil, map[string]any{"iat": now - 60, "exp": now + 6*3600 - 60}, ""},
		{"gitlab lifetime 6h1s", KindGitLab, 0, 0, nil, map[string]any{"iat": now - 60, "exp": now + 6*3600 - 59}, ReasonLifetimeTooLong},
		{"gitlab age 5h", KindGitLab, 0, 0, nil, map[string]any{"iat": now - 5*3600, "nbf": nil, "exp": now + 60}, ""},
		{"generic lifetime 6h", KindGeneric, 0, 0, nil, map[string]any{"iat": now - 60, "exp": now + 6*3600 - 60}, ""},
		{"github own lifetime 1h", KindGitHub, 0, time.Hour, nil, map[string]any{"iat": now - 60, "exp": now + 3540}, ""},
		{"gitlab own lifetime 10m", KindGitLab, 0, 10 * time.Minute, nil, map[string]any{"iat": now - 60, "exp": now + 541}, ReasonLifetimeTooLong},
		{"gitlab own age 5m", KindGitLab, 5 * time.Minute, 0, nil, map[string]any{"iat": now - 400, "nbf": nil, "exp": now + 60}, ReasonTokenTooOld},
		{"ceiling below the issuer's", KindGitLab, 0, 0, func(c *Config) { c.MaxTokenLifetime = time.Hour },
			map[string]any{"iat": now - 60, "exp": now + 3541}, ReasonLifetimeTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOpt{kind: tt.kind, kindLimits: true, config: tt.config})
			if tt.age != 0 || tt.life != 0 {
				is := e.src.issuers[e.iss.URL()]
				is.MaxTokenAge, is.MaxTokenLifetime = tt.age, tt.life
				e.src.add(is)
			}
			var claims map[string]any
			switch tt.kind {
			case KindGitLab:
				claims = e.iss.GitLabClaims(tt.overrides)
			default:
				claims = e.iss.GitHubClaims(tt.overrides)
			}
			_, err := e.v.Verify(t.Context(), e.iss.Mint(t, claims))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			checkErr(t, err, ErrInvalidToken, tt.want)
		})
	}
}
