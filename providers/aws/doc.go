// Package aws mints AWS credentials for the bridge with sts:AssumeRole
// (target mode assume_role, the default) or sts:AssumeRoleWithWebIdentity
// (mode web_identity, where the bridge holds no AWS key).
//
// The bridge's own credentials come from the AWS SDK's default chain
// (environment keys, shared config, IRSA / web identity, container and
// instance roles) and STS is reached where the SDK's standard endpoint
// settings say (AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL), else at the regional
// endpoint of the target's region. Each call is signed for the target's
// region.
//
// What the role sees of the pipeline, all derived from the verified token's
// claims and never from the request body:
//
//   - RoleSessionName, for people reading CloudTrail:
//     <kind>-<repository>-<run_id>[-<run_attempt>], e.g.
//     gh-acme.web-12345678901-1 (GitHub) or gl-platform.app-1212 (GitLab),
//     where kind is gh, gl or ci (generic issuers). In the repository "/"
//     becomes "." and any other character outside [A-Za-z0-9_.-] becomes
//     "_"; in run id and attempt anything but letters and digits becomes
//     "_", so "-" only ever separates parts. Claims that only the
//     pipeline's author controls (ref, actor, environment) never enter it.
//     A part that lost characters (replaced, or cut so the name fits in 64:
//     the repository gives way first, run id and attempt are capped at 20
//     and 8) ends in "=" and six hex digits of the original's SHA-256, so
//     that such parts never collide with each other or with clean ones ("="
//     appears nowhere else). The repository's "." and "/" are not told
//     apart here; SourceIdentity and the tags are exact.
//   - SourceIdentity, stable for a repository across renames and runs and
//     kept through role chaining: <kind>-<repository_id>, e.g. gh-123456789
//     (the repository's name in the same form as above when the token has
//     no id).
//   - Session tags: repository, repository_id, ref, environment, event_name,
//     actor, run_id, run_attempt and issuance_id (the ledger row), each only
//     when not empty. Characters AWS does not allow in tag values become "_"
//     (never dropped, so a hostile ref cannot turn into a permitted one);
//     values over 256 characters are cut to 247 and end in "+" and eight hex
//     digits of their SHA-256.
//
// Roles therefore need sts:TagSession and sts:SetSourceIdentity, besides
// sts:AssumeRole, in their trust policy for the bridge's principal; without
// them STS answers AccessDenied.
//
// # Mode web_identity
//
// The bridge signs a token with its own key (Config.Signer, the keys
// published at BRIDGE_PUBLIC_URL/.well-known/jwks.json) and presents it to
// sts:AssumeRoleWithWebIdentity in an unsigned call: no AWS credentials of
// the bridge are read or needed. RoleSessionName, DurationSeconds and the
// session policy are as above; AssumeRoleWithWebIdentity takes no
// SourceIdentity, tags or external id as parameters, so the source identity
// and the session tags (the same values as above) travel in the token's
// claims https://aws.amazon.com/source_identity and
// https://aws.amazon.com/tags (principal_tags, none transitive). The token:
//
//   - iss: the bridge's public URL; aud: "sts.amazonaws.com"
//     (WebIdentityAudience);
//   - sub: "oidc-bridge:aws:mapping:<mapping>" (WebIdentitySubject), e.g.
//     "oidc-bridge:aws:mapping:web-prod-deploy": nothing of the pipeline's
//     token, and no other token the bridge signs (a jwt mapping's, an
//     Azure or Google assertion) has it;
//   - iat now, nbf a minute earlier (for clock skew), exp 5 minutes later;
//     jti the issuance id;
//   - mapping, src_iss and src_sub (the pipeline token's iss and sub), repository,
//     repository_id, ref, environment, event_name, workflow_ref, actor,
//     run_id, run_attempt, when the pipeline's token has them.
//
// IAM conditions can only test a custom OIDC provider's aud and sub, so sub
// is what a role pins. The account needs an IAM OIDC provider for the
// bridge's URL with client id sts.amazonaws.com, and the role a trust policy
// such as:
//
//	{
//	  "Version": "2012-10-17",
//	  "Statement": [{
//	    "Effect": "Allow",
//	    "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/bridge.example.com"},
//	    "Action": ["sts:AssumeRoleWithWebIdentity", "sts:TagSession", "sts:SetSourceIdentity"],
//	    "Condition": {"StringEquals": {
//	      "bridge.example.com:aud": "sts.amazonaws.com",
//	      "bridge.example.com:sub": "oidc-bridge:aws:mapping:web-prod-deploy"
//	    }}
//	  }]
//	}
//
// Pin both with StringEquals, never a pattern: the mapping is the bridge's
// authorization decision, and the subject names it exactly. STS's web
// identity refusals (InvalidIdentityToken,
// ExpiredTokenException, IDPRejectedClaim, AccessDenied) are ErrRefused;
// IDPCommunicationError (STS could not fetch the bridge's keys) is
// ErrUnavailable. Without a Signer, or when signing fails,
// such mints fail with ErrUnavailable, code SignerUnavailable, before any
// call.
//
// Each mint is one STS call: the SDK's retries are off (aws.NopRetryer,
// whatever AWS_MAX_ATTEMPTS says), so that one issuance record stands for at
// most one session. Throttling and 5xx are ErrUnavailable (the client
// retries, with a fresh pipeline token); a timeout, a connection broken
// after the request was sent or an unreadable answer is also Indeterminate,
// as STS may have issued. Errors are *providers.Error whose Code is AWS's error
// code (or Timeout, InvalidTarget, ...), never the message, ARN or account,
// which go to the log only. Secrets and session tokens are never logged and
// SDK request/response logging is forced off.
//
// This package does not decide which role a pipeline may assume or for how
// long: the bridge has already matched the mapping and bounded the duration.
//
// The package owns the aws target (target.go: its type, its one strict
// decode and its rules, each with AWS's source: role ARN, region, session
// policy, external id, session tags and the packed-size estimate) and its
// Spec (spec.go: the 900..43200 bounds and, with RoleChaining, the one-hour
// cap of chained sessions). The admin API runs the decode through Spec when
// a mapping is written; Mint runs it again on the stored target.
package aws
