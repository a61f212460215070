package signing

import "context"

// Algorithms the bridge signs with.
const (
	RS256 = "RS256"
	ES256 = "ES256"
)

// Signer signs the bridge's own JWTs: the tokens of the jwt provider, and
// the assertions with which the bridge proves itself to clouds (AWS
// AssumeRoleWithWebIdentity, Google STS, Entra client assertions).
// Verifiers find its keys at Issuer() + "/.well-known/openid-configuration".
type Signer interface {
	// Issuer is the bridge's issuer URL (BRIDGE_PUBLIC_URL), without a
	// trailing slash: the iss of every token it signs.
	Issuer() string
	// Sign signs claims with the active key for alg (RS256 or ES256; ""
	// means RS256) and returns the compact JWT. It sets iss and iat, and a
	// kid header naming the key; the caller sets sub, aud, exp, jti and the
	// rest. It fails when no key for alg is active.
	Sign(ctx context.Context, claims map[string]any, alg string) (string, error)
}
