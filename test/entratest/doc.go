// Package entratest runs a wire-compatible Microsoft Entra ID (Azure AD)
// token service for tests: a real HTTPS server on 127.0.0.1 (MSAL refuses
// authorities that are not https) that answers what azidentity's
// ClientAssertionCredential asks of Entra when instance discovery is
// disabled:
//
//   - GET /{tenant}/v2.0/.well-known/openid-configuration, the tenant's
//     OpenID metadata, whose issuer, token_endpoint and jwks_uri point back at
//     the fake (MSAL checks that the issuer's host is the authority's);
//   - POST /{tenant}/oauth2/v2.0/token with grant_type=client_credentials and
//     a client assertion of type
//     urn:ietf:params:oauth:client-assertion-type:jwt-bearer, verified as
//     Entra verifies the external token of a federated identity credential;
//   - GET /{tenant}/discovery/v2.0/keys, the keys that sign its access
//     tokens.
//
// Unit tests of providers/azure point the real azidentity at it through
// AZURE_AUTHORITY_HOST (or cloud.Configuration) and its Client; end-to-end
// tests run the bridge binary with AZURE_AUTHORITY_HOST=URL() and
// SSL_CERT_FILE=WriteCertFile(t), so that the binary trusts its certificate.
//
// Applications exist only through AddFederatedCredential: (tenant, client id)
// → federated identity credentials {issuer, subject, audiences}. A client
// assertion is accepted when, as in Entra:
//
//   - it is a compact JWS signed with RS256 by a key that the issuer
//     publishes: the fake reads {iss}/.well-known/openid-configuration, then
//     its jwks_uri, caches the keys per issuer and refetches them once when a
//     kid is unknown (plain http issuers are allowed, which Entra does not
//     allow, so that local test issuers work);
//   - a credential of the application has exactly its iss (AADSTS70021
//     otherwise), one of that credential's audiences is in its aud
//     (AADSTS700212) and its sub equals the credential's subject
//     (AADSTS700213); all three comparisons are case-sensitive;
//   - exp is in the future and nbf, when present, in the past, each with
//     five minutes of clock skew (AADSTS700024); with
//     WithMaxAssertionLifetime, exp is also at most that long after nbf (or
//     iat), a rule of the fake's (Entra sets none, and asks for 5-10
//     minutes), answered AADSTS700024 too.
//
// AddFederatedCredential takes only credentials Entra would create
// (ValidateFederatedCredential): exactly one audience; issuer, subject and
// audience of at most 600 characters, without wildcards or surrounding
// whitespace; a unique issuer and subject per application; at most 20 per
// application. It panics on any other, as Refuse does on a bad code.
//
// Like Entra, the fake does not reject a reused assertion (Kubernetes
// projected tokens are presented many times): tests that care compare the
// assertion jti recorded in Calls. Scopes must name exactly one resource as
// <resource>/.default (AADSTS1002012); the OpenID scopes MSAL adds (openid,
// profile, offline_access) are ignored. Any resource is accepted.
//
// Success answers {token_type: Bearer, expires_in, ext_expires_in,
// access_token}, the access token being an RS256 JWT of the fake's own key
// (aud the resource, appid the client, tid the tenant). Failures answer
// Entra's error JSON {error, error_description "AADSTSnnn: ...", error_codes,
// timestamp, trace_id, correlation_id, error_uri} with Entra's status (400,
// or 401 for invalid_client).
//
// Controls (Refuse, Fail, Drop, Hang for the token endpoint; FailMetadata and
// HangMetadata for the metadata document) apply to requests that arrive
// after they are set. Every request is recorded as a Call. All methods are
// safe for concurrent use.
//
// It is for tests only: production code must never import it.
package entratest
