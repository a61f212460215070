package ciclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/bridge/client"
)

const (
	backoffMin = 500 * time.Millisecond
	backoffMax = 10 * time.Second
	// longestRetryAfter: a 429 asking to wait longer than this (a spent
	// hourly quota) fails at once rather than holding the job.
	longestRetryAfter = time.Minute
)

// isRefusal: the bridge said no for a reason that waiting will not change.
func isRefusal(err error) bool {
	var e *client.ExchangeError
	return errors.As(err, &e) && !e.Transient()
}

// spentTokenError: the source holds only the token that the cached
// credentials were already exchanged for.
type spentTokenError struct{}

func (*spentTokenError) Error() string { return "exchange: the token was already exchanged" }

// exchangeWithRetries exchanges a token from the source, retrying transient
// failures with a fresh token per attempt where the source gives one. spent
// is the id of a token already exchanged (from the cache): the source
// holding only that token is a spentTokenError, not a call.
func (c *Config) exchangeWithRetries(ctx context.Context, hc *http.Client, stderr io.Writer, spent string) (*api.ExchangeResponse, string, error) {
	var lastTokenID string
	for attempt := 0; ; attempt++ {
		tok, err := c.source.Token(ctx, hc)
		var resp *api.ExchangeResponse
		if err == nil {
			id := api.TokenID(tok)
			if id == spent {
				return nil, "", &spentTokenError{}
			}
			if attempt > 0 && id == lastTokenID && !c.source.Static() {
				fmt.Fprintf(stderr, "oidc-bridge: note: %s gave the same token again\n", c.source.Describe())
			}
			lastTokenID = id
			resp, err = client.Exchange(ctx, hc, c.base, tok, c.req)
			if err == nil {
				return resp, id, nil
			}
		}
		wait, retry := retryWait(err, attempt)
		if !retry || attempt >= c.retries || ctx.Err() != nil {
			var e *client.ExchangeError
			if errors.As(err, &e) && e.Code == api.CodeTokenReplayed && attempt > 0 {
				return nil, "", fmt.Errorf("%w; an earlier attempt that failed in transit may have been issued, and %s gives no fresh token", err, c.source.Describe())
			}
			if errors.As(err, &e) && e.Code == api.CodeTokenReplayed && c.source.Static() {
				return nil, "", fmt.Errorf("%w; a token is exchanged once in all, whatever the mapping, and %s holds one token: "+
					"give each exchange a token of its own (on GitLab, one id_tokens entry per mapping, each passed with --token-env)", err, c.source.Describe())
			}
			if h, ok := c.source.(interface{ Hint() string }); ok && h.Hint() != "" && errors.As(err, &e) && e.Code == api.CodeInvalidToken {
				return nil, "", fmt.Errorf("%w (%s: %s)", err, c.source.Describe(), h.Hint())
			}
			if errors.As(err, &e) && e.Code == api.CodeNoMatchingMapping && c.req.Provider != "" {
				return nil, "", fmt.Errorf("%w (--format and --provider asked for a mapping of provider %s)", err, c.req.Provider)
			}
			return nil, "", err
		}
		fmt.Fprintf(stderr, "oidc-bridge: %v; retrying in %s\n", err, wait.Round(10*time.Millisecond))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, "", fmt.Errorf("exchange: %w (after: %v)", ctx.Err(), err)
		case <-t.C:
		}
	}
}

// retryWait says whether err is worth another attempt, and after how long.
func retryWait(err error, attempt int) (time.Duration, bool) {
	d := backoff(attempt)
	var e *client.ExchangeError
	if errors.As(err, &e) {
		if !e.Transient() {
			return 0, false
		}
		if e.RetryAfter > longestRetryAfter {
			return 0, false
		}
		if e.RetryAfter > 0 {
			d = e.RetryAfter + time.Duration(rand.N(int64(250*time.Millisecond)))
		}
		return d, true
	}
	var te *client.TransientError
	return d, errors.As(err, &te)
}

func backoff(attempt int) time.Duration {
	d := backoffMin << min(attempt, 10)
	d = min(d, backoffMax)
	return d/2 + time.Duration(rand.N(int64(d/2)))
}
