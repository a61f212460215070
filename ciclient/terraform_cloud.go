package ciclient

import (
	"sort"
	"strings"
)

// HCP Terraform: a run whose workspace sets TFC_WORKLOAD_IDENTITY_AUDIENCE
// gets a token of that audience in $TFC_WORKLOAD_IDENTITY_TOKEN; one that
// sets TFC_WORKLOAD_IDENTITY_AUDIENCE_<TAG> gets
// $TFC_WORKLOAD_IDENTITY_TOKEN_<TAG>
// (https://developer.hashicorp.com/terraform/cloud-docs/workspaces/dynamic-provider-credentials/manual-generation).
// The tagged token whose audience is the bridge's is taken, else the
// untagged one; the tag is also read as a prefix
// (TFC_<TAG>_WORKLOAD_IDENTITY_AUDIENCE, _TOKEN), the form that the
// provider-specific variables take. Static: one token per run phase.
const (
	envTFCToken    = "TFC_WORKLOAD_IDENTITY_TOKEN"
	envTFCAudience = "TFC_WORKLOAD_IDENTITY_AUDIENCE"
)

var terraformCloud = ci{name: "terraform_cloud", source: func(env map[string]string, audience string) (Source, error) {
	var tokens []string // the variables of the tagged tokens of the audience
	for k, v := range env {
		if strings.TrimSpace(v) != audience {
			continue
		}
		if tag, ok := strings.CutPrefix(k, envTFCAudience+"_"); ok && tag != "" {
			tokens = append(tokens, envTFCToken+"_"+tag)
		} else if mid, ok := strings.CutSuffix(strings.TrimPrefix(k, "TFC_"), "_WORKLOAD_IDENTITY_AUDIENCE"); ok && mid != "" && strings.HasPrefix(k, "TFC_") {
			tokens = append(tokens, "TFC_"+mid+"_WORKLOAD_IDENTITY_TOKEN")
		}
	}
	sort.Strings(tokens)
	for _, name := range tokens {
		if env[name] != "" {
			return newEnvSource(env, name)
		}
	}
	if env[envTFCToken] == "" {
		return nil, nil
	}
	return newEnvSource(env, envTFCToken)
}}
