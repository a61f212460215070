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
		JWKS: is.JWKS, JWKSURL: is.JWKSURL,
		CreatedAt: is.CreatedAt, UpdatedAt: is.UpdatedAt, Warnings: warningsOf(is.Warnings)}
}

func apiIssuer(is mapping.Issuer) api.Issuer {
	return api.Issuer{Name: is.Name, URL: is.URL, Audiences: is.Audiences, Kind: is.Kind, Enabled: is.Enabled,
		ReplayScope: is.ReplayScope, MaxTokenAgeSeconds: is.MaxTokenAgeSeconds, MaxTokenLifetimeSeconds: is.MaxTokenLifetimeSeconds,
		JWKS: is.JWKS, JWKSURL: is.JWKSURL,
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
// wire's Values share one form (condvalue.Values).
func claimsOf(in map[string]api.Values) map[string]mapping.Values {
	return eachValue(in, func(v api.Values) mapping.Values { return mapping.Values(v) })
}

func apiClaims(in map[string]mapping.Values) map[string]api.Values {
	return eachValue(in, func(v mapping.Values) api.Values { return api.Values(v) })
}

// eachValue converts every value of in with conv; nil stays nil.
func eachValue[From, To any](in map[string]From, conv func(From) To) map[string]To {
	if in == nil {
		return nil
	}
	out := make(map[string]To, len(in))
	for k, v := range in {
		out[k] = conv(v)
	}
	return out
}

// each converts every element of in with conv; nil stays nil (the
// omitempty lists stay absent, the others null as before).
func each[From, To any](in []From, conv func(From) To) []To {
	if in == nil {
		return nil
	}
	out := make([]To, len(in))
	for i, v := range in {
		out[i] = conv(v)
	}
	return out
}

func warningsOf(ws []api.Warning) []mapping.Warning {
	return each(ws, func(w api.Warning) mapping.Warning { return mapping.Warning(w) })
}

func apiWarnings(ws []mapping.Warning) []api.Warning {
	return each(ws, func(w mapping.Warning) api.Warning { return api.Warning(w) })
}

func apiUsage(u ledger.Usage) api.Usage {
	return api.Usage{Mapping: u.Mapping, WindowSeconds: u.WindowSeconds, JobWindowSeconds: u.JobWindowSeconds,
		PerHour: u.PerHour, PerJob: u.PerJob, Issued: u.Issued,
		Repositories: each(u.Repositories, func(r ledger.RepositoryUsage) api.RepositoryUsage { return api.RepositoryUsage(r) }),
		Jobs:         each(u.Jobs, func(j ledger.JobUsage) api.JobUsage { return api.JobUsage(j) })}
}

func apiExplanation(e mapping.Explanation) api.Explanation {
	return api.Explanation{Mapping: e.Mapping, Provider: e.Provider, Enabled: e.Enabled, Mode: e.Mode,
		Admitted: e.Admitted, Reason: e.Reason, Detail: e.Detail,
		Conditions:     each(e.Conditions, func(c mapping.ConditionResult) api.ConditionResult { return api.ConditionResult(c) }),
		ResolvedTarget: e.ResolvedTarget, TargetError: e.TargetError}
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
	case providers.GitHubCredentials:
		return api.GitHubCredentials(b), nil
	}
	return nil, fmt.Errorf("bridge: credential body %T has no wire form", body)
}
