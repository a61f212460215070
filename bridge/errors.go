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

	"github.com/labstack/echo/v4"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/githubapp"
	"github.com/oidc-bridge/oidc-bridge/identity"
	"github.com/oidc-bridge/oidc-bridge/internal/admintoken"
	"github.com/oidc-bridge/oidc-bridge/internal/database"
	"github.com/oidc-bridge/oidc-bridge/ledger"
	"github.com/oidc-bridge/oidc-bridge/mapping"
	"github.com/oidc-bridge/oidc-bridge/providers"
)

// problem is an error answered with the contract's error body: its status,
// body and Retry-After. A handler returns one it has decided itself (made
// by the constructors below, the only place one is built from parts); the
// exchange returns the one classify made of its error, cause set, so that
// the error handler does not classify it again.
type problem struct {
	status     int
	body       api.Error
	retryAfter time.Duration
	// cause is the classified error, for the log; nil for a problem made
	// by a constructor.
	cause error
}

func (p *problem) Error() string {
	if p.cause != nil {
		return p.cause.Error()
	}
	return p.body.Error + ": " + p.body.Message
}

func (p *problem) Unwrap() error { return p.cause }

// classified returns err as the problem the one table makes of it, the
// cause kept for the log.
func classified(err error) error {
	p := classify(err)
	if p.cause == nil {
		p.cause = err
	}
	return &p
}

// ErrorBody is the contract's error body of err, as the admin API would
// answer it: what a person may see (the console shows it); the detail
// stays in err.
func ErrorBody(err error) api.Error { return classify(err).body }

// answer is how one of the contract's error codes is answered: its HTTP
// status, and its RFC 6749 §5.2 error and status on the RFC 8693 token
// endpoint (RFC 8693 §2.2.2: a mapping that will not issue is
// invalid_target).
type answer struct {
	status      int
	oauthStatus int
	oauth       string
}

// answers is the one table of the contract's error codes, for every
// endpoint: /v1/exchange and the admin API answer with status and the code,
// POST /oauth2/token with oauthStatus and oauth (the code rides along).
var answers = map[string]answer{
	api.CodeInvalidRequest:    {http.StatusBadRequest, http.StatusBadRequest, "invalid_request"},
	api.CodeRequestTooLarge:   {http.StatusRequestEntityTooLarge, http.StatusBadRequest, "invalid_request"},
	api.CodeInvalidToken:      {http.StatusUnauthorized, http.StatusBadRequest, "invalid_request"},
	api.CodeUntrustedIssuer:   {http.StatusUnauthorized, http.StatusBadRequest, "invalid_request"},
	api.CodeNoMatchingMapping: {http.StatusForbidden, http.StatusBadRequest, "invalid_target"},
	api.CodeAmbiguousMapping:  {http.StatusConflict, http.StatusBadRequest, "invalid_target"},
	api.CodeTokenReplayed:     {http.StatusConflict, http.StatusBadRequest, "invalid_request"},
	api.CodeQuotaExceeded:     {http.StatusTooManyRequests, http.StatusTooManyRequests, "invalid_request"},
	api.CodeRateLimited:       {http.StatusTooManyRequests, http.StatusTooManyRequests, "invalid_request"},
	api.CodeProviderError:     {http.StatusBadGateway, http.StatusBadGateway, "server_error"},
	api.CodeUnavailable:       {http.StatusServiceUnavailable, http.StatusServiceUnavailable, "temporarily_unavailable"},
	api.CodeInternal:          {http.StatusInternalServerError, http.StatusInternalServerError, "server_error"},
	api.CodeUnauthorized:      {http.StatusUnauthorized, http.StatusBadRequest, "invalid_request"},
	api.CodeForbidden:         {http.StatusForbidden, http.StatusBadRequest, "invalid_request"},
	api.CodeNotFound:          {http.StatusNotFound, http.StatusBadRequest, "invalid_request"},
	api.CodeConflict:          {http.StatusConflict, http.StatusBadRequest, "invalid_request"},
	api.CodeMethodNotAllowed:  {http.StatusMethodNotAllowed, http.StatusBadRequest, "invalid_request"},
}

// refuse is the problem of code with message msg, answered with the code's
// status.
func refuse(code, msg string) *problem {
	return &problem{status: answers[code].status, body: api.Error{Error: code, Message: msg}}
}

