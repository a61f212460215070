package identity

import (
	"strings"
	"time"
)

// KindAWS is AWS outbound identity federation: the JWTs STS returns to an
// IAM principal that calls GetWebIdentityToken (aws sts
// get-web-identity-token --audience <aud> --signing-algorithm RS256).
// Each AWS account that enables the feature has its own issuer,
// https://<uuid>.tokens.sts.global.api.aws. The claims are documented at
// https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_providers_outbound_token_claims.html
// (sub the principal's ARN; AWS's own claims nested under the claim
// "https://sts.amazonaws.com/": aws_account, source_region, org_id,
// ou_path, principal_tags, request_tags and session context such as
// lambda_source_function_arn), the call at
// https://docs.aws.amazon.com/STS/latest/APIReference/API_GetWebIdentityToken.html.
// test/oidctest/claimsets/aws-outbound.json is a token's claim set.
const KindAWS Kind = "aws"

// claimAWS is the claim AWS nests its own claims under.
const claimAWS = "https://sts.amazonaws.com/"

// AWS's conditions, as JSON Pointers into claimAWS.
const (
	pointerAWSAccount = "claims./https:~1~1sts.amazonaws.com~1/aws_account"
	pointerAWSOrgID   = "claims./https:~1~1sts.amazonaws.com~1/org_id"
)

type aws struct{}

func (aws) Kind() Kind { return KindAWS }

// Defaults: an hour of age and lifetime. A token lives DurationSeconds,
// 5 minutes unless the caller asks for up to an hour, and a caller can
// request one per use. AWS sends a jti with every token (the discovery
// document lists it among claims_supported).
func (aws) Defaults() Defaults {
	return Defaults{TokenAge: time.Hour, TokenLifetime: time.Hour, JTIRequired: true, ReplayScope: ReplayScopeToken}
}

// Conditions: none of the first-class ones. The account, organization,
// OU path and the principal's tags are claims conditions, as JSON Pointers
// into "https://sts.amazonaws.com/" (/https:~1~1sts.amazonaws.com~1/aws_account,
// .../principal_tags/team). sub, the principal's ARN, cannot be matched
// (no kind's can), but read checks that its account is aws_account.
func (aws) Conditions() []Condition { return nil }

func (aws) Breadth() Breadth {
	return Breadth{
		AnyOf: []string{pointerAWSAccount, pointerAWSOrgID},
		Message: "a mapping of an aws issuer must constrain the account or the organization: " +
			"set claims./https:~1~1sts.amazonaws.com~1/aws_account or claims./https:~1~1sts.amazonaws.com~1/org_id",
		Detail: "the mapping constrains neither the account nor the organization: it admits nothing",
	}
}

func (aws) Guards(*Claims) []Guard { return nil }

// Lint: the issuer is the account's, but a mapping states whose tokens it
// admits: the account, or the organization whose accounts it trusts, so
// that an issuer registered for another account (or re-pointed) does not
// carry the mapping with it.
func (aws) Lint() LintRules {
	return LintRules{
		TenantPin: []string{pointerAWSAccount, pointerAWSOrgID},
		TenantPinMessage: "the mapping does not say whose AWS tokens it admits: pin claims./https:~1~1sts.amazonaws.com~1/aws_account " +
			"(the 12-digit account) or claims./https:~1~1sts.amazonaws.com~1/org_id (o-...), literally",
		RefProtectedCaveat: "AWS tokens name no ref",
	}
}

func (aws) Issuer() IssuerRules {
	return IssuerRules{Hosts: []string{"*.tokens.sts.global.api.aws"},
		AudienceHint: "aws sts get-web-identity-token --audience <the bridge's audience> --signing-algorithm RS256 (a regional STS endpoint)"}
}

// read: the account is required, 12 digits, and the one of sub's ARN
// (arn:<partition>:<service>::<account>:<resource>); the account becomes
// the owner id (the per-owner rate limit's key).
func (aws) read(r *claimReader, c *Claims) {
	account := r.requiredNested(claimAWS, "aws_account")
	r.nested(claimAWS, "source_region")
	org := r.nested(claimAWS, "org_id")
	r.nested(claimAWS, "ou_path")
	r.check(claimAWS+"aws_account", account, func(s string) bool { return len(s) == 12 && isDigits(s) })
	r.check(claimAWS+"org_id", org, func(s string) bool { return strings.HasPrefix(s, "o-") && validPathSegment(s) })
	if r.err != nil {
		return
	}
	arn := strings.Split(c.Subject, ":")
	if len(arn) < 6 || arn[0] != "arn" || arn[4] != account {
		r.err = fail(ReasonInvalidClaim, "sub %s is not an ARN of the account %s", quote(c.Subject), account)
		return
	}
	c.RepositoryOwnerID = account
	c.RepositoryOwner = org
}
