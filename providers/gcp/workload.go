package gcp

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/googleapis/gax-go/v2"
	stsv1 "google.golang.org/api/sts/v1"

	"github.com/oidc-bridge/oidc-bridge/providers"
	"github.com/oidc-bridge/oidc-bridge/signing"
)

// Token exchange (RFC 8693) as Google STS takes it.
const (
	tokenExchangeGrant = "urn:ietf:params:oauth:grant-type:token-exchange"
	accessTokenType    = "urn:ietf:params:oauth:token-type:access_token"
	jwtTokenType       = "urn:ietf:params:oauth:token-type:jwt"
)

// Audience is the aud of the bridge's JWT for a workload identity pool
// provider: its resource name with "//" replaced by "https://", e.g.
// https://iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/ci/providers/bridge.
// A provider with no allowed audiences accepts it by default; one with
// allowed audiences must list it.
func Audience(workloadIdentityProvider string) string {
	return "https://iam.googleapis.com/" + strings.TrimPrefix(workloadIdentityProvider, "//iam.googleapis.com/")
}

// Subject is the sub of the bridge's JWT for a mapping:
// "oidc-bridge:gcp:mapping:<mapping>" (providers.Subject), with nothing of
// the pipeline's token in it, so that a principal:// binding names one
// mapping of this provider and no other token the bridge signs (a jwt
// mapping's, an AWS or Azure assertion) can be that principal. Mapping names
// are at most 64 characters of [a-z0-9._-], so the subject (at most 88
// bytes) stays under Google's 127-byte limit for google.subject.
func Subject(mapping string) string { return providers.Subject(Name, mapping) }

// assertionClaims are the claims of the bridge's JWT for STS; the signer
// adds iss and iat. Every value is a string, so that attribute mappings
// ("attribute.repository=assertion.repository") read them as they are;
// empty claims of the pipeline's token are left out.
func assertionClaims(t target, req providers.Request, now time.Time) map[string]any {
	c := map[string]any{
		"sub":             Subject(req.Mapping),
		"aud":             Audience(t.WorkloadIdentityProvider),
		"exp":             now.Add(assertionLifetime).Unix(),
		"jti":             uuid.NewString(),
		"mapping":         req.Mapping,
		"service_account": t.ServiceAccount,
	}
	put := func(k, v string) {
		if v != "" {
			c[k] = v
		}
	}
	put("issuance_id", req.IssuanceID)
	if cl := req.Claims; cl != nil {
		put("ci_issuer", cl.Issuer)
		put("ci_subject", cl.Subject)
		put("ci_kind", string(cl.Kind))
		put("repository", cl.Repository)
		put("repository_id", cl.RepositoryID)
		put("repository_owner", cl.RepositoryOwner)
		put("ref", cl.Ref)
		put("environment", cl.Environment)
		put("event_name", cl.EventName)
		put("workflow_ref", cl.WorkflowRef)
		put("run_id", cl.RunID)
		put("run_attempt", cl.RunAttempt)
		put("job_id", cl.JobID)
	}
	return c
}

// federatedToken signs the bridge's JWT for the target's pool provider and
// exchanges it at Google STS for a federated access token.
func (p *Provider) federatedToken(ctx context.Context, log *slog.Logger, u *universe, t target, req providers.Request) (string, *providers.Error) {
	if p.signer == nil {
		log.Error("gcp: workload_identity needs the bridge's signer, and this provider has none")
		return "", unavailable("SignerUnavailable")
	}
	if !providers.ValidMappingName(req.Mapping) {
		log.Error("gcp: mint request without a mapping name")
		return "", refused("InvalidRequest")
	}
	jwt, err := p.signer.Sign(ctx, assertionClaims(t, req, time.Now()), signing.RS256)
	if err != nil {
		log.Error("gcp: signing the assertion for Google STS", "error", err)
		return "", unavailable("SignerUnavailable")
	}
	in := &stsv1.GoogleIdentityStsV1ExchangeTokenRequest{
		GrantType:          tokenExchangeGrant,
		Audience:           t.WorkloadIdentityProvider,
		Scope:              DefaultScope,
		RequestedTokenType: accessTokenType,
		SubjectToken:       jwt,
		SubjectTokenType:   jwtTokenType,
	}
	var out *stsv1.GoogleIdentityStsV1ExchangeTokenResponse
	err = gax.Invoke(ctx, func(ctx context.Context, _ gax.CallSettings) error {
		var err error
		out, err = u.sts.V1.Token(in).Context(ctx).Do()
		return err
	}, gax.WithRetry(noRetry))
	if err != nil {
		return "", p.failed(log.With("workload_identity_provider", t.WorkloadIdentityProvider), ctx, "STS token exchange", err, stsCode, false)
	}
	if out.AccessToken == "" {
		log.Error("gcp: STS answered without an access token")
		return "", unavailable("InvalidResponse")
	}
	log.Debug("gcp: exchanged the bridge's assertion at STS", "subject", Subject(req.Mapping),
		"workload_identity_provider", t.WorkloadIdentityProvider)
	return out.AccessToken, nil
}
