package identity

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/oidc-bridge/oidc-bridge/test/oidctest"
)

var enc = base64.RawURLEncoding

// attackerJWK is a public key the issuer has never published.
const attackerJWK = `{"kty":"RSA","n":"sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw","e":"AQAB"}`

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestVerifyRejects covers the verification families of the attack
// catalogue, one table, one shared issuer.
func TestVerifyRejects(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpt{issuer: []oidctest.Option{oidctest.WithSigningAlgs("RS256", "ES256")}})
	iss := e.iss
	encKID := iss.AddKey("RS256", map[string]any{"use": "enc"})
	rs512KID := iss.AddKey("RS512", nil)
	opsKID := iss.AddKey("RS256", map[string]any{"key_ops": []string{"encrypt"}})
	now := t0.Unix()
	gh := iss.GitHubClaims
	with := func(k string, v any) map[string]any { return gh(map[string]any{k: v}) }
	signed := func(claims map[string]any, opts ...oidctest.MintOption) func(t *testing.T) string {
		return func(t *testing.T) string { return iss.Mint(t, claims, opts...) }
	}
	raw := func(payload string, opts ...oidctest.MintOption) func(t *testing.T) string {
		return func(t *testing.T) string {
			return iss.Mint(t, nil, append(opts, oidctest.WithRawPayload([]byte(payload)))...)
		}
	}
	literal := func(s string) func(t *testing.T) string { return func(*testing.T) string { return s } }
	goodHeader := func() string {
		return enc.EncodeToString([]byte(`{"alg":"RS256","kid":"` + iss.KID() + `","typ":"JWT"}`))
	}
	goodPayload := enc.EncodeToString([]byte(mustJSON(gh(nil))))
	issJSON := mustJSON(iss.URL())
	times := fmt.Sprintf(`"iat":%d,"nbf":%d`, now, now-300)

	tests := []struct {
		name       string
		token      func(t *testing.T) string
		wantErr    error
		wantReason string
	}{
		// 1. alg none and case variants, with an empty signature.
		{"alg none", signed(gh(nil), oidctest.WithAlg("none")), ErrInvalidToken, ReasonUnsupportedAlg},
		{"alg None", signed(gh(nil), oidctest.WithAlg("None")), ErrInvalidToken, ReasonUnsupportedAlg},
		{"alg NONE", signed(gh(nil), oidctest.WithAlg("NONE")), ErrInvalidToken, ReasonUnsupportedAlg},
		{"alg nOnE", signed(gh(nil), oidctest.WithAlg("nOnE")), ErrInvalidToken, ReasonUnsupportedAlg},
		{"alg none with a real signature", signed(gh(nil), oidctest.WithHeader("alg", "none")), ErrInvalidToken, ReasonUnsupportedAlg},
		{"alg empty", signed(gh(nil), oidctest.WithHeader("alg", "")), ErrInvalidToken, ReasonUnsupportedAlg},
		{"alg absent", signed(gh(nil), oidctest.WithHeader("alg", nil)), ErrInvalidToken, ReasonUnsupportedAlg},
		{"alg lower-case rs256", signed(gh(nil), oidctest.WithHeader("alg", "rs256")), ErrInvalidToken, ReasonUnsupportedAlg},
		{"alg not a string", signed(gh(nil), oidctest.WithHeader("alg", 256)), ErrInvalidToken, ReasonMalformedToken},
		{"alg EdDSA", signed(gh(nil), oidctest.WithHeader("alg", "EdDSA")), ErrInvalidToken, ReasonUnsupportedAlg},

		// 2. HMAC with the public key as the secret (algorithm confusion).
		{"HS256 confusion", signed(gh(nil), oidctest.WithAlg("HS256")), ErrInvalidToken, ReasonUnsupportedAlg},
		{"HS384 confusion", signed(gh(nil), oidctest.WithAlg("HS384")), ErrInvalidToken, ReasonUnsupportedAlg},
		{"HS512 confusion", signed(gh(nil), oidctest.WithAlg("HS512")), ErrInvalidToken, ReasonUnsupportedAlg},

		// 3. Algorithms the issuer does not use, and keys unfit for the alg.
		{"PS256 not advertised", signed(gh(nil), oidctest.WithAlg("PS256")), ErrInvalidToken, ReasonUnsupportedAlg},
		{"RS512 not advertised", signed(gh(nil), oidctest.WithAlg("RS512")), ErrInvalidToken, ReasonUnsupportedAlg},
		{"ES256 with kid of an RSA key", signed(gh(nil), oidctest.WithAlg("ES256")), ErrInvalidToken, ReasonUnknownKey},
		{"kid of a use=enc key", signed(gh(nil), oidctest.WithKey(encKID)), ErrInvalidToken, ReasonUnknownKey},
		{"kid of a key_ops=encrypt key", signed(gh(nil), oidctest.WithKey(opsKID)), ErrInvalidToken, ReasonUnknownKey},
		{"RS256 with kid of an alg=RS512 key", signed(gh(nil), oidctest.WithKey(rs512KID), oidctest.WithAlg("RS256")), ErrInvalidToken, ReasonUnknownKey},

		// 4. Keys carried or referenced by the token itself.
		{"embedded jwk, attacker-signed", signed(gh(nil), oidctest.WithUnpublishedKey(), oidctest.WithHeader("jwk", json.RawMessage(attackerJWK))), ErrInvalidToken, ReasonBadSignature},
		{"embedded jwk, no kid", signed(gh(nil), oidctest.WithUnpublishedKey(), oidctest.WithHeader("kid", nil), oidctest.WithHeader("jwk", json.RawMessage(attackerJWK))), ErrInvalidToken, ReasonBadSignature},
		{"jku", signed(gh(nil), oidctest.WithHeader("jku", "https://evil.example/jwks")), ErrInvalidToken, ReasonBadSignature},
		{"x5u", signed(gh(nil), oidctest.WithHeader("x5u", "https://evil.example/cert")), ErrInvalidToken, ReasonBadSignature},
		{"x5c", signed(gh(nil), oidctest.WithHeader("x5c", []string{"MIIB"})), ErrInvalidToken, ReasonBadSignature},

		// Signatures.
		{"forged with an unpublished key", signed(gh(nil), oidctest.WithUnpublishedKey()), ErrInvalidToken, ReasonBadSignature},
		{"forged, no kid", signed(gh(nil), oidctest.WithUnpublishedKey(), oidctest.WithHeader("kid", nil)), ErrInvalidToken, ReasonBadSignature},
		{"payload swapped after signing", func(t *testing.T) string {
			parts := strings.Split(iss.Mint(t, gh(nil)), ".")
			return parts[0] + "." + enc.EncodeToString([]byte(mustJSON(with("repository", "acme/prod")))) + "." + parts[2]
		}, ErrInvalidToken, ReasonBadSignature},
		{"signature of another token", func(t *testing.T) string {
			a, b := strings.Split(iss.Mint(t, gh(nil)), "."), strings.Split(iss.Mint(t, gh(nil)), ".")
			return a[0] + "." + a[1] + "." + b[2]
		}, ErrInvalidToken, ReasonBadSignature},
		{"signature truncated", func(t *testing.T) string {
			p := strings.Split(iss.Mint(t, gh(nil)), ".")
			sig, _ := enc.DecodeString(p[2])
			return p[0] + "." + p[1] + "." + enc.EncodeToString(sig[:len(sig)-3])
		}, ErrInvalidToken, ReasonBadSignature},
		{"signature with trailing bits set", func(t *testing.T) string {
			s := iss.Mint(t, gh(nil))
			return s[:len(s)-1] + "B" // 256 bytes leave 4 unused bits in the last character, which strict decoding requires to be zero
		}, ErrInvalidToken, ReasonMalformedToken},
		{"empty signature", signed(gh(nil), oidctest.WithSignature("")), ErrInvalidToken, ReasonMalformedToken},

		// 6. kid injection.
		{"kid path traversal", signed(gh(nil), oidctest.WithKid("../../../../dev/null")), ErrInvalidToken, ReasonUnknownKey},
		{"kid SQL", signed(gh(nil), oidctest.WithKid("' OR '1'='1")), ErrInvalidToken, ReasonUnknownKey},
		{"kid CRLF", signed(gh(nil), oidctest.WithKid("k1\r\nX-Injected: 1")), ErrInvalidToken, ReasonUnknownKey},
		{"kid NUL", signed(gh(nil), oidctest.WithKid("k1\x00")), ErrInvalidToken, ReasonUnknownKey},
		{"kid ANSI escape", signed(gh(nil), oidctest.WithKid("\x1b[2J")), ErrInvalidToken, ReasonUnknownKey},
		{"kid 257 bytes", signed(gh(nil), oidctest.WithKid(strings.Repeat("k", 257))), ErrInvalidToken, ReasonUnknownKey},
		{"kid 64 KiB", signed(gh(nil), oidctest.WithKid(strings.Repeat("k", 64<<10))), ErrInvalidToken, ReasonTokenTooLarge},
		{"kid empty", signed(gh(nil), oidctest.WithKid("")), ErrInvalidToken, ReasonUnknownKey},
		{"kid not a string", signed(gh(nil), oidctest.WithHeader("kid", 1)), ErrInvalidToken, ReasonMalformedToken},

		// 10. crit and b64.
		{"crit exp", signed(gh(nil), oidctest.WithHeader("crit", []string{"exp"})), ErrInvalidToken, ReasonMalformedToken},
		{"crit unknown", signed(gh(nil), oidctest.WithHeader("crit", []string{"x-unknown"}), oidctest.WithHeader("x-unknown", 1)), ErrInvalidToken, ReasonMalformedToken},
		{"crit empty", signed(gh(nil), oidctest.WithHeader("crit", []string{})), ErrInvalidToken, ReasonMalformedToken},
		{"b64 false unencoded payload", func(t *testing.T) string {
			h := enc.EncodeToString([]byte(`{"alg":"RS256","kid":"` + iss.KID() + `","b64":false,"crit":["b64"]}`))
			return h + "." + mustJSON(gh(nil)) + ".c2ln"
		}, ErrInvalidToken, ReasonMalformedToken},
		{"b64 false signed", signed(gh(nil), oidctest.WithHeader("b64", false), oidctest.WithHeader("crit", []string{"b64"})), ErrInvalidToken, ReasonMalformedToken},
		{"b64 true without crit", signed(gh(nil), oidctest.WithHeader("b64", true)), ErrInvalidToken, ReasonMalformedToken},

		// 13. Size and shape.
		{"8 MiB of dots", literal(strings.Repeat(".", 8<<20)), ErrInvalidToken, ReasonTokenTooLarge},
		{"1 MiB header", literal(strings.Repeat("e", 1<<20) + ".e30.c2ln"), ErrInvalidToken, ReasonTokenTooLarge},
		{"100000 nested arrays", func(t *testing.T) string {
			return goodHeader() + "." + enc.EncodeToString([]byte(strings.Repeat("[", 100000)+strings.Repeat("]", 100000))) + ".c2ln"
		}, ErrInvalidToken, ReasonTokenTooLarge},
		{"5000 nested arrays under the cap", raw(`{"iss":` + issJSON + `,"x":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}`), ErrInvalidToken, ReasonMissingClaim},
		{"just over the cap", literal(goodHeader() + "." + strings.Repeat("A", MaxTokenSize) + ".c2ln"), ErrInvalidToken, ReasonTokenTooLarge},
		{"empty", literal(""), ErrInvalidToken, ReasonMalformedToken},
		{"two parts", literal(goodHeader() + "." + goodPayload), ErrInvalidToken, ReasonMalformedToken},
		{"four parts", func(t *testing.T) string { return iss.Mint(t, gh(nil)) + ".c2ln" }, ErrInvalidToken, ReasonMalformedToken},
		{"many dots", literal(strings.Repeat("a.", 1000)), ErrInvalidToken, ReasonMalformedToken},
		{"empty header", literal("." + goodPayload + ".c2ln"), ErrInvalidToken, ReasonMalformedToken},
		{"empty payload", literal(goodHeader() + "..c2ln"), ErrInvalidToken, ReasonMalformedToken},
		{"padded base64", func(t *testing.T) string {
			p := strings.Split(iss.Mint(t, gh(nil)), ".")
			return p[0] + "=." + p[1] + "." + p[2]
		}, ErrInvalidToken, ReasonMalformedToken},
		{"standard base64 alphabet", literal(goodHeader() + ".e30+/.c2ln"), ErrInvalidToken, ReasonMalformedToken},
		{"surrounding space", func(t *testing.T) string { return " " + iss.Mint(t, gh(nil)) }, ErrInvalidToken, ReasonMalformedToken},
		{"JWS JSON serialization", literal(`{"payload":"` + goodPayload + `","protected":"` + goodHeader() + `","signature":"c2ln"}`), ErrInvalidToken, ReasonMalformedToken},
		{"header not JSON", literal(enc.EncodeToString([]byte("alg")) + "." + goodPayload + ".c2ln"), ErrInvalidToken, ReasonMalformedToken},
		{"header an array", literal(enc.EncodeToString([]byte(`["RS256"]`)) + "." + goodPayload + ".c2ln"), ErrInvalidToken, ReasonMalformedToken},
		{"header duplicate alg", literal(enc.EncodeToString([]byte(`{"alg":"RS256","alg":"none"}`)) + "." + goodPayload + ".c2ln"), ErrInvalidToken, ReasonMalformedToken},
		{"header alg and ALG", literal(enc.EncodeToString([]byte(`{"alg":"RS256","ALG":"HS256"}`)) + "." + goodPayload + ".c2ln"), ErrInvalidToken, ReasonMalformedToken},
		{"payload not JSON", raw(`not json`), ErrInvalidToken, ReasonMalformedToken},
		{"payload trailing data", raw(`{"iss":` + issJSON + `} {}`), ErrInvalidToken, ReasonMalformedToken},
		{"payload duplicate iss", raw(`{"iss":"https://evil.example","iss":` + issJSON + `}`), ErrInvalidToken, ReasonMalformedToken},
		{"payload iss and ISS", raw(`{"iss":` + issJSON + `,"ISS":"https://evil.example"}`), ErrInvalidToken, ReasonMalformedToken},
		{"payload sub and long-s variant", raw(`{"iss":` + issJSON + `,"sub":"a","\u017fub":"b"}`), ErrInvalidToken, ReasonMalformedToken},
		{"header kid and Kelvin-sign variant", literal(enc.EncodeToString([]byte(`{"alg":"RS256","kid":"a","\u212aid":"b"}`)) + "." + goodPayload + ".c2ln"), ErrInvalidToken, ReasonMalformedToken},

		// 17. iss spelling: byte-exact, no normalisation.
		{"iss trailing slash", signed(with("iss", iss.URL()+"/")), ErrUntrustedIssuer, ReasonUntrustedIssuer},
		{"iss upper-case host", signed(with("iss", strings.ToUpper(iss.URL()))), ErrUntrustedIssuer, ReasonUntrustedIssuer},
		{"iss https variant", signed(with("iss", strings.Replace(iss.URL(), "http://", "https://", 1))), ErrUntrustedIssuer, ReasonUntrustedIssuer},
		{"iss localhost variant", signed(with("iss", strings.Replace(iss.URL(), "127.0.0.1", "localhost", 1))), ErrUntrustedIssuer, ReasonUntrustedIssuer},
		{"iss enterprise path", signed(with("iss", iss.URL()+"/acme")), ErrUntrustedIssuer, ReasonUntrustedIssuer},
		{"iss GitHub", signed(with("iss", "https://token.actions.githubusercontent.com")), ErrUntrustedIssuer, ReasonUntrustedIssuer},
		{"iss with NUL", signed(with("iss", iss.URL()+"\x00")), ErrUntrustedIssuer, ReasonUntrustedIssuer},
		{"iss absent", signed(with("iss", nil)), ErrInvalidToken, ReasonMissingClaim},
		{"iss empty", signed(with("iss", "")), ErrInvalidToken, ReasonMissingClaim},
		{"iss a number", signed(with("iss", 1)), ErrInvalidToken, ReasonInvalidClaim},
		{"iss an array", signed(with("iss", []string{iss.URL()})), ErrInvalidToken, ReasonInvalidClaim},

		// 18. Audience.
		{"aud AWS", signed(with("aud", "sts.amazonaws.com")), ErrInvalidToken, ReasonAudienceMismatch},
		{"aud GitHub default", signed(with("aud", "https://github.com/acme")), ErrInvalidToken, ReasonAudienceMismatch},
		{"aud multi-valued incl. ours", signed(with("aud", []string{oidctest.DefaultAudience, "https://evil.example"})), ErrInvalidToken, ReasonAudienceMismatch},
		{"aud twice ours", signed(with("aud", []string{oidctest.DefaultAudience, oidctest.DefaultAudience})), ErrInvalidToken, ReasonAudienceMismatch},
		{"aud empty string", signed(with("aud", "")), ErrInvalidToken, ReasonAudienceMismatch},
		{"aud empty array", signed(with("aud", []string{})), ErrInvalidToken, ReasonAudienceMismatch},
		{"aud array of empty", signed(with("aud", []string{""})), ErrInvalidToken, ReasonAudienceMismatch},
		{"aud absent", signed(with("aud", nil)), ErrInvalidToken, ReasonAudienceMismatch},
		{"aud null", raw(`{"iss":` + issJSON + `,"aud":null}`), ErrInvalidToken, ReasonMissingClaim},
		{"aud a number", signed(with("aud", 1)), ErrInvalidToken, ReasonAudienceMismatch},
		{"aud an object", signed(with("aud", map[string]any{"a": 1})), ErrInvalidToken, ReasonAudienceMismatch},
		{"aud trailing slash", signed(with("aud", oidctest.DefaultAudience+"/")), ErrInvalidToken, ReasonAudienceMismatch},
		{"aud other case", signed(with("aud", strings.ToUpper(oidctest.DefaultAudience))), ErrInvalidToken, ReasonAudienceMismatch},
		{"aud array with a number", signed(with("aud", []any{1})), ErrInvalidToken, ReasonAudienceMismatch},

		// 19-21. Time.
		{"exp absent", signed(with("exp", nil)), ErrInvalidToken, ReasonMissingClaim},
		{"iat absent", signed(with("iat", nil)), ErrInvalidToken, ReasonMissingClaim},
		{"exp now-61s", signed(gh(map[string]any{"exp": now - 61, "iat": now - 300})), ErrInvalidToken, ReasonTokenExpired},
		{"exp now-60s", signed(gh(map[string]any{"exp": now - 60, "iat": now - 300})), ErrInvalidToken, ReasonTokenExpired},
		{"nbf now+61s", signed(with("nbf", now+61)), ErrInvalidToken, ReasonTokenNotYetValid},
		{"nbf now+5min", signed(with("nbf", now+300)), ErrInvalidToken, ReasonTokenNotYetValid},
		{"iat now+10min", signed(gh(map[string]any{"iat": now + 600, "nbf": nil, "exp": now + 900})), ErrInvalidToken, ReasonTokenNotYetValid},
		{"iat now+61s", signed(gh(map[string]any{"iat": now + 61, "nbf": nil})), ErrInvalidToken, ReasonTokenNotYetValid},
		{"too old", signed(gh(map[string]any{"iat": now - 7*3600, "nbf": nil, "exp": now + 60})), ErrInvalidToken, ReasonTokenTooOld},
		{"iat now-6h exp now+1h", signed(gh(map[string]any{"iat": now - 6*3600, "nbf": nil, "exp": now + 3600})), ErrInvalidToken, ReasonLifetimeTooLong},
		{"exp year 2100", signed(with("exp", 4102444800)), ErrInvalidToken, ReasonLifetimeTooLong},
		{"exp before iat", signed(gh(map[string]any{"iat": now, "exp": now - 10})), ErrInvalidToken, ReasonInvalidClaim},
		{"exp 1e309", raw(`{"iss":` + issJSON + `,"exp":1e309,` + times + `}`), ErrInvalidToken, ReasonInvalidClaim},
		{"exp -1", signed(with("exp", -1)), ErrInvalidToken, ReasonInvalidClaim},
		{"exp string", signed(with("exp", "1893456000")), ErrInvalidToken, ReasonInvalidClaim},
		{"exp int64 overflow", signed(with("exp", json.Number("9223372036854775808"))), ErrInvalidToken, ReasonInvalidClaim},
		{"exp uint64 overflow", signed(with("exp", json.Number("18446744073709551616"))), ErrInvalidToken, ReasonInvalidClaim},
		{"exp past year 9999", signed(with("exp", json.Number("253402300800"))), ErrInvalidToken, ReasonInvalidClaim},
		{"exp 1e20 float", signed(with("exp", json.Number("1e20"))), ErrInvalidToken, ReasonInvalidClaim},
		{"exp -0.5", signed(with("exp", json.Number("-0.5"))), ErrInvalidToken, ReasonInvalidClaim},
		{"exp null", raw(`{"iss":` + issJSON + `,"exp":null,` + times + `}`), ErrInvalidToken, ReasonInvalidClaim},
		{"exp true", signed(with("exp", true)), ErrInvalidToken, ReasonInvalidClaim},
		{"exp array", signed(with("exp", []int64{now + 60})), ErrInvalidToken, ReasonInvalidClaim},
		{"iat string", signed(with("iat", fmt.Sprint(now))), ErrInvalidToken, ReasonInvalidClaim},
		{"nbf string", signed(with("nbf", fmt.Sprint(now))), ErrInvalidToken, ReasonInvalidClaim},
		{"nbf NaN-ish", raw(`{"iss":` + issJSON + `,"exp":` + fmt.Sprint(now+60) + `,"nbf":-1e400,` + times[:strings.Index(times, ",")] + `}`), ErrInvalidToken, ReasonInvalidClaim},
		{"exp 1000 (1970)", signed(with("exp", json.Number("1e3"))), ErrInvalidToken, ReasonTokenExpired},

		// 22. Required identity claims: absent and empty are both missing.
		{"sub empty", signed(with("sub", "")), ErrInvalidToken, ReasonMissingClaim},
		{"sub absent", signed(with("sub", nil)), ErrInvalidToken, ReasonMissingClaim},
		{"jti absent", signed(with("jti", nil)), ErrInvalidToken, ReasonMissingClaim},
		{"jti empty", signed(with("jti", "")), ErrInvalidToken, ReasonMissingClaim},
		{"repository absent", signed(with("repository", nil)), ErrInvalidToken, ReasonMissingClaim},
		{"repository_id absent", signed(with("repository_id", nil)), ErrInvalidToken, ReasonMissingClaim},
		{"repository_owner absent", signed(with("repository_owner", nil)), ErrInvalidToken, ReasonMissingClaim},
		{"repository_owner_id empty", signed(with("repository_owner_id", "")), ErrInvalidToken, ReasonMissingClaim},
		{"ref absent", signed(with("ref", nil)), ErrInvalidToken, ReasonMissingClaim},
		{"run_id absent", signed(with("run_id", nil)), ErrInvalidToken, ReasonMissingClaim},
		{"sub a number", signed(with("sub", 1)), ErrInvalidToken, ReasonInvalidClaim},
		{"repository_id a number", signed(with("repository_id", 1339936803)), ErrInvalidToken, ReasonInvalidClaim},
		{"repository_id null", signed(gh(nil), oidctest.WithRawPayload([]byte(strings.Replace(mustJSON(gh(nil)), `"repository_id":"1339936803"`, `"repository_id":null`, 1)))), ErrInvalidToken, ReasonInvalidClaim},
		{"environment a bool", signed(with("environment", true)), ErrInvalidToken, ReasonInvalidClaim},
		{"actor an object", signed(with("actor", map[string]any{"login": "x"})), ErrInvalidToken, ReasonInvalidClaim},

		// 29-31. Names and IDs.
		{"repository Cyrillic a", signed(with("repository", "\u0430cme/web")), ErrInvalidToken, ReasonInvalidClaim},
		{"repository zero-width space", signed(with("repository", "acme/web\u200b")), ErrInvalidToken, ReasonInvalidClaim},
		{"repository trailing space", signed(with("repository", "acme/web ")), ErrInvalidToken, ReasonInvalidClaim},
		{"repository no slash", signed(with("repository", "acmeweb")), ErrInvalidToken, ReasonInvalidClaim},
		{"repository two slashes", signed(with("repository", "acme/web/x")), ErrInvalidToken, ReasonInvalidClaim},
		{"repository dot-dot", signed(with("repository", "acme/..")), ErrInvalidToken, ReasonInvalidClaim},
		{"repository owner with dot", signed(gh(map[string]any{"repository": "ac.me/web", "repository_owner": "ac.me"})), ErrInvalidToken, ReasonInvalidClaim},
		{"repository of another owner", signed(with("repository", "evil/web")), ErrInvalidToken, ReasonInvalidClaim},
		{"repository_owner Unicode", signed(with("repository_owner", "acm\u0435")), ErrInvalidToken, ReasonInvalidClaim},
		{"repository_id negative", signed(with("repository_id", "-1")), ErrInvalidToken, ReasonInvalidClaim},
		{"repository_id hex", signed(with("repository_id", "0x1f")), ErrInvalidToken, ReasonInvalidClaim},
		{"repository_id spaces", signed(with("repository_id", " 123")), ErrInvalidToken, ReasonInvalidClaim},
		{"repository_id Arabic-Indic digits", signed(with("repository_id", "\u0661\u0662")), ErrInvalidToken, ReasonInvalidClaim},
		{"repository_owner_id float", signed(with("repository_owner_id", "1.0")), ErrInvalidToken, ReasonInvalidClaim},
		{"run_id letters", signed(with("run_id", "12a")), ErrInvalidToken, ReasonInvalidClaim},
		{"run_attempt letters", signed(with("run_attempt", "one")), ErrInvalidToken, ReasonInvalidClaim},
		{"check_run_id letters", signed(with("check_run_id", "x")), ErrInvalidToken, ReasonInvalidClaim},

		// 37. Ref tricks: refused, never cleaned.
		{"ref dot-dot", signed(with("ref", "refs/heads/x/../main")), ErrInvalidToken, ReasonInvalidClaim},
		{"ref trailing slash", signed(with("ref", "refs/heads/main/")), ErrInvalidToken, ReasonInvalidClaim},
		{"ref double slash", signed(with("ref", "refs/heads//main")), ErrInvalidToken, ReasonInvalidClaim},
		{"ref NUL", signed(with("ref", "refs/heads/main\x00")), ErrInvalidToken, ReasonInvalidClaim},
		{"ref newline", signed(with("ref", "refs/heads/main\n")), ErrInvalidToken, ReasonInvalidClaim},
		{"ref space", signed(with("ref", "refs/heads/ma in")), ErrInvalidToken, ReasonInvalidClaim},
		{"ref @{", signed(with("ref", "refs/heads/main@{1}")), ErrInvalidToken, ReasonInvalidClaim},
		{"ref .lock", signed(with("ref", "refs/heads/main.lock")), ErrInvalidToken, ReasonInvalidClaim},
		{"ref component .lock", signed(with("ref", "refs/heads/a.lock/b")), ErrInvalidToken, ReasonInvalidClaim},
		{"ref dot component", signed(with("ref", "refs/heads/.hidden")), ErrInvalidToken, ReasonInvalidClaim},
		{"ref trailing dot", signed(with("ref", "refs/heads/main.")), ErrInvalidToken, ReasonInvalidClaim},
		{"ref tilde", signed(with("ref", "refs/heads/main~1")), ErrInvalidToken, ReasonInvalidClaim},
		{"ref caret", signed(with("ref", "refs/heads/main^")), ErrInvalidToken, ReasonInvalidClaim},
		{"ref colon", signed(with("ref", "refs/heads/a:b")), ErrInvalidToken, ReasonInvalidClaim},
		{"ref glob", signed(with("ref", "refs/heads/*")), ErrInvalidToken, ReasonInvalidClaim},
		{"ref backslash", signed(with("ref", `refs/heads\main`)), ErrInvalidToken, ReasonInvalidClaim},
		{"ref bare branch", signed(with("ref", "main")), ErrInvalidToken, ReasonInvalidClaim},
		{"ref refs/ only", signed(with("ref", "refs/")), ErrInvalidToken, ReasonInvalidClaim},
		{"ref not refs/ prefix", signed(with("ref", "heads/refs/main")), ErrInvalidToken, ReasonInvalidClaim},

		// 56. Log injection through claims.
		{"actor CRLF forged log line", signed(with("actor", "x\r\n{\"level\":\"info\",\"msg\":\"issued\",\"repository\":\"acme/prod\"}")), ErrInvalidToken, ReasonInvalidClaim},
		{"environment ANSI", signed(with("environment", "\x1b[2Jprod")), ErrInvalidToken, ReasonInvalidClaim},
		{"job_workflow_ref DEL", signed(with("job_workflow_ref", "acme/web/.github/workflows/x.yml@refs/heads/main\x7f")), ErrInvalidToken, ReasonInvalidClaim},

		// go-oidc's own claim parsing: distributed claims with no source.
		{"_claim_names without source", signed(with("_claim_names", map[string]string{"groups": ""})), ErrInvalidToken, ReasonInvalidClaim},
		{"_claim_names naming a missing source", signed(with("_claim_names", map[string]string{"groups": "src1"})), ErrInvalidToken, ReasonInvalidClaim},
		{"_claim_sources a string", signed(gh(map[string]any{"_claim_names": map[string]string{"groups": "src1"}, "_claim_sources": map[string]any{"src1": "x"}})), ErrInvalidToken, ReasonInvalidClaim},
		{"nonce a number", signed(with("nonce", 5)), ErrInvalidToken, ReasonInvalidClaim},
		{"Nonce (any case) a number", signed(with("Nonce", 5)), ErrInvalidToken, ReasonInvalidClaim},
		{"at_hash an object", signed(with("at_hash", map[string]any{})), ErrInvalidToken, ReasonInvalidClaim},
		{"NBF (any case) a word", signed(gh(map[string]any{"nbf": nil, "NBF": "soon"})), ErrInvalidToken, ReasonInvalidClaim},
		{"NBF (any case) out of range", signed(gh(map[string]any{"nbf": nil, "NBF": json.Number("1e400")})), ErrInvalidToken, ReasonInvalidClaim},
		{"header nonce a number", signed(gh(nil), oidctest.WithHeader("nonce", 5)), ErrInvalidToken, ReasonMalformedToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := e.v.Verify(context.Background(), tt.token(t))
			if c != nil {
				t.Errorf("Verify returned claims with error %v", err)
			}
			checkErr(t, err, tt.wantErr, tt.wantReason)
		})
	}
}

