// Package gcptest runs wire-compatible fakes of the three Google endpoints
// the bridge's gcp provider talks to, on one real HTTP server on 127.0.0.1:
//
//   - IAM Service Account Credentials:
//     POST /v1/projects/-/serviceAccounts/{sa}:generateAccessToken, JSON in
//     ({scope, delegates, lifetime}) and out ({accessToken, expireTime}),
//     errors in Google's JSON shape
//     {"error":{"code":403,"message":...,"status":"PERMISSION_DENIED"}}.
//     Point BRIDGE_GCP_IAMCREDENTIALS_ENDPOINT at IAMCredentialsEndpoint.
//     generateIdToken on the same path takes {delegates, audience,
//     includeEmail} and answers {token}: an RS256 JWT of the fake's key
//     (IDTokenKeys, also at GET /oauth2/v3/certs) with Google's claims (iss
//     https://accounts.google.com, aud, azp and sub the account's UniqueID,
//     iat, exp an hour later, email and email_verified with includeEmail),
//     under the same grants (Allow) as generateAccessToken.
//   - The OAuth 2.0 token endpoint of service-account keys: POST /token with
//     grant_type urn:ietf:params:oauth:grant-type:jwt-bearer and an RS256
//     assertion signed by a key the fake issued (AddServiceAccountKey,
//     WriteCredentialsFile). The key file's token_uri names it, so a real
//     Google auth library given the file through
//     GOOGLE_APPLICATION_CREDENTIALS does its real JWT-bearer exchange here.
//   - Security Token Service: POST /v1/token (RFC 8693 token exchange, as a
//     form or as JSON in the camelCase of sts/v1 or in snake_case), which
//     verifies an OIDC subject token the way Google does for a workload
//     identity pool provider (AddWorkloadIdentityProvider): the issuer's
//     discovery document and JWKS are fetched over HTTP, then kid, alg
//     (RS256 or ES256), signature, iss, aud (the allowed audiences, or by
//     default the provider's resource name with or without the https:
//     prefix), iat in the past, exp in the future and less than 48 hours
//     after iat; the attribute mapping yields google.subject (at most 127
//     bytes) and attributes. Errors are OAuth-shaped:
//     {"error":"invalid_grant","error_description":...}. Point
//     BRIDGE_GCP_STS_ENDPOINT at STSEndpoint.
//
// generateAccessToken requires a bearer token the fake issued (at /token, at
// /v1/token, or an earlier generateAccessToken) that has not expired and
// carries the cloud-platform or iam scope; and, for each hop of the chain
// caller → delegates… → service account, that the hop's member was granted
// the next account with Allow (by e-mail, principal:// subject or
// principalSet:// attribute or pool). Nothing is allowed by default.
// Lifetimes above an hour are refused (400 INVALID_ARGUMENT) unless
// WithLifetimeExtension lists the account, as the org policy
// constraints/iam.allowServiceAccountCredentialLifetimeExtension does, and
// then above 12 hours. An account or delegate that is neither an e-mail nor
// a number is refused 400 INVALID_ARGUMENT ("Invalid form of account ID"),
// an e-mail outside gserviceaccount.com or a number that is no 21-digit
// unique id 404 NOT_FOUND, as Google answers.
//
// Tests steer failures per endpoint with Refuse, Fail, Drop (the connection
// closed after the request was read) and Hang, and undo
// them with Reset; Calls lists what each endpoint saw (never the bearer or
// subject tokens themselves); Lookup describes a token the fake issued. All
// methods are safe for concurrent use. Each Call records the request's
// Host, so that tests mapping a universe's host names to the fake
// (test/hosttest) see which endpoint the client resolved.
//
// Not modelled: IAM policies beyond Allow, attribute conditions, CEL beyond
// "assertion.NAME", token revocation, signBlob/signJwt, and
// every other Google API. It is for tests only: production code must never
// import it.
package gcptest
