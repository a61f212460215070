// Package jwt mints the bridge's own JWTs for internal services: the
// result of an RFC 8693 token exchange in which the pipeline's token is the
// subject token and the mapping's target names the audience. The services
// verify them against the bridge's discovery document and JWKS
// (BRIDGE_PUBLIC_URL/.well-known/openid-configuration), as any OIDC token.
//
// A token's claims:
//
//   - iss: the bridge (signing.Signer.Issuer); iat: when it was signed.
//   - aud: the target's audience, a single string.
//   - sub: "oidc-bridge:jwt:mapping:<mapping>" (Subject), the same for every
//     pipeline the mapping admits, and never the subject of any other
//     token the bridge signs (its AWS, Google and Azure assertions), so that
//     no pipeline can choose a sub that passes for one. The pipeline
//     token's sub, exactly as its issuer wrote it (e.g. GitHub's
//     "repo:acme/web:environment:prod"), is in src_sub; it is unique only
//     per issuer, so a service that pins it must pin src_iss too.
//   - aud: never a cloud's federation audience (providers.CloudAudience:
//     sts.amazonaws.com and the other AWS partitions, api://AzureADTokenExchange
//     and its variants, any Google API host): such a target is refused when
//     written and, should it be stored behind the API's back, at mint time
//     (InvalidTarget).
//   - exp: the mint's time plus the request's duration (60 s to 24 h, the
//     bridge having capped it by the mapping); nbf: the mint's time; jti:
//     the issuance id (the ledger row).
//   - src_iss and src_sub, the pipeline token's iss and sub, and, when the
//     pipeline's token carries them: repository, repository_id, repository_owner, ref,
//     ref_type, sha, environment, event_name, workflow_ref, actor, run_id,
//     run_attempt, job_id (the normalised claims of identity.Claims, the same
//     for GitHub and GitLab); mapping, the mapping's name.
//   - act (RFC 8693 §4.1): the acting party, the pipeline's own identity
//     {"iss": <pipeline iss>, "sub": <pipeline sub>}. When the pipeline's
//     token carried an act itself (a token of this bridge presented back to
//     it, the bridge being registered as its own issuer), that chain is
//     nested as the new act's act, keeping only iss and sub of each level;
//     a chain longer than Config.MaxDelegationDepth is refused
//     (DelegationTooDeep), a malformed one too (InvalidDelegation).
//   - the target's static claims, which may name none of the claims above
//     nor those of the bridge's cloud assertions (ReservedClaims), nor a
//     claim a cloud reads (providers.CloudClaim: https://aws.amazon.com/...):
//     such a target is refused (InvalidTarget) rather
//     than let a static value pass for the pipeline's.
//
// The credential's token_type is "Bearer" (RFC 8693 §2.2.1): the token is
// meant to be presented to its audience as an OAuth bearer access token,
// not only to be read. Tokens are signed RS256; their id in the ledger is
// providers.TokenID.
//
// This package does not decide who may have which audience: the bridge has
// matched the mapping already. It does not store or log the tokens.
//
// The package owns the jwt target (target.go: its type, its one strict
// decode, the reserved claims and cloud audiences it refuses, and its Spec:
// the 60..86400 bounds). The admin API runs the decode through Spec when a
// mapping is written; Mint runs it again.
package jwt
