package e2e

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/oidc-bridge/oidc-bridge/providers"
	awsprovider "github.com/oidc-bridge/oidc-bridge/providers/aws"
	"github.com/oidc-bridge/oidc-bridge/test/minio"
	"github.com/oidc-bridge/oidc-bridge/test/oidctest"
	"github.com/oidc-bridge/oidc-bridge/test/pgtest"
)

// tokenKID is the kid in a JWT's protected header ("" when unreadable).
func tokenKID(token string) string {
	head, _, _ := strings.Cut(token, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return ""
	}
	var h struct {
		KID string `json:"kid"`
	}
	_ = json.Unmarshal(b, &h)
	return h.KID
}

// forgedHS256 is a web identity token for mapping that nobody signed: HS256
// with the empty key, under kid.
func forgedHS256(kid, mapping string) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	in := enc(map[string]any{"alg": "HS256", "typ": "JWT", "kid": kid}) + "." + enc(map[string]any{
		"sub": "oidc-bridge:aws:mapping:" + mapping, "aud": awsprovider.WebIdentityAudience, "mapping": mapping,
		"iat": time.Now().Unix(), "exp": time.Now().Add(5 * time.Minute).Unix()})
	mac := hmac.New(sha256.New, nil)
	mac.Write([]byte(in))
	return in + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// stsTap sits between the bridge and MinIO's STS and records the kid of
// each AssumeRoleWithWebIdentity token passing through (never the token),
// so that a test knows which of the bridge's keys MinIO had to verify.
type stsTap struct {
	mu    sync.Mutex
	kids  []string
	url   string
	proxy *httputil.ReverseProxy // to MinIO, once it runs (point)
}

func newSTSTap(t *testing.T) *stsTap {
	t.Helper()
	tap := &stsTap{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		tap.mu.Lock()
		proxy := tap.proxy
		if form, err := url.ParseQuery(string(body)); err == nil && form.Get("Action") == "AssumeRoleWithWebIdentity" {
			tap.kids = append(tap.kids, tokenKID(form.Get("WebIdentityToken")))
		}
		tap.mu.Unlock()
		if proxy == nil {
			http.Error(w, "MinIO is not running yet", http.StatusBadGateway)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	tap.url = srv.URL
	return tap
}

// point sends what the tap receives to target (MinIO's URL): MinIO picks
// its port when it starts, after the bridge was given the tap's.
func (p *stsTap) point(t *testing.T, target string) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.proxy = httputil.NewSingleHostReverseProxy(u)
}

// last is the kid of the last web identity token seen.
func (p *stsTap) last() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.kids) == 0 {
		return ""
	}
	return p.kids[len(p.kids)-1]
}

// activeKID is the kid of the active key of alg.
func activeKID(t *testing.T, env []string, alg string) string {
	t.Helper()
	for _, k := range listKeys(t, env) {
		if k.State == "active" && k.Alg == alg {
			return k.KID
		}
	}
	t.Fatalf("no active %s key", alg)
	return ""
}

// jwksFetches is how many JWKS requests the server has logged.
func (s *server) jwksFetches() int {
	return strings.Count(s.logs.String(), `"route":"/.well-known/jwks.json"`)
}

