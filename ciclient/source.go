package ciclient

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
)

// Source gives the CI job's OIDC token. A source that talks HTTP uses the
// client it is given (it follows no redirect) and marks what may pass with
// *client.TransientError.
type Source interface {
	Token(ctx context.Context, hc *http.Client) (string, error)
	// Static: every call gives the same token.
	Static() bool
	// Scope identifies the job for the cache key without revealing the token.
	Scope() string
	// Describe names the source in messages ("$VAR", "the token file F").
	Describe() string
}

// A ci is one CI's own way of handing its jobs a token, tried when neither
// --token-file nor --token-env is given. Adding a CI is a file holding its
// ci and Source, and its line in cis.
type ci struct {
	name string
	// detect tells a job of this CI by its marker variable (nil: source
	// tells it alone); --ci NAME skips it.
	detect func(env map[string]string) bool
	// source returns the CI's token source when env is one of its jobs
	// with a token on offer; nil, nil when it is not.
	source func(env map[string]string, audience string) (Source, error)
}

// cis in the order that --ci auto tries them: first the CIs whose
// variables are unmistakable, Kubernetes late (CI runners often run in a
// pod) and AWS last (credentials are found almost anywhere).
var cis = []ci{githubActions, gitlabIDToken, buildkite, circleci, bitbucket, terraformCloud, azureDevOps, jenkins, kubernetes, awsOutbound}

// CIAuto is --ci's default: the first of CINames whose job this is.
const CIAuto = "auto"

// CINames are --ci's values besides auto, in the order auto tries them.
func CINames() []string {
	names := make([]string, len(cis))
	for i, c := range cis {
		names[i] = c.name
	}
	return names
}

func newSource(env map[string]string, o Options) (Source, error) {
	if o.TokenFile != "" && o.TokenEnv != "" {
		return nil, usage(errors.New("give at most one of --token-file and --token-env"))
	}
	forced := o.CI != "" && o.CI != CIAuto
	if forced && (o.TokenFile != "" || o.TokenEnv != "") {
		return nil, usage(errors.New("give --ci or one of --token-file and --token-env, not both"))
	}
	switch {
	case o.TokenFile != "":
		return &fileSource{path: o.TokenFile, env: env}, nil
	case o.TokenEnv != "":
		return newEnvSource(env, o.TokenEnv)
	}
	for _, c := range cis {
		if forced {
			if c.name != o.CI {
				continue
			}
			s, err := c.source(env, o.Audience)
			if s == nil && err == nil {
				err = fmt.Errorf("exchange: --ci %s: this job offers no %s token", c.name, c.name)
			}
			return s, err
		}
		if c.detect != nil && !c.detect(env) {
			continue
		}
		if s, err := c.source(env, o.Audience); s != nil || err != nil {
			return s, err
		}
	}
	if forced {
		return nil, usage(fmt.Errorf("--ci %q: use %s or one of %s", o.CI, CIAuto, strings.Join(CINames(), ", ")))
	}
	return nil, usage(fmt.Errorf("no CI token: give --token-file or --token-env, or run in a CI that --ci auto finds (%s; see --help), e.g. GitHub Actions with `permissions: id-token: write` (%s)",
		strings.Join(CINames(), ", "), envGitHubReqURL))
}

// jobScope names the CI job from the variables that the common CIs set, so
// that a cache shared by several jobs never hands one job's credentials to
// another.
func jobScope(env map[string]string) string {
	var parts []string
	for _, k := range []string{"GITHUB_REPOSITORY", "GITHUB_RUN_ID", "GITHUB_RUN_ATTEMPT", "GITHUB_JOB",
		"CI_PROJECT_PATH", "CI_PIPELINE_ID", "CI_JOB_ID", "BUILDKITE_JOB_ID", "CIRCLE_WORKFLOW_JOB_ID",
		"SYSTEM_COLLECTIONID", "SYSTEM_JOBID", "BUILD_TAG"} {
		if v := env[k]; v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	return strings.Join(parts, ",")
}

// tokenScope reads the token's issuer and subject without verifying it (the
// bridge verifies); a token that is not a JWT is scoped by its hash.
func tokenScope(tok string) string {
	parts := strings.Split(tok, ".")
	if len(parts) == 3 {
		if b, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil {
			var c struct {
				Iss string `json:"iss"`
				Sub string `json:"sub"`
			}
			if json.Unmarshal(b, &c) == nil && c.Iss != "" {
				return "iss=" + c.Iss + ",sub=" + c.Sub
			}
		}
	}
	return api.TokenID(tok)
}
