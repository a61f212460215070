package aws

import (
	"context"
	"log/slog"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/oidc-bridge/oidc-bridge/providers"
	"github.com/oidc-bridge/oidc-bridge/signing"
)

// WebIdentityAudience is the aud of the bridge's web identity tokens, the
// audience (client id) of the bridge's IAM OIDC provider, in every
// partition but aws-cn; WebIdentityAudienceChina is aws-cn's. A target's
// audience field replaces either.
//
// STS compares aud with the client ids registered on the IAM OIDC provider
// and nothing else: no partition enforces a value. These are the
// conventions: sts.amazonaws.com in aws and aws-us-gov (GovCloud's IAM
// console proposes it), sts.amazonaws.com.cn in the China regions
// (aws-actions/configure-aws-credentials' documented audience for aws-cn).
// An account whose provider lists another client id (EKS clusters in China
// register sts.amazonaws.com) names it in the target's audience.
const (
	WebIdentityAudience      = "sts.amazonaws.com"
	WebIdentityAudienceChina = "sts.amazonaws.com.cn"
)

// webIdentityAudience is the default aud of a partition's web identity
// tokens.
func webIdentityAudience(partition string) string {
	if partition == "aws-cn" {
		return WebIdentityAudienceChina
	}
	return WebIdentityAudience
}

// audience is the aud of t's web identity tokens.
func (t target) audience() string {
	if t.Audience != "" {
		return t.Audience
	}
	return webIdentityAudience(arnPartition(t.RoleARN))
}

const (
	// webIdentityLifetime is how long a web identity token is good for: it
	// is presented at once, retries included, and STS does not need it
	// afterwards.
	webIdentityLifetime = 5 * time.Minute
	// webIdentitySkew back-dates nbf so that STS's clock, slightly behind
	// the bridge's, does not find the token not yet valid.
	webIdentitySkew = time.Minute
)

// The claims in which AssumeRoleWithWebIdentity reads session tags and the
// source identity.
const (
	claimAWSTags           = "https://aws.amazon.com/tags"
	claimAWSSourceIdentity = "https://aws.amazon.com/source_identity"
)

// WebIdentitySubject is the sub of the web identity tokens of mapping's
// mints: "oidc-bridge:aws:mapping:<mapping>" (providers.Subject), e.g.
// "oidc-bridge:aws:mapping:web-prod-deploy". Nothing of the pipeline's
// token is in it, so that a role's trust policy pins it whole with
// StringEquals, and no token the bridge signs for another provider (a jwt
// mapping's, whatever its pipeline's sub) or another mapping can meet that
// condition. The repository is in the repository claim and the session
// tags; the pipeline's sub in src_sub.
func WebIdentitySubject(mapping string) string { return providers.Subject("aws", mapping) }

// webIdentityClaims are the claims of the web identity token for req, but
// iss and iat, which the signer sets.
func webIdentityClaims(req providers.Request, t target, now time.Time) map[string]any {
	c := req.Claims
	claims := map[string]any{
		"sub":     WebIdentitySubject(req.Mapping),
		"aud":     t.audience(),
		"exp":     now.Add(webIdentityLifetime).Unix(),
		"nbf":     now.Add(-webIdentitySkew).Unix(),
		"mapping": req.Mapping,
	}
	for k, v := range map[string]string{
		"jti":           req.IssuanceID,
		"src_iss":       c.Issuer,
		"src_sub":       c.Subject,
		"repository":    c.Repository,
		"repository_id": c.RepositoryID,
		"ref":           c.Ref,
		"environment":   c.Environment,
		"event_name":    c.EventName,
		"workflow_ref":  c.WorkflowRef,
		"actor":         c.Actor,
		"run_id":        c.RunID,
		"run_attempt":   c.RunAttempt,
	} {
		if v != "" {
			claims[k] = v
		}
	}
	if tags := sessionTags(req, t); len(tags) > 0 {
		principal := make(map[string][]string, len(tags))
		for _, tag := range tags {
			principal[*tag.Key] = []string{*tag.Value}
		}
		awsTags := map[string]any{"principal_tags": principal}
		if keys := transitiveKeys(tags, t); len(keys) > 0 {
			awsTags["transitive_tag_keys"] = keys
		}
		claims[claimAWSTags] = awsTags
	}
	if si := sourceIdentity(c); si != "" {
		claims[claimAWSSourceIdentity] = si
	}
	return claims
}

// assumeRoleWithWebIdentity mints with sts:AssumeRoleWithWebIdentity,
// presenting a token the bridge signs: the call is anonymous, the bridge's
// own AWS credentials are neither needed nor used.
func (p *Provider) assumeRoleWithWebIdentity(ctx context.Context, log *slog.Logger, req providers.Request, t target) (providers.Credential, error) {
	if !providers.ValidMappingName(req.Mapping) {
		log.Error("aws: mint request without a valid mapping name")
		return providers.Credential{}, refused("InvalidRequest")
	}
	if p.signer == nil {
		log.Error("aws: mode web_identity needs the bridge's signer, which is not configured")
		return providers.Credential{}, unavailable("SignerUnavailable")
	}
	claims := webIdentityClaims(req, t, time.Now())
	token, err := p.signer.Sign(ctx, claims, signing.RS256)
	if err != nil {
		log.Error("aws: signing the web identity token failed", "error", err)
		return providers.Credential{}, unavailable("SignerUnavailable")
	}
	in := &sts.AssumeRoleWithWebIdentityInput{
		RoleArn:          &t.RoleARN,
		RoleSessionName:  awssdk.String(sessionName(req.Claims)),
		WebIdentityToken: &token,
		DurationSeconds:  awssdk.Int32(int32(req.Duration / time.Second)),
	}
	if policy := sessionPolicy(t, req); policy != "" {
		in.Policy = &policy
	}
	log = log.With("role_arn", t.RoleARN, "region", t.Region, "session_name", *in.RoleSessionName,
		"mode", modeWebIdentity, "web_identity_sub", claims["sub"])

	out, err := p.client.AssumeRoleWithWebIdentity(ctx, in, func(o *sts.Options) {
		o.Region = t.Region
		// The SDK sends this action unsigned already; this keeps it so
		// should that change, since the bridge may hold no AWS key at all.
		o.Credentials = awssdk.AnonymousCredentials{}
	})
	if err != nil {
		return providers.Credential{}, p.failed(log, ctx, "AssumeRoleWithWebIdentity", err)
	}
	return issued(log, "AssumeRoleWithWebIdentity", out.Credentials, t, "aws: assumed role with web identity",
		"subject", awssdk.ToString(out.SubjectFromWebIdentityToken),
		"audience", awssdk.ToString(out.Audience),
		"provider", awssdk.ToString(out.Provider),
		"source_identity", awssdk.ToString(out.SourceIdentity))
}
