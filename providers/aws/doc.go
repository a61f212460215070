// Package aws mints AWS credentials for the bridge with sts:AssumeRole.
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
// Throttling, 5xx and transport errors are retried by the SDK's standard
// retryer (jittered exponential backoff, MaxAttempts, MaxBackoff) within the
// caller's deadline; its client-side retry quota stops retries early while
// STS keeps failing. Errors are *providers.Error whose Code is AWS's error
// code (or Timeout, InvalidTarget, ...), never the message, ARN or account,
// which go to the log only. Secrets and session tokens are never logged and
// SDK request/response logging is forced off.
//
// This package does not decide which role a pipeline may assume or for how
// long: the bridge has already matched the mapping and bounded the duration.
package aws
