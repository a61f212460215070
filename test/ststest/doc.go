// Package ststest runs a wire-compatible AWS Security Token Service for
// tests: a real HTTP server on 127.0.0.1 that speaks STS's Query protocol
// (form-encoded POST, XML answers and XML errors in AWS's shapes), checks
// every request's SigV4 signature against the access keys it knows, and
// answers AssumeRole (and GetCallerIdentity) with fresh ASIA… credentials.
// AssumeRoleWithWebIdentity needs no signature, as in STS: the fake verifies
// its token against the OIDC issuers a test trusts (TrustOIDCProvider),
// fetching their discovery documents and JWKS like IAM does, and answers
// InvalidIdentityToken, ExpiredTokenException, IDPRejectedClaim or
// IDPCommunicationError as STS would.
//
// Unit tests of providers/aws point the real AWS SDK at it with
// AWS_ENDPOINT_URL_STS; end-to-end tests run the bridge binary with the same
// variable plus AWS_ACCESS_KEY_ID=AccessKeyID,
// AWS_SECRET_ACCESS_KEY=SecretAccessKey and AWS_REGION.
//
// It validates what STS validates before any policy is evaluated
// (DurationSeconds 900..43200, RoleSessionName and SourceIdentity charset and
// length, the role ARN's shape, session tags, external id, policy JSON) and
// answers ValidationError like STS does. It does not evaluate IAM policies:
// every well-formed, correctly signed AssumeRole succeeds unless a test asks
// for a refusal (Refuse), throttling (Throttle), server errors (Fail), a
// connection lost after the request was read (Drop), latency (SetLatency) or
// a hang (Hang). For AssumeRoleWithWebIdentity a role may be given the web
// identity trust policy the bridge's documentation writes (TrustRole:
// StringEquals on iss, aud and sub). PackedPolicySize and
// SessionTokenUtilization are approximations, never enforced.
//
// Every request, including refused and unsigned ones, is recorded as a Call.
// All methods are safe for concurrent use.
//
// It is for tests only: production code must never import it.
package ststest
