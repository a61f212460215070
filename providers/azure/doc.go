// Package azure mints Microsoft Entra ID access tokens for the bridge by
// workload identity federation: the bridge holds no Azure secret. For each
// mint it signs a client assertion with its own key (signing.Signer) and
// presents it, with azidentity's ClientAssertionCredential, to Entra's v2.0
// token endpoint for the target's tenant and application (an app
// registration or a user-assigned managed identity), asking for the target's
// scope (DefaultScope, Azure Resource Manager, when the target has none).
//
// The client assertion is a JWT (RS256) with
//
//	iss  the bridge's issuer URL (BRIDGE_PUBLIC_URL, Signer.Issuer())
//	sub  oidc-bridge:azure:mapping:<mapping name>
//	aud  api://AzureADTokenExchange (Config.Audience)
//	iat, nbf  now; exp  now + 5 minutes (less if the requested duration is)
//	jti  a random UUID, new for every token request
//
// and Entra accepts it only when the application has a federated identity
// credential with exactly that issuer, subject and audience (compared
// case-sensitively) and the signature verifies against the keys the issuer
// publishes at iss/.well-known/openid-configuration, which Entra must reach
// over https. Entra's limits (issuer, subject and audience at most 600
// characters each; exactly one audience per credential; at most 20
// credentials per application) are checked where each value is decided: the
// subject by the admin API, from the mapping name; the issuer and audience
// by New. The subject names the mapping, not the pipeline: the mapping's
// conditions decide which pipelines get the application's token, and each
// mapping that targets an application needs its own credential on it (at
// most 20 per application). An administrator sets it up like this:
//
//	APP_ID=$(az ad app create --display-name web-prod-deploy --query appId -o tsv)
//	az ad sp create --id "$APP_ID"
//	az ad app federated-credential create --id "$APP_ID" --parameters '{
//	  "name": "oidc-bridge-web-prod-deploy",
//	  "issuer": "https://bridge.example.com",
//	  "subject": "oidc-bridge:azure:mapping:web-prod-deploy",
//	  "audiences": ["api://AzureADTokenExchange"]
//	}'
//	az role assignment create --assignee "$APP_ID" --role Reader \
//	  --scope /subscriptions/<subscription id>/resourceGroups/<group>
//
// (for a user-assigned managed identity: az identity federated-credential
// create --identity-name <identity> --resource-group <group> --name ...
// --issuer ... --subject ... --audiences api://AzureADTokenExchange, and the
// identity's clientId as client_id), and the mapping's target is
// {"tenant_id": "<tenant id>", "client_id": "<APP_ID>", "scope":
// "https://management.azure.com/.default"}.
//
// Entra is reached at Config.AuthorityHost, else AZURE_AUTHORITY_HOST, else
// https://login.microsoftonline.com/, with instance discovery disabled: the
// authority is trusted as configured and nothing else is called (the
// provider refuses any request to another host). Each mint builds its own
// credential, so MSAL's caches (tenant metadata and tokens) live for one
// mint only: every exchange costs a metadata GET and a token POST, and every
// issued credential is a token Entra issued for that request, never one
// cached for another mapping or request. Entra decides the token's lifetime
// (typically 60 to 90 minutes); the requested duration only shortens the
// assertion.
//
// Nothing is retried: azcore's retries are off (MaxRetries -1), so a mint
// sends at most one token request and one issuance record stands for at
// most one token; the client retries, with a fresh pipeline token. Errors
// are *providers.Error whose Code is Entra's code,
// such as AADSTS70021 or AADSTS700213 (no matching federated identity
// credential), AADSTS700016 (unknown application), AADSTS90002 (unknown
// tenant), else its OAuth error or HTTPnnn, or Timeout, Canceled,
// ConnectionError, InvalidResponse, InvalidTarget: never Entra's message,
// which goes to the log with its trace and correlation ids. 4xx answers are
// ErrRefused; 5xx, 429, 408 and temporarily_unavailable are ErrUnavailable.
// A failure is Indeterminate when a token request may have reached Entra
// without its answer reaching the bridge. Tokens and assertions are never
// logged (a token is logged as providers.TokenID).
//
// This package does not decide which pipeline may have which token: the
// bridge has already matched the mapping.
//
// The package owns the azure target (target.go: its type, its one strict
// decode, its rules with Entra's sources, and its Spec: the 60..86400
// bounds and the federated credential's subject limit). The admin API runs
// the decode through Spec when a mapping is written; Mint runs it again.
package azure
