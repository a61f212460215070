package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/labstack/echo/v4"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/identity"
	"github.com/oidc-bridge/oidc-bridge/internal/admintoken"
	"github.com/oidc-bridge/oidc-bridge/ledger"
	"github.com/oidc-bridge/oidc-bridge/mapping"
	"github.com/oidc-bridge/oidc-bridge/providers"
)

// requestError is an error the handler has already classified.
type requestError struct {
	status     int
	body       api.Error
	retryAfter time.Duration
}

func (e *requestError) Error() string { return e.body.Error + ": " + e.body.Message }

func invalid(field, msg string) error {
	return &requestError{status: http.StatusBadRequest, body: api.Error{Error: api.CodeInvalidRequest, Message: msg, Field: field}}
}

// forbidden refuses a valid admin token that lacks scope.
func forbidden(scope string) error {
	return &requestError{status: http.StatusForbidden, body: api.Error{Error: api.CodeForbidden,
		Message: fmt.Sprintf("this admin token lacks the %q scope this request needs; use a token created with --scope %s", scope, scope)}}
}

// providerRetryAfter is the Retry-After of a 502 for a cloud that is
// failing rather than refusing.
const providerRetryAfter = 5 * time.Second

// problem is an error response: status, body and Retry-After.
type problem struct {
	status     int
	body       api.Error
	retryAfter time.Duration
}

// classify is the one table from errors to the contract's status and code.
// Messages tell a person what to do; internal detail goes only to the log.
func classify(err error) problem {
	p := classifyCause(err)
	var ie *issuanceError
	if errors.As(err, &ie) {
		p.body.IssuanceID = ie.id
	}
	return p
}

func classifyCause(err error) problem {
	var (
		re  *requestError
		ve  *mapping.ValidationError
		he  *echo.HTTPError
		mbe *http.MaxBytesError
		qe  *ledger.QuotaError
		de  *ledger.DisabledError
		pe  *providers.Error
	)
	switch {
	case errors.As(err, &re):
		return problem{re.status, re.body, re.retryAfter}
	case errors.As(err, &ve):
		return problem{http.StatusBadRequest, api.Error{Error: api.CodeInvalidRequest, Message: ve.Error(), Field: ve.Field,
			Warnings: apiWarnings(ve.Warnings)}, 0}
	case errors.As(err, &mbe):
		return problem{http.StatusRequestEntityTooLarge, api.Error{Error: api.CodeRequestTooLarge, Message: "the request body is too large"}, 0}
	case errors.Is(err, identity.ErrInvalidToken):
		return problem{http.StatusUnauthorized, api.Error{Error: api.CodeInvalidToken,
			Message: "the token was refused (" + identity.Reason(err) + "); send a fresh OIDC token issued for this bridge's audience"}, 0}
	case errors.Is(err, identity.ErrUntrustedIssuer):
		return problem{http.StatusUnauthorized, api.Error{Error: api.CodeUntrustedIssuer,
			Message: "the token's issuer is not a registered, enabled issuer of this bridge"}, 0}
	case errors.Is(err, identity.ErrUnavailable):
		return problem{http.StatusServiceUnavailable, api.Error{Error: api.CodeUnavailable,
			Message: "the token's issuer or the database cannot be reached; nothing was issued, try again later"}, 0}
	case errors.As(err, &de) && de.Code == ledger.CodeUntrustedIssuer:
		// The reservation's recheck: disabled since the catalog was read.
		return problem{http.StatusUnauthorized, api.Error{Error: api.CodeUntrustedIssuer,
			Message: "the token's issuer is not a registered, enabled issuer of this bridge"}, 0}
	case errors.As(err, &de):
		return problem{http.StatusForbidden, api.Error{Error: api.CodeNoMatchingMapping,
			Message: "the selected mapping was disabled or deleted; nothing was issued"}, 0}
	case errors.Is(err, ledger.ErrRevoked):
		// Complete refused a credential revoked while it was minted: the
		// admin's decision, not a failure, so 403 and no retry hint. The
		// contract has no code of its own for it; no_matching_mapping is
		// the refusal by policy it comes closest to.
		return problem{http.StatusForbidden, api.Error{Error: api.CodeNoMatchingMapping,
			Message: "an admin revoked this issuance while its credential was being issued; the credential is withheld and recorded as revoked"}, 0}
	case errors.Is(err, ledger.ErrReplayed):
		return problem{http.StatusConflict, api.Error{Error: api.CodeTokenReplayed,
			Message: "this token was already exchanged; request a new OIDC token for each exchange"}, 0}
	case errors.As(err, &qe):
		return problem{http.StatusTooManyRequests, api.Error{Error: api.CodeQuotaExceeded, Message: quotaMessage(qe, time.Now())}, qe.RetryAfter}
	case errors.As(err, &pe):
		// A failing cloud (not a refusal) may recover: say so with
		// Retry-After, so that clients retry a 502 only then.
		var wait time.Duration
		if errors.Is(pe, providers.ErrUnavailable) {
			wait = providerRetryAfter
		}
		return problem{http.StatusBadGateway, api.Error{Error: api.CodeProviderError,
			Message: fmt.Sprintf("%s did not issue credentials: %s", pe.Provider, pe.Code)}, wait}
	case errors.Is(err, admintoken.ErrUnauthorized):
		return problem{http.StatusUnauthorized, api.Error{Error: api.CodeUnauthorized, Message: "a valid admin bearer token is required"}, 0}
	case errors.Is(err, mapping.ErrNotFound):
		return problem{http.StatusNotFound, api.Error{Error: api.CodeNotFound, Message: err.Error()}, 0}
	case errors.Is(err, mapping.ErrConflict):
		return problem{http.StatusConflict, api.Error{Error: api.CodeConflict, Message: err.Error()}, 0}
	case errors.Is(err, ledger.ErrUnavailable), unavailable(err):
		return problem{http.StatusServiceUnavailable, api.Error{Error: api.CodeUnavailable, Message: "the database is unavailable; nothing was changed or issued, try again later"}, 0}
	case errors.As(err, &he):
		st, body := echoError(he)
		return problem{st, body, 0}
	}
	return problem{http.StatusInternalServerError, api.Error{Error: api.CodeInternal, Message: "internal error; the server log has the detail under this request id"}, 0}
}

