package bridge

import (
	"fmt"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/ledger"
	"github.com/oidc-bridge/oidc-bridge/mapping"
	"github.com/oidc-bridge/oidc-bridge/providers"
)

// The edge of the server: the wire types of package api to and from the
// domain's (mapping, ledger, providers). Every handler answers api types
// and decodes into them, so that the contract is bridge/api's alone.

func issuerOf(is api.Issuer) mapping.Issuer {
	return mapping.Issuer{Name: is.Name, URL: is.URL, Audiences: is.Audiences, Kind: is.Kind, Enabled: is.Enabled,
		ReplayScope: is.ReplayScope, MaxTokenAgeSeconds: is.MaxTokenAgeSeconds, MaxTokenLifetimeSeconds: is.MaxTokenLifetimeSeconds,
		CreatedAt: is.CreatedAt, UpdatedAt: is.UpdatedAt, Warnings: warningsOf(is.Warnings)}
}

func apiIssuer(is mapping.Issuer) api.Issuer {
	return api.Issuer{Name: is.Name, URL: is.URL, Audiences: is.Audiences, Kind: is.Kind, Enabled: is.Enabled,
		ReplayScope: is.ReplayScope, MaxTokenAgeSeconds: is.MaxTokenAgeSeconds, MaxTokenLifetimeSeconds: is.MaxTokenLifetimeSeconds,
		CreatedAt: is.CreatedAt, UpdatedAt: is.UpdatedAt, Warnings: apiWarnings(is.Warnings)}
}

func mappingOf(m api.Mapping) mapping.Mapping {
	c := m.Conditions
	return mapping.Mapping{Name: m.Name, Issuer: m.Issuer, Enabled: m.Enabled,
		Conditions: mapping.Conditions{Repository: (*mapping.Values)(c.Repository), RepositoryID: (*mapping.Values)(c.RepositoryID),
			Ref: (*mapping.Values)(c.Ref), Environment: (*mapping.Values)(c.Environment), EventName: (*mapping.Values)(c.EventName),
			WorkflowRef: (*mapping.Values)(c.WorkflowRef), Claims: claimsOf(c.Claims)},
		Provider: m.Provider, Target: m.Target, MaxDurationSeconds: m.MaxDurationSeconds,
		Quota: (*mapping.Quota)(m.Quota), Mode: m.Mode, CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt, Warnings: warningsOf(m.Warnings)}
}

// apiMapping is m as the API shows it: everything but the store's id.
func apiMapping(m mapping.Mapping) api.Mapping {
	c := m.Conditions
	return api.Mapping{Name: m.Name, Issuer: m.Issuer, Enabled: m.Enabled,
		Conditions: api.Conditions{Repository: (*api.Values)(c.Repository), RepositoryID: (*api.Values)(c.RepositoryID),
			Ref: (*api.Values)(c.Ref), Environment: (*api.Values)(c.Environment), EventName: (*api.Values)(c.EventName),
			WorkflowRef: (*api.Values)(c.WorkflowRef), Claims: apiClaims(c.Claims)},
		Provider: m.Provider, Target: m.Target, MaxDurationSeconds: m.MaxDurationSeconds,
		Quota: (*api.Quota)(m.Quota), Mode: m.Mode, CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt, Warnings: apiWarnings(m.Warnings)}
}

// claimsOf and apiClaims convert claims conditions: the domain's and the
// wire's Values share one form (condvalue.Values); nil stays nil.
func claimsOf(in map[string]api.Values) map[string]mapping.Values {
	if in == nil {
		return nil
	}
	out := make(map[string]mapping.Values, len(in))
	for k, v := range in {
		out[k] = mapping.Values(v)
	}
	return out
}

func apiClaims(in map[string]mapping.Values) map[string]api.Values {
	if in == nil {
		return nil
	}
	out := make(map[string]api.Values, len(in))
	for k, v := range in {
		out[k] = api.Values(v)
	}
	return out
}

// warningsOf and apiWarnings convert lint warnings; nil stays nil
// (warnings are omitempty).
func warningsOf(ws []api.Warning) []mapping.Warning {
	if ws == nil {
		return nil
	}
	out := make([]mapping.Warning, len(ws))
	for i, w := range ws {
		out[i] = mapping.Warning(w)
	}
	return out
}

func apiWarnings(ws []mapping.Warning) []api.Warning {
	if ws == nil {
		return nil
	}
	out := make([]api.Warning, len(ws))
	for i, w := range ws {
		out[i] = api.Warning(w)
	}
	return out
}

func apiMappings(ms []mapping.Mapping) []api.Mapping {
	out := make([]api.Mapping, len(ms))
	for i := range ms {
		out[i] = apiMapping(ms[i])
	}
	return out
}

func apiUsage(u ledger.Usage) api.Usage {
	out := api.Usage{Mapping: u.Mapping, WindowSeconds: u.WindowSeconds, JobWindowSeconds: u.JobWindowSeconds,
		PerHour: u.PerHour, PerJob: u.PerJob, Issued: u.Issued}
	if u.Repositories != nil {
		out.Repositories = make([]api.RepositoryUsage, len(u.Repositories))
		for i, r := range u.Repositories {
			out.Repositories[i] = api.RepositoryUsage(r)
		}
	}
	if u.Jobs != nil {
		out.Jobs = make([]api.JobUsage, len(u.Jobs))
		for i, j := range u.Jobs {
			out.Jobs[i] = api.JobUsage(j)
		}
	}
	return out
}

func apiExplanation(e mapping.Explanation) api.Explanation {
	out := api.Explanation{Mapping: e.Mapping, Provider: e.Provider, Enabled: e.Enabled, Mode: e.Mode,
		Admitted: e.Admitted, Reason: e.Reason, Detail: e.Detail}
	if e.Conditions != nil {
		out.Conditions = make([]api.ConditionResult, len(e.Conditions))
		for i, c := range e.Conditions {
			out.Conditions[i] = api.ConditionResult(c)
		}
	}
	return out
}

// credentialsBody is a provider's credential body as the contract's
// credentials object.
func credentialsBody(body any) (any, error) {
	switch b := body.(type) {
	case providers.AWSCredentials:
		return api.AWSCredentials(b), nil
	case providers.GCPCredentials:
		return api.GCPCredentials(b), nil
	case providers.AzureCredentials:
		return api.AzureCredentials(b), nil
	case providers.JWTCredentials:
		return api.JWTCredentials(b), nil
	}
	return nil, fmt.Errorf("bridge: credential body %T has no wire form", body)
}