func invalid(field, msg string) error {
	p := refuse(api.CodeInvalidRequest, msg)
	p.body.Field = field
	return p
}

// forbidden refuses a valid admin token that lacks scope.
func forbidden(scope string) error {
	return refuse(api.CodeForbidden,
		fmt.Sprintf("this admin token lacks the %q scope this request needs; use a token created with --scope %s", scope, scope))
}

// noMatch refuses an exchange no mapping will serve.
func noMatch(msg string) error { return refuse(api.CodeNoMatchingMapping, msg) }

// ambiguous refuses an exchange several mappings would serve.
func ambiguous(msg string) error { return refuse(api.CodeAmbiguousMapping, msg) }

// missingToken refuses an exchange without a pipeline token.
func missingToken(msg string) error { return refuse(api.CodeInvalidToken, msg) }

// unavailableBecause answers 503 with msg: a dependency this request needs
// is absent or failing.
func unavailableBecause(msg string) error { return refuse(api.CodeUnavailable, msg) }

// rateLimited answers 429 with msg and Retry-After wait.
func rateLimited(wait time.Duration, msg string) error {
	p := refuse(api.CodeRateLimited, msg)
	p.retryAfter = wait
	return p
}

// providerRetryAfter is the Retry-After of a 502 for a cloud that is
// failing rather than refusing.
const providerRetryAfter = 5 * time.Second

// classify is the one table from errors to the contract's status and code.
// Messages tell a person what to do; internal detail goes only to the log.
// An error already classified (a *problem) answers as it says.
func classify(err error) problem {
	var p *problem
	if errors.As(err, &p) {
		return *p
	}
	return classifyCause(err)
}

// oauth is p as RFC 6749 §5.2 answers it on the token endpoint: status and
// error from the one table (invalid_request for a code it lacks).
func (p problem) oauth() (int, string) {
	// A scope the mapping does not grant is OAuth's invalid_scope (RFC 6749
	// §5.2), the rest of invalid_request stays invalid_request.
	if p.body.Error == api.CodeInvalidRequest && p.body.Field == "scopes" {
		return http.StatusBadRequest, "invalid_scope"
	}
	if a, ok := answers[p.body.Error]; ok {
		return a.oauthStatus, a.oauth
	}
	return http.StatusBadRequest, "invalid_request"
}

func classifyCause(err error) problem {
	var (
		ve  *mapping.ValidationError
		he  *echo.HTTPError
		mbe *http.MaxBytesError
		qe  *ledger.QuotaError
		de  *ledger.DisabledError
		pe  *providers.Error
	)
	switch {
	case errors.As(err, &ve):
		p := refuse(api.CodeInvalidRequest, ve.Error())
		p.body.Field, p.body.Warnings = ve.Field, apiWarnings(ve.Warnings)
		return *p
	case errors.As(err, &mbe):
		return *refuse(api.CodeRequestTooLarge, "the request body is too large")
	case errors.Is(err, identity.ErrInvalidToken):
		return *refuse(api.CodeInvalidToken,
			"the token was refused ("+identity.Reason(err)+"); send a fresh OIDC token issued for this bridge's audience")
	case errors.Is(err, identity.ErrUntrustedIssuer):
		return *refuse(api.CodeUntrustedIssuer, "the token's issuer is not a registered, enabled issuer of this bridge")
	case errors.Is(err, identity.ErrUnavailable):
		return *refuse(api.CodeUnavailable, "the token's issuer or the database cannot be reached; nothing was issued, try again later")
	case errors.As(err, &de) && de.Code == ledger.CodeUntrustedIssuer:
		// The reservation's recheck: disabled since the catalog was read.
		return *refuse(api.CodeUntrustedIssuer, "the token's issuer is not a registered, enabled issuer of this bridge")
	case errors.As(err, &de):
		return *refuse(api.CodeNoMatchingMapping, "the selected mapping was disabled or deleted; nothing was issued")
	case errors.Is(err, ledger.ErrRevoked):
		// Complete refused a credential revoked while it was minted: the
		// admin's decision, not a failure, so 403 and no retry hint. The
		// contract has no code of its own for it; no_matching_mapping is
		// the refusal by policy it comes closest to.
		return *refuse(api.CodeNoMatchingMapping,
			"an admin revoked this issuance while its credential was being issued; the credential is withheld and recorded as revoked")
	case errors.Is(err, ledger.ErrReplayed):
		return *refuse(api.CodeTokenReplayed, "this token was already exchanged; request a new OIDC token for each exchange")
	case errors.As(err, &qe):
		p := refuse(api.CodeQuotaExceeded, quotaMessage(qe, time.Now()))
		p.retryAfter = qe.RetryAfter
		return *p
	case errors.As(err, &pe):
		// A failing cloud (not a refusal) may recover: say so with
		// Retry-After, so that clients retry a 502 only then.
		msg := fmt.Sprintf("%s did not issue credentials: %s", pe.Provider, pe.Code)
		if pe.Detail != "" {
			msg += ": " + pe.Detail
		}
		p := refuse(api.CodeProviderError, msg)
		if errors.Is(pe, providers.ErrUnavailable) {
			p.retryAfter = providerRetryAfter
		}
		if pe.RetryAfter > 0 {
			// The cloud's own rate limit (its wait, not ours), or what
			// remains of an open circuit's cooldown.
			p.retryAfter = pe.RetryAfter
		}
		return *p
	case errors.Is(err, admintoken.ErrUnauthorized):
		return *refuse(api.CodeUnauthorized, "a valid admin bearer token is required")
	case errors.Is(err, ledger.ErrCredentialNotFound):
		return *refuse(api.CodeNotFound, "no credential issued by this bridge in the last two days has this token; nothing was revoked")
	case errors.Is(err, githubapp.ErrNoKEK):
		return *refuse(api.CodeUnavailable, "this bridge has no key-encryption key (BRIDGE_KEY_ENCRYPTION_KEY) to encrypt GitHub App keys with")
	case errors.Is(err, mapping.ErrNotFound):
		return *refuse(api.CodeNotFound, err.Error())
	case errors.Is(err, mapping.ErrConflict):
		return *refuse(api.CodeConflict, err.Error())
	case unavailable(err):
		return *refuse(api.CodeUnavailable, "the database is unavailable; nothing was changed or issued, try again later")
	case errors.As(err, &he):
		return echoError(he)
	}
	return *refuse(api.CodeInternal, "internal error; the server log has the detail under this request id")
}

