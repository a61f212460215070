package ciclient

// Jenkins: the OpenID Connect Provider plugin
// (https://plugins.jenkins.io/oidc-provider/) gives a build its token
// through a credential binding, as a variable or a file of the name the
// pipeline chooses. The client reads the file that $OIDC_BRIDGE_TOKEN_FILE
// names (read anew per attempt; the binding mints one token per
// withCredentials block), else the token in $OIDC_BRIDGE_ID_TOKEN (static).
const EnvTokenFile = "OIDC_BRIDGE_TOKEN_FILE"

var jenkins = ci{name: "jenkins", detect: func(env map[string]string) bool { return env["JENKINS_URL"] != "" },
	source: func(env map[string]string, _ string) (Source, error) {
		if p := env[EnvTokenFile]; p != "" {
			return &fileSource{path: p, env: env}, nil
		}
		if env[EnvIDToken] != "" {
			return newEnvSource(env, EnvIDToken)
		}
		return nil, nil
	}}
