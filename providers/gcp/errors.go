package gcp

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/googleapis/gax-go/v2"
	"google.golang.org/api/googleapi"

	"github.com/oidc-bridge/oidc-bridge/providers"
	"github.com/oidc-bridge/oidc-bridge/providers/gcp/rpcstatus"
)

func refused(code string) *providers.Error {
	return &providers.Error{Provider: "gcp", Code: code, Err: providers.ErrRefused}
}

func unavailable(code string) *providers.Error {
	return &providers.Error{Provider: "gcp", Code: code, Err: providers.ErrUnavailable}
}

// indeterminate is a failure after which Google may have issued a token.
func indeterminate(code string) *providers.Error {
	e := unavailable(code)
	e.Indeterminate = true
	return e
}

// codeOf extracts Google's error code from an error answer, "" if none.
type codeOf func(*googleapi.Error) string

// failed logs err in full and returns what a client may see of it.
// mayIssue says whether the failed call mints the credential itself
// (generateAccessToken), so that losing its answer is indeterminate; a lost
// federated token or bridge token is harmless.
func (p *Provider) failed(log *slog.Logger, ctx context.Context, op string, err error, code codeOf, mayIssue bool) *providers.Error {
	e := classify(ctx, err, code, mayIssue)
	attrs := []any{"code", e.Code, "indeterminate", e.Indeterminate, "error", err}
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		attrs = append(attrs, "status", ge.Code)
	}
	if errors.Is(e, providers.ErrRefused) {
		log.Warn("gcp: "+op+" refused", attrs...)
	} else {
		log.Error("gcp: "+op+" failed", attrs...)
	}
	return e
}

// classify turns a client error into the provider's error: Google's status
// (PERMISSION_DENIED, ...) or OAuth error (invalid_grant, ...) when Google
// answered, else Timeout, Canceled, ConnectionError or InvalidResponse. Only
// well-formed codes pass, so nothing of an account or a message can reach a
// client through Code.
func classify(ctx context.Context, err error, code codeOf, mayIssue bool) *providers.Error {
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		c := code(ge)
		if !codePattern(c) {
			c = rpcstatus.Name(ge.Code)
		}
		switch {
		case ge.Code == http.StatusGatewayTimeout || c == "DEADLINE_EXCEEDED":
			// A gateway gave up waiting: the backend may have minted.
			if mayIssue {
				return indeterminate(c)
			}
			return unavailable(c)
		case transientStatus[c] || ge.Code >= 500 || ge.Code == http.StatusTooManyRequests:
			return unavailable(c)
		}
		return refused(c)
	}
	mk := unavailable
	if mayIssue {
		mk = indeterminate
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		return mk("Timeout")
	case errors.Is(err, context.Canceled) || ctx.Err() != nil:
		return mk("Canceled")
	case notSent(err):
		// The request never left: nothing can have been issued.
		return unavailable("ConnectionError")
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return mk("ConnectionError")
	}
	// An answer that did not decode.
	return mk("InvalidResponse")
}

// transientStatus are Google's statuses of a failing, rather than refusing,
// service.
var transientStatus = map[string]bool{
	"UNAVAILABLE":        true,
	"INTERNAL":           true,
	"RESOURCE_EXHAUSTED": true,
	"UNKNOWN":            true,
	"ABORTED":            true,
	// OAuth-shaped errors of STS.
	"server_error":            true,
	"temporarily_unavailable": true,
}

// notSent reports a connection that failed before the request was written.
func notSent(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// googleCode reads "status" from Google's JSON error
// {"error":{"code":403,"message":...,"status":"PERMISSION_DENIED"}}.
func googleCode(ge *googleapi.Error) string {
	var body struct {
		Error struct {
			Status string `json:"status"`
		} `json:"error"`
	}
	if json.Unmarshal([]byte(ge.Body), &body) == nil {
		return body.Error.Status
	}
	return ""
}

// stsCode reads the OAuth error {"error":"invalid_grant",...} of STS, or
// the status of Google's JSON error shape, which STS uses for some failures.
func stsCode(ge *googleapi.Error) string {
	var body struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal([]byte(ge.Body), &body) != nil {
		return ""
	}
	var s string
	if json.Unmarshal(body.Error, &s) == nil {
		return s
	}
	return googleCode(ge)
}

// codePattern accepts Google statuses and OAuth error codes: letters and
// "_", 2 to 64 of them, so that no e-mail, resource name or message can
// pass as a code.
func codePattern(code string) bool {
	if len(code) < 2 || len(code) > 64 {
		return false
	}
	for _, r := range code {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || r == '_') {
			return false
		}
	}
	return true
}

// noRetry replaces the client libraries' default retries (generateAccessToken
// retries 503 and 504 by default): one call per step of a mint, so that a
// lost answer is never followed by a second credential the ledger does not
// know of. The client retries, with a fresh pipeline token.
func noRetry() gax.Retryer { return never{} }

type never struct{}

func (never) Retry(error) (time.Duration, bool) { return 0, false }
