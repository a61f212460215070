package ciclient

// Bitbucket Pipelines: a step with `oidc: true` gets its token in
// $BITBUCKET_STEP_OIDC_TOKEN (https://support.atlassian.com/bitbucket-cloud/docs/integrate-pipelines-with-resource-servers-using-oidc/).
// Static: one token per step, whose audience the step's `oidc: audiences`
// sets (else the workspace's); an invalid_token refusal says so.
const envBitbucketToken = "BITBUCKET_STEP_OIDC_TOKEN"

var bitbucket = ci{name: "bitbucket", source: func(env map[string]string, _ string) (Source, error) {
	if env[envBitbucketToken] == "" {
		return nil, nil
	}
	s, err := newEnvSource(env, envBitbucketToken)
	if err != nil {
		return nil, err
	}
	s.(*envSource).note = "Bitbucket sets its audience: the step's `oidc: audiences`, else the workspace's identity provider audience, which the issuer must accept"
	return s, nil
}}
