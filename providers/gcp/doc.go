// Package gcp mints Google Cloud access tokens for the bridge: an OAuth 2.0
// access token of the target's service account from IAM Service Account
// Credentials' generateAccessToken (REST, JSON over HTTP), with the target's
// scopes (default cloud-platform), delegates and req.Duration as lifetime
// (Google grants up to 3600 s, or 43200 s where the org policy
// constraints/iam.allowServiceAccountCredentialLifetimeExtension lists the
// account, which the target says with allow_lifetime_extension; a longer
// duration is refused as InvalidDuration before Google is called).
//
// Who calls generateAccessToken depends on the target's mode:
//
//   - impersonate (the default): the bridge's own Application Default
//     Credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud's file, the
//     metadata server), found on the first such mint, so a bridge without
//     them starts and only these mints fail, with CredentialsUnavailable.
//     The bridge's principal needs roles/iam.serviceAccountTokenCreator on
//     the target account (or on the first delegate, each delegate on the
//     next).
//   - workload_identity: the bridge holds no Google key. It signs a JWT with
//     its own signing key and exchanges it at Google STS (POST /v1/token,
//     RFC 8693) through the target's workload identity pool provider for a
//     federated token, which then calls generateAccessToken.
//
// The JWT of workload_identity (RS256, kid of the bridge's active key):
//
//	iss  the bridge's issuer URL (BRIDGE_PUBLIC_URL); Google fetches
//	     iss/.well-known/openid-configuration and the JWKS it names
//	aud  https://iam.googleapis.com/projects/NUMBER/locations/global/
//	     workloadIdentityPools/POOL/providers/PROVIDER — the provider's
//	     resource name with "//" replaced by "https://", which a provider
//	     without allowed audiences accepts by default (it also accepts the
//	     bare "//iam.googleapis.com/..." form); a provider with allowed
//	     audiences must list this value
//	sub  oidc-bridge:gcp:mapping:<mapping name>, e.g.
//	     oidc-bridge:gcp:mapping:web-prod-deploy (at most 88 bytes, within
//	     google.subject's 127); nothing of the pipeline's token, and no
//	     other token the bridge signs (a jwt mapping's, an AWS or Azure
//	     assertion) has it
//	exp  5 minutes after iat; jti a fresh UUID
//	mapping, service_account, issuance_id, and from the pipeline's verified
//	token when present: ci_issuer, ci_subject (its sub), ci_kind, repository, repository_id,
//	repository_owner, ref, environment, event_name, workflow_ref, run_id,
//	run_attempt, job_id — all strings, for attribute mappings and Cloud
//	Audit Logs.
//
// The subject names the mapping because the mapping is the bridge's
// authorization decision: bind each service account to the mappings that may
// use it, not to the pool as a whole. The Google side, for a bridge at
// https://bridge.example.com and a mapping web-prod-deploy:
//
//	gcloud iam workload-identity-pools create oidc-bridge --location=global
//	gcloud iam workload-identity-pools providers create-oidc bridge \
//	  --location=global --workload-identity-pool=oidc-bridge \
//	  --issuer-uri=https://bridge.example.com \
//	  --attribute-mapping=google.subject=assertion.sub,attribute.mapping=assertion.mapping,attribute.repository=assertion.repository
//	gcloud iam service-accounts add-iam-policy-binding deploy@acme-prod.iam.gserviceaccount.com \
//	  --role=roles/iam.workloadIdentityUser \
//	  --member=principal://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/oidc-bridge/subject/oidc-bridge:gcp:mapping:web-prod-deploy
//
// and the mapping's target:
//
//	{"service_account": "deploy@acme-prod.iam.gserviceaccount.com",
//	 "mode": "workload_identity",
//	 "workload_identity_provider": "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/oidc-bridge/providers/bridge"}
//
// Google must reach the issuer URL over HTTPS. A binding by attribute
// (principalSet://iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/oidc-bridge/attribute.repository/acme/web)
// works too, but trusts every mapping of that repository.
//
// Endpoints are Google's unless Config overrides them (the binary reads
// BRIDGE_GCP_IAMCREDENTIALS_ENDPOINT and BRIDGE_GCP_STS_ENDPOINT); Application
// Default Credentials follow their own token_uri.
//
// Errors are *providers.Error whose Code is Google's status for
// generateAccessToken (PERMISSION_DENIED, NOT_FOUND, INVALID_ARGUMENT,
// UNAUTHENTICATED: refused; UNAVAILABLE, INTERNAL, RESOURCE_EXHAUSTED, other
// 5xx and 429: unavailable), STS's OAuth error (invalid_grant,
// invalid_target, ...) for the exchange, or CredentialsUnavailable,
// SignerUnavailable, InvalidTarget, InvalidDuration, Timeout, Canceled,
// ConnectionError, InvalidResponse — never a message, e-mail or project,
// which go to the log only. Nothing is retried: each step of a mint (STS,
// generateAccessToken) is one call, the client libraries' default retries
// replaced by none, so that one issuance record stands for at most one
// token; the client retries, with a fresh pipeline token. Only
// generateAccessToken's failures can be Indeterminate (a timeout or broken connection after sending, a 504, an
// answer that does not decode): it alone mints the credential, while a lost
// federated or bridge token is harmless. Tokens, assertions and keys are
// never logged; the client libraries' own request logging is silenced.
//
// This package does not decide which account a pipeline may have or for
// how long: the bridge has already matched the mapping and bounded the
// duration.
//
// The package owns the gcp target (target.go: its type, its one strict
// decode and its rules, each with Google's source: service account forms,
// scopes, delegates, the workload identity pool provider, the lifetime
// limits) and its Spec (spec.go: the 60..43200 bounds, the lifetime
// extension, the google.subject limit). The admin API runs the decode
// through Spec when a mapping is written; Mint runs it again.
package gcp