// jwksFetchedSince reports whether the server logs more than n JWKS
// requests within 5 s: the log line follows the answer, which the client may
// have used already.
func (s *server) jwksFetchedSince(n int) bool {
	deadline := time.Now().Add(5 * time.Second)
	for s.jwksFetches() <= n {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// minioPolicy lets a session write and read objects under
// ci-artifacts/builds/ only: any other bucket, and deletion, are refused.
const minioPolicy = `{
  "Version": "2012-10-17",
  "Statement": [{
    "Effect": "Allow",
    "Action": ["s3:PutObject", "s3:GetObject"],
    "Resource": ["arn:aws:s3:::ci-artifacts/builds/*"]
  }]
}`

// TestMinIOTrustsBridgeIssuer: MinIO, an S3 server whose STS verifies web
// identity tokens itself, trusts the bridge's own issuer
// (BRIDGE_PUBLIC_URL's discovery document and JWKS). An aws web_identity
// mapping whose STS endpoint is MinIO returns the credentials MinIO minted
// after verifying the bridge-signed token; they put and get an object
// through the AWS SDK's S3 client, and MinIO's policy (named by the
// token's mapping claim) refuses what it does not allow. An HS256 token
// with the empty key is refused (MinIO's client secret is set). It keeps working
// across two `keys rotate --force`: the first promotes a key MinIO read at
// startup, the second one created after, which MinIO only knows by
// fetching the JWKS again on the unknown kid.
func TestMinIOTrustsBridgeIssuer(t *testing.T) {
	t.Parallel()
	minio.Binary(t) // before anything starts: a cold build takes minutes
	dbURL := pgtest.NewDatabase(t)
	env, publicURL := issuerEnv(t, dbURL)
	tap := newSTSTap(t)
	env = append(env, "BRIDGE_LISTEN_ADDR="+strings.TrimPrefix(publicURL, "http://"),
		// web_identity calls STS anonymously: no AWS key at all.
		"AWS_REGION="+minio.Region, "AWS_ENDPOINT_URL_STS="+tap.url,
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_PROFILE=",
		"AWS_EC2_METADATA_DISABLED=true")
	gh := oidctest.New(t)
	s := startServer(t, env)
	s.must(201, "POST", "/v1/admin/issuers", issuerBody("github", gh.URL(), "github"))
	const mapping = "minio-ci"
	s.must(201, "POST", "/v1/admin/mappings", fmt.Sprintf(`{"name": %q, "issuer": "github",
		"conditions": {"repository": "acme/web", "ref": "refs/heads/main"}, "provider": "aws",
		"target": {"role_arn": "arn:aws:iam::123456789012:role/minio-ci", "region": %q, "mode": "web_identity"},
		"max_duration_seconds": 3600}`, mapping, minio.Region))

	started := time.Now()
	m := minio.Start(t, minio.Config{
		OpenIDConfigURL: publicURL + "/.well-known/openid-configuration",
		ClientID:        awsprovider.WebIdentityAudience,
		// The claim every web identity token of the bridge carries: the
		// mapping's name, here the name of a MinIO policy.
		ClaimName: "mapping",
	})
	minioStart := time.Since(started)
	tap.point(t, m.URL)
	m.AddPolicy(t, mapping, minioPolicy)
	ctx := context.Background()
	root := m.RootS3()
	for _, b := range []string{"ci-artifacts", "releases"} {
		if _, err := root.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: awssdk.String(b)}); err != nil {
			t.Fatalf("create bucket %s: %v", b, err)
		}
	}

	exchangeCreds := func() providers.AWSCredentials {
		t.Helper()
		_, c := awsCreds(t, exchange(s, gh.Mint(t, gh.GitHubClaims(nil)), fmt.Sprintf(`{"mapping": %q, "duration_seconds": 900}`, mapping)))
		return c
	}
	use := func(c providers.AWSCredentials, key string) {
		t.Helper()
		client := m.S3(awssdk.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken})
		body := "built by " + key
		if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: awssdk.String("ci-artifacts"),
			Key: awssdk.String(key), Body: strings.NewReader(body)}); err != nil {
			t.Fatalf("put ci-artifacts/%s: %v", key, err)
		}
		out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: awssdk.String("ci-artifacts"), Key: awssdk.String(key)})
		if err != nil {
			t.Fatalf("get ci-artifacts/%s: %v", key, err)
		}
		got, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil || string(got) != body {
			t.Fatalf("get ci-artifacts/%s: %q, %v; want %q", key, got, err, body)
		}
		// MinIO's policy: no other bucket, no deletion.
		_, err = client.PutObject(ctx, &s3.PutObjectInput{Bucket: awssdk.String("releases"),
			Key: awssdk.String(key), Body: strings.NewReader(body)})
		wantAccessDenied(t, "put releases/"+key, err)
		_, err = client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: awssdk.String("ci-artifacts"), Key: awssdk.String(key)})
		wantAccessDenied(t, "delete ci-artifacts/"+key, err)
	}

	started = time.Now()
	c := exchangeCreds()
	firstExchange := time.Since(started)
	if c.AccessKeyID == "" || c.SessionToken == "" || c.Expiration.IsZero() {
		t.Fatalf("MinIO's credentials are incomplete: expiration %v", c.Expiration)
	}
	if c.Expiration.Before(time.Now().Add(10*time.Minute)) || c.Expiration.After(time.Now().Add(16*time.Minute)) {
		t.Errorf("MinIO's credentials expire at %v, want about 900 s from now", c.Expiration)
	}
	if kid, want := tap.last(), activeKID(t, env, "RS256"); kid == "" || kid != want {
		t.Fatalf("the web identity token's kid is %q, want the active RS256 key %q", kid, want)
	}
	use(c, "builds/1.txt")

	// MinIO keys HS256 tokens whose kid is its client id with the client
	// secret: configured as docs/clouds.md says, a token signed with the
	// empty key (MinIO's default secret) is refused.
	for _, kid := range []string{awsprovider.WebIdentityAudience, tap.last()} {
		form := url.Values{"Action": {"AssumeRoleWithWebIdentity"}, "Version": {"2011-06-15"},
			"DurationSeconds": {"900"}, "WebIdentityToken": {forgedHS256(kid, mapping)}}
		resp, err := http.PostForm(m.URL, form)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 || strings.Contains(string(b), "<AccessKeyId>") {
			t.Fatalf("MinIO issued credentials for an HS256 token with the empty key and kid %q", kid)
		}
	}

	// Two rotations: the first promotes the next key, which MinIO read at
	// startup; the second promotes the key the first created, after MinIO
	// started, as a plain `keys rotate` does on a MinIO that has run since
	// the previous rotation: MinIO fails to find its kid and fetches the
	// JWKS again. Meanwhile the retired key keeps working.
	old := tap.last()
	fetches := s.jwksFetches()
	started = time.Now()
	for range 2 {
		if out, errOut, code := cli(t, env, "keys", "rotate", "--force"); code != 0 {
			t.Fatalf("keys rotate --force: exit %d\n%s\n%s", code, out, errOut)
		}
	}
	rotated := time.Since(started)
	want := activeKID(t, env, "RS256")
	if want == old {
		t.Fatalf("the rotations left the active RS256 key %s", old)
	}
	// The running bridge signs with the new key within
	// signing.KeyCacheTTL (30 s); every exchange meanwhile must work.
	n := 0
	for {
		n++
		c := exchangeCreds()
		if tap.last() == want {
			use(c, "builds/2.txt")
			break
		}
		if tap.last() != old {
			t.Fatalf("the bridge signs with %s, neither the old key %s nor the new %s", tap.last(), old, want)
		}
		if time.Since(started) > 45*time.Second {
			t.Fatalf("45 s after the rotations the bridge still signs with %s, not %s", old, want)
		}
		time.Sleep(time.Second)
	}
	if !s.jwksFetchedSince(fetches) {
		t.Errorf("MinIO verified a token of a key created after it started without fetching the JWKS again")
	}
	t.Logf("minio start %v, first exchange %v, two rotations %v, the new key %s verified by MinIO %v after them (%d exchanges)",
		minioStart.Round(time.Millisecond), firstExchange.Round(time.Millisecond), rotated.Round(time.Millisecond),
		want, time.Since(started).Round(time.Millisecond), n)
}

func wantAccessDenied(t *testing.T, what string, err error) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDenied" {
		t.Fatalf("%s: %v, want AccessDenied", what, err)
	}
}
