package azure

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oidc-bridge/oidc-bridge/providers"
	"github.com/oidc-bridge/oidc-bridge/signing"
)

// maxErrorBody bounds how much of an error answer is read for its code.
const maxErrorBody = 64 << 10

// Kinds of calls to Entra.
const (
	kindMetadata = "metadata"
	kindToken    = "token"
	kindOther    = "other"
)

// exchange is one mint's view of its calls to Entra: the azcore Transporter
// of its credential. It sees every attempt (azcore's retries included), so
// that failures are classified from what Entra actually answered rather
// than from azidentity's error text, and it knows whether a token request
// may have reached Entra without its answer reaching the bridge.
type exchange struct {
	client   *http.Client
	host     string // the authority's host[:port]; no other host is called
	signer   signing.Signer
	subject  string
	audience string
	lifetime time.Duration

	mu       sync.Mutex
	attempts []*attempt
	signErr  error
	jtis     []string
}

// attempt is one HTTP call.
type attempt struct {
	kind    string
	foreign bool   // refused: not the authority's host
	status  int    // 0 when no answer came
	body    []byte // an error answer's body
	err     error
	// traced reports that the transport began getting a connection; wrote
	// that it wrote the whole request. A request is known unsent only when
	// traced and not wrote: other transports may not report either.
	traced, wrote atomic.Bool
}

// possiblySent: the request may have reached Entra.
func (a *attempt) possiblySent() bool { return !a.traced.Load() || a.wrote.Load() }

// Do implements policy.Transporter.
func (x *exchange) Do(req *http.Request) (*http.Response, error) {
	a := &attempt{kind: kindOther}
	switch {
	case req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/oauth2/v2.0/token"):
		a.kind = kindToken
	case req.Method == http.MethodGet && strings.HasSuffix(req.URL.Path, "/.well-known/openid-configuration"):
		a.kind = kindMetadata
	}
	// Only the configured authority is called: MSAL must not wander off to
	// instance discovery or to endpoints a metadata document names elsewhere.
	if req.URL.Scheme != "https" || !strings.EqualFold(req.URL.Host, x.host) {
		a.traced.Store(true) // never sent
		a.foreign = true
		a.err = fmt.Errorf("azure: refusing a call to %s://%s, not the authority host", req.URL.Scheme, req.URL.Host)
	}
	x.mu.Lock()
	x.attempts = append(x.attempts, a)
	x.mu.Unlock()
	if a.foreign {
		return nil, a.err
	}
	trace := &httptrace.ClientTrace{
		GetConn:      func(string) { a.traced.Store(true) },
		WroteRequest: func(httptrace.WroteRequestInfo) { a.wrote.Store(true) },
	}
	resp, err := x.client.Do(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
	if err != nil {
		x.mu.Lock()
		a.err = err
		x.mu.Unlock()
		return nil, err
	}
	x.mu.Lock()
	a.status = resp.StatusCode
	x.mu.Unlock()
	if resp.StatusCode == http.StatusOK {
		return resp, nil // a token answer is never read here
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	resp.Body.Close()
	if err != nil {
		x.mu.Lock()
		a.err = err
		x.mu.Unlock()
		return nil, err
	}
	x.mu.Lock()
	a.body = body
	x.mu.Unlock()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

func (x *exchange) lastJTI() string {
	x.mu.Lock()
	defer x.mu.Unlock()
	if len(x.jtis) == 0 {
		return ""
	}
	return x.jtis[len(x.jtis)-1]
}

// entraError is the body of Entra's error answers.
type entraError struct {
	Error         string `json:"error"`
	Description   string `json:"error_description"`
	Codes         []int  `json:"error_codes"`
	TraceID       string `json:"trace_id"`
	CorrelationID string `json:"correlation_id"`
}

var oauthErrorPattern = regexp.MustCompile(`^[a-z_]{1,64}$`)

// failed logs what went wrong in full and returns what a client may see of
// it: Entra's AADSTS code (or its OAuth error, or HTTPnnn) when it answered,
// else Timeout, Canceled, ConnectionError, InvalidResponse, ... The text of
// azidentity's error is not used: it is not contractual, and the codes are
// read from the answers themselves.
func (x *exchange) failed(ctx context.Context, log *slog.Logger, err error) error {
	x.mu.Lock()
	attempts := x.attempts
	signErr := x.signErr
	jtis := len(x.jtis)
	var lost bool // a token request may have reached Entra, its answer not us
	for _, a := range attempts {
		if a.kind == kindToken && a.status == 0 && a.possiblySent() {
			lost = true
		}
	}
	var last *attempt
	if len(attempts) > 0 {
		last = attempts[len(attempts)-1]
	}
	x.mu.Unlock()

	attrs := []any{"attempts", len(attempts), "assertions_signed", jtis}
	var e = unavailable("UnknownError")
	switch {
	case signErr != nil:
		e = unavailable("AssertionSigningFailed")
		attrs = append(attrs, "error", signErr)
	case last != nil && last.status == http.StatusOK && last.kind == kindToken:
		// Entra answered 200 and the SDK could not read a token from it.
		e = indeterminate("InvalidResponse")
	case last != nil && last.status == http.StatusOK:
		// MSAL refused the authority's metadata (e.g. an issuer on another
		// host): the authority host is misconfigured.
		e = unavailable("InvalidMetadata")
		attrs = append(attrs, "call", last.kind, "error", err)
	case last != nil && last.status != 0:
		var body entraError
		_ = json.Unmarshal(last.body, &body)
		code := "HTTP" + strconv.Itoa(last.status)
		switch {
		case len(body.Codes) > 0 && body.Codes[0] > 0:
			code = "AADSTS" + strconv.Itoa(body.Codes[0])
		case oauthErrorPattern.MatchString(body.Error):
			code = body.Error
		}
		s := last.status
		if s >= 500 || s == http.StatusTooManyRequests || s == http.StatusRequestTimeout || isTransientOAuthError(body.Error) {
			e = unavailable(code)
		} else {
			e = refused(code)
		}
		attrs = append(attrs, "call", last.kind, "status", s, "entra_error", body.Error,
			"entra_error_codes", body.Codes, "entra_description", body.Description,
			"trace_id", body.TraceID, "correlation_id", body.CorrelationID)
	default:
		// No answer: a deadline, a cancellation or the network.
		switch {
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			e = unavailable("Timeout")
		case ctx.Err() != nil:
			e = unavailable("Canceled")
		case last != nil && last.foreign:
			e = unavailable("UnexpectedHost")
		case last != nil:
			e = unavailable("ConnectionError")
		}
		if last != nil {
			attrs = append(attrs, "call", last.kind, "error", last.err)
		} else {
			attrs = append(attrs, "error", err)
		}
	}
	if lost {
		e.Indeterminate = true
	}
	attrs = append([]any{"code", e.Code, "indeterminate", e.Indeterminate}, attrs...)
	if errors.Is(e, providers.ErrRefused) {
		log.Warn("azure: Entra refused the token request", attrs...)
	} else {
		log.Error("azure: Entra failed", attrs...)
	}
	return e
}
