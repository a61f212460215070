package ciclient

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
)

// Buildkite: `buildkite-agent oidc request-token` asks the agent (which
// holds the job's agent token in its own environment) for a token of the
// audience, fresh at each call
// (https://buildkite.com/docs/agent/v3/cli-oidc). The optional claims
// organization_id and pipeline_id are asked for: the immutable ids that a
// mapping should pin (docs/ci/buildkite.md).
var buildkite = ci{name: "buildkite", detect: func(env map[string]string) bool { return env["BUILDKITE"] == "true" },
	source: func(env map[string]string, audience string) (Source, error) {
		agent := lookPath(env, "buildkite-agent")
		if agent == "" {
			return nil, errors.New("exchange: Buildkite job without buildkite-agent on $PATH: give --token-file or --token-env")
		}
		return &buildkiteSource{agent: agent, audience: audience, env: env}, nil
	}}

type buildkiteSource struct {
	agent, audience string
	env             map[string]string
}

func (s *buildkiteSource) Token(ctx context.Context, _ *http.Client) (string, error) {
	return runTokenCommand(ctx, s.env, "buildkite-agent oidc request-token", s.agent,
		"oidc", "request-token", "--audience", s.audience, "--claim", "organization_id,pipeline_id")
}

func (s *buildkiteSource) Static() bool { return false }

func (s *buildkiteSource) Scope() string {
	sum := sha256.Sum256([]byte(s.env["BUILDKITE_AGENT_ACCESS_TOKEN"] + "|" + s.audience))
	return jobScope(s.env) + "|buildkite:" + hex.EncodeToString(sum[:8])
}

func (s *buildkiteSource) Describe() string { return "buildkite-agent oidc request-token" }