// quotaMessage tells when the quota frees as a date (RFC 3339, UTC, rounded
// up to the second), not as a duration: a per-job quota's is days away.
func quotaMessage(qe *ledger.QuotaError, now time.Time) string {
	at := now.Add(qe.RetryAfter + time.Second - 1).UTC().Truncate(time.Second)
	return fmt.Sprintf("quota %s of %d exceeded; it frees at %s (issuance %s)", qe.Quota, qe.Limit, at.Format(time.RFC3339), qe.IssuanceID)
}

func echoError(he *echo.HTTPError) (int, api.Error) {
	switch he.Code {
	case http.StatusNotFound:
		return he.Code, api.Error{Error: api.CodeNotFound, Message: "no such resource"}
	case http.StatusMethodNotAllowed:
		return he.Code, api.Error{Error: api.CodeMethodNotAllowed, Message: "method not allowed on this resource"}
	case http.StatusRequestEntityTooLarge:
		return he.Code, api.Error{Error: api.CodeRequestTooLarge, Message: "the request body is too large"}
	case http.StatusUnauthorized:
		return he.Code, api.Error{Error: api.CodeUnauthorized, Message: "a valid admin bearer token is required"}
	}
	if he.Code >= 400 && he.Code < 500 {
		return he.Code, api.Error{Error: api.CodeInvalidRequest, Message: http.StatusText(he.Code)}
	}
	return http.StatusInternalServerError, api.Error{Error: api.CodeInternal, Message: "internal error; the server log has the detail under this request id"}
}

// unavailable reports whether err means a dependency (the database) is down
// or too slow, rather than a fault of the request.
func unavailable(err error) bool {
	var (
		ce  *pgconn.ConnectError
		ne  net.Error
		pge *pgconn.PgError
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ce), errors.As(err, &ne), pgconn.Timeout(err):
		return true
	case errors.As(err, &pge):
		// Class 08: connection exception; 53: insufficient resources;
		// 57P: operator intervention (shutdown, cancel).
		return len(pge.Code) == 5 && (pge.Code[:2] == "08" || pge.Code[:2] == "53" || pge.Code[:3] == "57P")
	}
	return false
}

// errorHandler writes every error as the contract's JSON body and logs what
// a person should not see.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	p := classify(err)
	status, body := p.status, p.body
	rid := c.Response().Header().Get(echo.HeaderXRequestID)
	level := slog.LevelDebug
	if status >= 500 {
		level = slog.LevelError
		body.RequestID = rid
	}
	body.TraceID = s.traceID(c)
	s.log.Log(c.Request().Context(), level, "request failed",
		"request_id", rid, "status", status, "code", body.Error, "err", err.Error())
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	if status == http.StatusUnauthorized {
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="oidc-bridge"`)
	}
	if p.retryAfter > 0 {
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(p.retryAfter.Seconds()))))
	}
	if err := c.JSON(status, body); err != nil {
		s.log.ErrorContext(c.Request().Context(), "write error response", "request_id", rid, "err", err)
	}
}