// Tokens at the edges of validity that must pass.
func TestVerifyAccepts(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpt{})
	iss := e.iss
	now := t0.Unix()
	gh := iss.GitHubClaims
	tests := []struct {
		name      string
		overrides map[string]any
		check     func(t *testing.T, c *Claims)
	}{
		{"exp now-30s", map[string]any{"exp": now - 30, "iat": now - 300}, nil},
		{"exp now-59s", map[string]any{"exp": now - 59, "iat": now - 300}, nil},
		{"nbf now+30s", map[string]any{"nbf": now + 30}, nil},
		{"nbf now+60s", map[string]any{"nbf": now + 60}, nil},
		{"nbf absent", map[string]any{"nbf": nil}, func(t *testing.T, c *Claims) {
			if !c.NotBefore.IsZero() {
				t.Errorf("NotBefore = %v, want zero", c.NotBefore)
			}
		}},
		{"iat now+30s", map[string]any{"iat": now + 30, "nbf": nil}, nil},
		{"lifetime exactly 6h", map[string]any{"iat": now - 3600, "exp": now + 5*3600}, nil},
		{"age 6h", map[string]any{"iat": now - 6*3600, "nbf": nil, "exp": now - 30}, nil},
		{"exp float with fraction", map[string]any{"exp": json.Number(fmt.Sprint(now+100) + ".5")}, func(t *testing.T, c *Claims) {
			if want := time.Unix(now+100, 500_000_000); !c.Expiry.Equal(want) {
				t.Errorf("Expiry = %v, want %v", c.Expiry, want)
			}
		}},
		{"iat float", map[string]any{"iat": json.Number(fmt.Sprint(now) + ".25")}, nil},
		{"exp exponent form", map[string]any{"exp": json.Number("1.7957127e9")}, nil},
		{"aud one-element array", map[string]any{"aud": []string{oidctest.DefaultAudience}}, func(t *testing.T, c *Claims) {
			if c.Audience != oidctest.DefaultAudience {
				t.Errorf("Audience = %q", c.Audience)
			}
		}},
		{"upper-case names with right IDs", map[string]any{"repository": "ACME/WEB", "repository_owner": "acme"}, func(t *testing.T, c *Claims) {
			if c.Repository != "ACME/WEB" {
				t.Errorf("Repository = %q, want it unchanged", c.Repository)
			}
		}},
		{"IDs kept as written", map[string]any{"repository_id": "0123", "repository_owner_id": "007"}, func(t *testing.T, c *Claims) {
			if c.RepositoryID != "0123" || c.RepositoryOwnerID != "007" {
				t.Errorf("IDs = %q, %q; want them unnormalised", c.RepositoryID, c.RepositoryOwnerID)
			}
		}},
		{"ref that merely contains refs/heads/main", map[string]any{"ref": "refs/heads/x/refs/heads/main"}, func(t *testing.T, c *Claims) {
			if c.Ref != "refs/heads/x/refs/heads/main" {
				t.Errorf("Ref = %q", c.Ref)
			}
		}},
		{"ref with percent kept encoded", map[string]any{"ref": "refs/heads/x%2Fmain"}, func(t *testing.T, c *Claims) {
			if c.Ref != "refs/heads/x%2Fmain" {
				t.Errorf("Ref = %q, want it undecoded", c.Ref)
			}
		}},
		{"tag ref", map[string]any{"ref": "refs/tags/v1.2.3", "ref_type": "tag"}, nil},
		{"pull request ref", map[string]any{"ref": "refs/pull/12/merge", "event_name": "pull_request"}, nil},
		{"repository name with ._-", map[string]any{"repository": "acme/web.site_v2-x"}, nil},
		{"optional claims absent", map[string]any{"environment": nil, "job_workflow_ref": nil, "actor": nil, "run_attempt": nil, "check_run_id": nil, "sha": nil, "event_name": nil, "ref_type": nil}, nil},
		{"non-ASCII in an unread claim", map[string]any{"workflow": "déploiement"}, nil},
		{"environment with spaces and Unicode", map[string]any{"environment": "Prod – EU"}, nil},
		{"bot actor", map[string]any{"actor": "dependabot[bot]"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := e.v.Verify(context.Background(), iss.Mint(t, gh(tt.overrides)))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

// Tokens refused on their header, size or issuer cause no request at all.
func TestVerifyRefusesBeforeFetching(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpt{})
	iss := e.iss
	gh := iss.GitHubClaims
	tokens := map[string]string{
		"alg none":        iss.Mint(t, gh(nil), oidctest.WithAlg("none")),
		"HS256":           iss.Mint(t, gh(nil), oidctest.WithAlg("HS256")),
		"embedded jwk":    iss.Mint(t, gh(nil), oidctest.WithUnpublishedKey(), oidctest.WithHeader("jwk", json.RawMessage(attackerJWK))),
		"crit":            iss.Mint(t, gh(nil), oidctest.WithHeader("crit", []string{"exp"})),
		"long kid":        iss.Mint(t, gh(nil), oidctest.WithKid(strings.Repeat("k", 300))),
		"too large":       strings.Repeat("a", MaxTokenSize+1),
		"unregistered":    iss.Mint(t, gh(map[string]any{"iss": "https://token.actions.githubusercontent.com"})),
		"trailing slash":  iss.Mint(t, gh(map[string]any{"iss": iss.URL() + "/"})),
		"iss missing":     iss.Mint(t, gh(map[string]any{"iss": nil})),
		"payload garbage": iss.Mint(t, nil, oidctest.WithRawPayload([]byte("{"))),
	}
	for name, tok := range tokens {
		if _, err := e.v.Verify(context.Background(), tok); err == nil {
			t.Errorf("%s: Verify succeeded", name)
		}
	}
	if d, j := iss.DiscoveryRequests(), iss.JWKSRequests(); d != 0 || j != 0 {
		t.Errorf("requests: discovery %d, jwks %d; want none", d, j)
	}
	if n := e.src.calls.Load(); n != 2 {
		t.Errorf("IssuerSource calls = %d, want 2 (the two unregistered spellings)", n)
	}
}

func TestVerifyIssuerSource(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpt{})
	tok := e.iss.Mint(t, e.iss.GitHubClaims(nil))
	url := e.iss.URL()
	base := Issuer{Name: "gh", URL: url, Kind: KindGitHub, Audiences: []string{oidctest.DefaultAudience}, Enabled: true}
	tests := []struct {
		name       string
		issuer     *Issuer
		srcErr     error
		wantErr    error
		wantReason string
	}{
		{"registered", &base, nil, nil, ""},
		{"disabled", &Issuer{Name: "gh", URL: url, Kind: KindGitHub, Audiences: base.Audiences}, nil, ErrUntrustedIssuer, ReasonUntrustedIssuer},
		{"unknown kind", &Issuer{Name: "gh", URL: url, Kind: "teamcity", Audiences: base.Audiences, Enabled: true}, nil, ErrUntrustedIssuer, ReasonUntrustedIssuer},
		{"no audiences", &Issuer{Name: "gh", URL: url, Kind: KindGitHub, Enabled: true}, nil, ErrInvalidToken, ReasonAudienceMismatch},
		{"empty audience configured", &Issuer{Name: "gh", URL: url, Kind: KindGitHub, Audiences: []string{""}, Enabled: true}, nil, ErrInvalidToken, ReasonAudienceMismatch},
		{"second audience matches", &Issuer{Name: "gh", URL: url, Kind: KindGitHub, Audiences: []string{"other", oidctest.DefaultAudience}, Enabled: true}, nil, nil, ""},
		{"source answers another URL", &Issuer{Name: "gh", URL: url + "/", Kind: KindGitHub, Audiences: base.Audiences, Enabled: true}, nil, ErrUntrustedIssuer, ReasonUntrustedIssuer},
		{"not found", nil, nil, ErrUntrustedIssuer, ReasonUntrustedIssuer},
		{"wrapped not found", nil, fmt.Errorf("store: %w", ErrIssuerNotFound), ErrUntrustedIssuer, ReasonUntrustedIssuer},
		{"source down", nil, fmt.Errorf("store: connection refused"), ErrUnavailable, ReasonIssuerSourceUnavailable},
		{"source timeout", nil, context.DeadlineExceeded, ErrUnavailable, ReasonIssuerSourceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := &memSource{}
			if tt.issuer != nil {
				src.issuers = map[string]Issuer{url: *tt.issuer}
			}
			src.err = tt.srcErr
			v := NewVerifier(Config{AllowInsecureIssuers: true, Now: e.clock.Now}, src)
			_, err := v.Verify(context.Background(), tok)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			checkErr(t, err, tt.wantErr, tt.wantReason)
		})
	}
}

