package ciclient

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/oidc-bridge/oidc-bridge/bridge/client"
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
	req.Header.Set("User-Agent", "oidc-bridge-cli exchange")
	resp, err := hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL may carry secrets of the runner
		}
		err = fmt.Errorf("exchange: request a token from GitHub Actions: %w", err)
		if re := (*client.RedirectError)(nil); errors.As(err, &re) {
			return "", err // not followed, and not worth retrying
		}
		return "", &client.TransientError{Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenFile))
	if err != nil {
		return "", &client.TransientError{Err: fmt.Errorf("exchange: read GitHub Actions' token: %w", err)}
	}
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("exchange: GitHub Actions answered %s to the token request (does the job have `permissions: id-token: write`?)", resp.Status)
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
			return "", &client.TransientError{Err: err}
		}
		return "", err
	}
	var v struct {
		Value string `json:"value"`
	}
	if json.Unmarshal(body, &v) != nil || v.Value == "" {
		return "", errors.New("exchange: GitHub Actions' token answer has no value")
	}
	return v.Value, nil
}

func (s *githubSource) Static() bool { return false }

func (s *githubSource) Scope() string {
	sum := sha256.Sum256([]byte(s.bearer + "|" + s.audience))
	return jobScope(s.env) + "|github:" + hex.EncodeToString(sum[:8])
}

func (s *githubSource) Describe() string { return "GitHub Actions' token request" }
