package mapping

import (
	"github.com/oidc-bridge/oidc-bridge/providers"
)

// Entra ID's limits on what an azure mapping decides, each with its source.
//
// The bridge's client assertion (providers/azure) carries iss = the bridge's
// issuer URL, sub = providers.Subject("azure", mapping name), aud =
// api://AzureADTokenExchange (or the sovereign cloud's value), nbf/iat now
// and exp at most 5 minutes later (shorter when the requested duration is):
// a mapping decides only the subject, through its name, and the tenant,
// application and scope. max_duration_seconds never lengthens the assertion:
// Entra decides the access token's lifetime itself.
const (
	// azureMaxSubject: a federated identity credential's subject (and
	// issuer, and its one audience) holds at most 600 characters, and the
	// assertion's sub must equal it exactly,
	// https://learn.microsoft.com/entra/workload-id/workload-identity-federation-considerations
	// and https://learn.microsoft.com/graph/api/resources/federatedidentitycredential.
	azureMaxSubject = 600
)

// checkAzureMapping refuses a mapping name whose assertion subject no
// federated identity credential could hold. Mapping names (at most 64
// characters) keep it at 90 characters today; the check keeps that true if
// the prefix or the name rule ever change.
func checkAzureMapping(m *Mapping) error {
	return checkAzureSubject(m.Name)
}

func checkAzureSubject(name string) error {
	if n := len(providers.Subject(ProviderAzure, name)); n > azureMaxSubject {
		return invalid("name", "makes the client assertion's subject %d characters long; an Entra federated identity credential's subject holds at most %d", n, azureMaxSubject)
	}
	return nil
}

// checkAzureTarget: tenant and client ids are GUIDs (the bridge addresses the
// tenant by id, never by domain), and the scope is the client credentials
// grant's only form, <resource>/.default: Entra refuses any other scope in
// that grant with AADSTS1002012 ("Client credential flows must have a scope
// value with /.default suffixed to the resource identifier"),
// https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow.
func checkAzureTarget(t *AzureTarget) error {
	if !validGUID(t.TenantID) {
		return invalid("target.tenant_id", "must be a GUID like 00000000-0000-0000-0000-000000000000")
	}
	if !validGUID(t.ClientID) {
		return invalid("target.client_id", "must be a GUID like 00000000-0000-0000-0000-000000000000")
	}
	if t.Scope != "" && !validAzureScope(t.Scope) {
		return invalid("target.scope", "must be a resource's .default scope, like https://management.azure.com/.default or api://<app id>/.default")
	}
	return nil
}
