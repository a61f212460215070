package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
)

const (
	exchangePath     = "/v1/exchange"
	exchangeAgent    = "oidc-bridge-cli exchange"
	maxExchangeReply = 1 << 20
)

// Exchange presents a CI job's OIDC token to POST /v1/exchange of the bridge
// at base (its checked base URL, without a trailing slash) through hc, once.
// hc must follow no redirect (NoRedirects); its Timeout bounds the call.
//
// The errors: *ExchangeError for any answer but 200; *TransientError for
// what may pass on another attempt (a timeout, a refused or reset connection,
// an answer cut short); a final error otherwise (a redirect, TLS, a
// malformed 200). Retrying, with a fresh token, is the caller's choice:
// the bridge exchanges a token once.
func Exchange(ctx context.Context, hc *http.Client, base, token string, req api.ExchangeRequest) (*api.ExchangeResponse, error) {
	payload, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, base+exchangePath, bytes.NewReader(payload))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Authorization", "Bearer "+token)
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Accept", "application/json")
	hr.Header.Set("User-Agent", exchangeAgent)
	resp, err := hc.Do(hr)
	if err != nil {
		if re := (*RedirectError)(nil); errors.As(err, &re) {
			return nil, fmt.Errorf("exchange: %w", re) // final: never retried
		}
		if transient(err) {
			return nil, &TransientError{fmt.Errorf("exchange: %w", err)}
		}
		return nil, fmt.Errorf("exchange: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxExchangeReply))
	if err != nil {
		return nil, &TransientError{fmt.Errorf("exchange: read the answer: %w", err)}
	}
	if resp.StatusCode == http.StatusOK {
		var out api.ExchangeResponse
		if err := json.Unmarshal(body, &out); err != nil || out.Provider == "" || len(out.Credentials) == 0 {
			return nil, fmt.Errorf("exchange: the bridge answered malformed JSON")
		}
		return &out, nil
	}
	e := &ExchangeError{Status: resp.StatusCode, RequestID: resp.Header.Get("X-Request-Id")}
	var b api.Error
	if json.Unmarshal(body, &b) == nil && b.Error != "" {
		e.Code, e.Message, e.IssuanceID = b.Error, b.Message, b.IssuanceID
		if b.RequestID != "" {
			e.RequestID = b.RequestID
		}
	} else {
		e.Message = http.StatusText(resp.StatusCode)
	}
	if d, ok := retryAfter(resp.Header.Get("Retry-After")); ok {
		e.RetryAfter, e.HasRetryAfter = max(d, 0), true
	}
	return nil, e
}

// ExchangeError is the bridge's refusal or failure of an exchange: an
// answer other than 200.
type ExchangeError struct {
	Status     int
	Code       string // the contract's error code, "" when the body had none
	Message    string
	IssuanceID string
	RequestID  string
	// RetryAfter is the answer's Retry-After (0 when past or absent);
	// HasRetryAfter says it was there, possibly 0.
	RetryAfter    time.Duration
	HasRetryAfter bool
}

// Error shows the bridge's words through Printable: they reach terminals.
func (e *ExchangeError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "exchange: %d", e.Status)
	if e.Code != "" {
		b.WriteString(" " + Printable(e.Code))
	}
	if e.Message != "" {
		b.WriteString(": " + Printable(e.Message))
	}
	if e.IssuanceID != "" {
		b.WriteString(" (issuance id " + Printable(e.IssuanceID) + ")")
	}
	if e.RequestID != "" {
		b.WriteString(" (request id " + Printable(e.RequestID) + ")")
	}
	return b.String()
}

// Transient: 429 and 5xx may pass, except 501 and a 502 without
// Retry-After. The bridge sends Retry-After on a 502 provider_error only when
// the cloud was failing; without it, the cloud refused, and will again.
func (e *ExchangeError) Transient() bool {
	if e.Status == http.StatusBadGateway {
		return e.HasRetryAfter
	}
	return e.Status == http.StatusTooManyRequests || e.Status >= 500 && e.Status != http.StatusNotImplemented
}

// TransientError is a failure that may pass on another attempt: the
// network, or a token source that is briefly unavailable.
type TransientError struct{ Err error }

func (e *TransientError) Error() string { return e.Err.Error() }
func (e *TransientError) Unwrap() error { return e.Err }

// Printable makes text from a bridge (claim values are the pipeline's) safe
// for a terminal: anything holding a non-printable character is shown quoted
// with escapes (attack catalogue 56).
func Printable(s string) string {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			q := strconv.QuoteToASCII(s)
			return q[1 : len(q)-1]
		}
	}
	return s
}
