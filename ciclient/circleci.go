package ciclient

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
)

// CircleCI (https://circleci.com/docs/openid-connect-tokens/): a job's
// $CIRCLE_OIDC_TOKEN_V2 (else the older $CIRCLE_OIDC_TOKEN) is static and
// its audience is the organization's id, whatever the bridge's. When the
// job has the circleci CLI, `circleci run oidc get --claims
// '{"aud":"<audience>"}'` gives a fresh token of the bridge's audience at
// each call, and is preferred.
const (
	envCircleToken   = "CIRCLE_OIDC_TOKEN"
	envCircleTokenV2 = "CIRCLE_OIDC_TOKEN_V2"
)

var circleci = ci{name: "circleci", detect: func(env map[string]string) bool { return env["CIRCLECI"] == "true" },
	source: func(env map[string]string, audience string) (Source, error) {
		if cli := lookPath(env, "circleci"); cli != "" {
			return &circleciSource{cli: cli, audience: audience, env: env}, nil
		}
		for _, name := range []string{envCircleTokenV2, envCircleToken} {
			if env[name] != "" {
				s, err := newEnvSource(env, name)
				if err != nil {
					return nil, err
				}
				es := s.(*envSource)
				es.note = "its audience is the CircleCI organization's id, not the bridge's, unless the job has the circleci CLI (`circleci run oidc get`): register that audience on the issuer"
				return es, nil
			}
		}
		return nil, nil
	}}

type circleciSource struct {
	cli, audience string
	env           map[string]string
}

func (s *circleciSource) Token(ctx context.Context, _ *http.Client) (string, error) {
	claims, err := json.Marshal(map[string]string{"aud": s.audience})
	if err != nil {
		return "", err
	}
	return runTokenCommand(ctx, s.env, "circleci run oidc get", s.cli, "run", "oidc", "get", "--claims", string(claims))
}

func (s *circleciSource) Static() bool { return false }

func (s *circleciSource) Scope() string {
	sum := sha256.Sum256([]byte(s.env[envCircleTokenV2] + s.env[envCircleToken] + "|" + s.audience))
	return jobScope(s.env) + "|circleci:" + hex.EncodeToString(sum[:8])
}

func (s *circleciSource) Describe() string { return "circleci run oidc get" }