func TestVerifyGitLabRejects(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpt{kind: KindGitLab})
	gl := e.iss.GitLabClaims
	with := func(k string, v any) map[string]any { return gl(map[string]any{k: v}) }
	tests := []struct {
		name       string
		claims     map[string]any
		wantReason string
	}{
		{"project_id absent", with("project_id", nil), ReasonMissingClaim},
		{"project_path absent", with("project_path", nil), ReasonMissingClaim},
		{"pipeline_id empty", with("pipeline_id", ""), ReasonMissingClaim},
		{"job_id absent", with("job_id", nil), ReasonMissingClaim},
		{"jti absent", with("jti", nil), ReasonMissingClaim},
		{"project_id letters", with("project_id", "20a"), ReasonInvalidClaim},
		{"namespace_id letters", with("namespace_id", "x"), ReasonInvalidClaim},
		{"project_path one segment", with("project_path", "app"), ReasonInvalidClaim},
		{"project_path dot-dot", with("project_path", "platform/../app"), ReasonInvalidClaim},
		{"project_path empty segment", with("project_path", "platform//app"), ReasonInvalidClaim},
		{"project_path trailing slash", with("project_path", "platform/app/"), ReasonInvalidClaim},
		{"project_path Unicode", with("project_path", "platform/\u0430pp"), ReasonInvalidClaim},
		{"project_path space", with("project_path", "platform/app "), ReasonInvalidClaim},
		{"namespace_path bad", with("namespace_path", "plat form"), ReasonInvalidClaim},
		{"job_project_path bad", with("job_project_path", "x"), ReasonInvalidClaim},
		{"runner_id string is fine but project_id number is not", with("project_id", 20), ReasonInvalidClaim},
		{"ref_path trick", with("ref_path", "refs/heads/x/../main"), ReasonInvalidClaim},
		{"user_login CRLF", with("user_login", "alice\r\nroot"), ReasonInvalidClaim},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := e.v.Verify(context.Background(), e.iss.Mint(t, tt.claims))
			checkErr(t, err, ErrInvalidToken, tt.wantReason)
		})
	}
	// Subgroups are fine.
	if _, err := e.v.Verify(context.Background(), e.iss.Mint(t, gl(map[string]any{"project_path": "group/sub.group/my_app-2", "namespace_path": "group/sub.group"}))); err != nil {
		t.Errorf("subgroup project: %v", err)
	}
}
