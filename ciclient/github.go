package ciclient

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
)

// GitHub Actions' token request, present in jobs with
// `permissions: id-token: write`.
const (
	envGitHubReqURL   = "ACTIONS_ID_TOKEN_REQUEST_URL"
	envGitHubReqToken = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
)

var githubActions = ci{name: "github", source: func(env map[string]string, audience string) (Source, error) {
	if env[envGitHubReqURL] == "" || env[envGitHubReqToken] == "" {
		return nil, nil
	}
	return &githubSource{url: env[envGitHubReqURL], bearer: env[envGitHubReqToken], audience: audience, env: env}, nil
}}

// githubSource asks GitHub Actions for a fresh token for the audience at
// each attempt.
type githubSource struct {
	url, bearer, audience string
	env                   map[string]string
}

func (s *githubSource) Token(ctx context.Context, hc *http.Client) (string, error) {
	u, err := url.Parse(s.url)
	if err != nil {
		return "", fmt.Errorf("exchange: %s is not a URL", envGitHubReqURL)
	}
	q := u.Query()
	q.Set("audience", s.audience)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+s.bearer)
	req.Header.Set("Accept", "application/json")
	return requestToken(hc, req, "GitHub Actions", "(does the job have `permissions: id-token: write`?)", "value")
}

func (s *githubSource) Static() bool { return false }

func (s *githubSource) Scope() string {
	sum := sha256.Sum256([]byte(s.bearer + "|" + s.audience))
	return jobScope(s.env) + "|github:" + hex.EncodeToString(sum[:8])
}

func (s *githubSource) Describe() string { return "GitHub Actions' token request" }
