package ciclient

// EnvIDToken is the variable that the GitLab template's id_tokens entry
// fills (actions/gitlab).
const EnvIDToken = "OIDC_BRIDGE_ID_TOKEN"

// gitlabIDToken: GitLab CI hands a job its tokens in the variables that its
// id_tokens keyword names; the template names one EnvIDToken. Static: one
// token per job and entry.
var gitlabIDToken = ci{name: "gitlab", source: func(env map[string]string, _ string) (Source, error) {
	if env[EnvIDToken] == "" {
		return nil, nil
	}
	return newEnvSource(env, EnvIDToken)
}}