// quotaMessage tells when the quota frees as a date (RFC 3339, UTC, rounded
// up to the second), not as a duration: a per-job quota's is days away.
func quotaMessage(qe *ledger.QuotaError, now time.Time) string {
	at := now.Add(qe.RetryAfter + time.Second - 1).UTC().Truncate(time.Second)
	return fmt.Sprintf("quota %s of %d exceeded; it frees at %s (issuance %s)", qe.Quota, qe.Limit, at.Format(time.RFC3339), qe.IssuanceID)
}

func echoError(he *echo.HTTPError) problem {
	switch he.Code {
	case http.StatusNotFound:
		return *refuse(api.CodeNotFound, "no such resource")
	case http.StatusMethodNotAllowed:
		return *refuse(api.CodeMethodNotAllowed, "method not allowed on this resource")
	case http.StatusRequestEntityTooLarge:
		return *refuse(api.CodeRequestTooLarge, "the request body is too large")
	case http.StatusUnauthorized:
		return *refuse(api.CodeUnauthorized, "a valid admin bearer token is required")
	}
	if he.Code >= 400 && he.Code < 500 {
		// Another client error of echo's: its own status.
		p := refuse(api.CodeInvalidRequest, http.StatusText(he.Code))
		p.status = he.Code
		return *p
	}
	return *refuse(api.CodeInternal, "internal error; the server log has the detail under this request id")
}

// unavailable reports whether err means a dependency (the database) is down
// or too slow, rather than a fault of the request. Each store marks its own
// database's unavailability with its sentinel; the bridge knows no driver.
func unavailable(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) ||
		errors.Is(err, ledger.ErrUnavailable) || errors.Is(err, mapping.ErrUnavailable) ||
		errors.Is(err, admintoken.ErrUnavailable) || errors.Is(err, database.ErrUnavailable) ||
		errors.Is(err, githubapp.ErrUnavailable)
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
	p.setRetryAfter(c)
	if err := c.JSON(status, body); err != nil {
		s.log.ErrorContext(c.Request().Context(), "write error response", "request_id", rid, "err", err)
	}
}

// setRetryAfter sets the response's Retry-After, in whole seconds rounded
// up, when p has one.
func (p problem) setRetryAfter(c echo.Context) {
	if p.retryAfter > 0 {
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(p.retryAfter.Seconds()))))
	}
}
