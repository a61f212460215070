package ciclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/oidc-bridge/oidc-bridge/bridge/client"
)

// requestToken sends a CI's token request req (its bearer already set)
// and returns the token in the member field of the JSON answer. who names
// the CI in errors ("GitHub Actions"), hint says what to check when the CI
// refuses. Failures of the transport, 429 and 5xx are transient (a retry
// asks again); a redirect is not followed and not retried; the request's
// URL, which may carry the runner's secrets, is never in an error.
func requestToken(hc *http.Client, req *http.Request, who, hint, field string) (string, error) {
	req.Header.Set("User-Agent", "oidc-bridge-cli exchange")
	resp, err := hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL may carry secrets of the runner
		}
		err = fmt.Errorf("exchange: request a token from %s: %w", who, err)
		if re := (*client.RedirectError)(nil); errors.As(err, &re) {
			return "", err // not followed, and not worth retrying
		}
		return "", &client.TransientError{Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenFile))
	if err != nil {
		return "", &client.TransientError{Err: fmt.Errorf("exchange: read %s' token: %w", who, err)}
	}
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("exchange: %s answered %s to the token request %s", who, resp.Status, hint)
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
			return "", &client.TransientError{Err: err}
		}
		return "", err
	}
	var v map[string]json.RawMessage
	var token string
	if json.Unmarshal(body, &v) != nil || json.Unmarshal(v[field], &token) != nil || token == "" {
		return "", fmt.Errorf("exchange: %s' token answer has no %s", who, field)
	}
	return token, nil
}
