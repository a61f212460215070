package bridge

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/labstack/echo/v4"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/internal/admintoken"
	"github.com/oidc-bridge/oidc-bridge/mapping"
)

// requestError is an error the handler has already classified.
type requestError struct {
	status int
	body   api.Error
}

func (e *requestError) Error() string { return e.body.Error + ": " + e.body.Message }

func invalid(field, msg string) error {
	return &requestError{status: http.StatusBadRequest, body: api.Error{Error: api.CodeInvalidRequest, Message: msg, Field: field}}
}

// classify is the one table from errors to the contract's status and code.
// Messages tell a person what to do; internal detail goes only to the log.
func classify(err error) (int, api.Error) {
	var (
		re  *requestError
		ve  *mapping.ValidationError
		he  *echo.HTTPError
		mbe *http.MaxBytesError
	)
	switch {
	case errors.As(err, &re):
		return re.status, re.body
	case errors.As(err, &ve):
		return http.StatusBadRequest, api.Error{Error: api.CodeInvalidRequest, Message: ve.Error(), Field: ve.Field}
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, api.Error{Error: api.CodeRequestTooLarge, Message: "the request body is too large"}
	case errors.Is(err, admintoken.ErrUnauthorized):
		return http.StatusUnauthorized, api.Error{Error: api.CodeUnauthorized, Message: "a valid admin bearer token is required"}
	case errors.Is(err, mapping.ErrNotFound):
		return http.StatusNotFound, api.Error{Error: api.CodeNotFound, Message: err.Error()}
	case errors.Is(err, mapping.ErrConflict):
		return http.StatusConflict, api.Error{Error: api.CodeConflict, Message: err.Error()}
	case unavailable(err):
		return http.StatusServiceUnavailable, api.Error{Error: api.CodeUnavailable, Message: "the database is unavailable; nothing was changed, try again later"}
	case errors.As(err, &he):
		return echoError(he)
	}
	return http.StatusInternalServerError, api.Error{Error: api.CodeInternal, Message: "internal error; the server log has the detail under this request id"}
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
	status, body := classify(err)
	rid := c.Response().Header().Get(echo.HeaderXRequestID)
	level := slog.LevelDebug
	if status >= 500 {
		level = slog.LevelError
		body.RequestID = rid
	}
	s.log.Log(c.Request().Context(), level, "request failed",
		"request_id", rid, "status", status, "code", body.Error, "err", err.Error())
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	if status == http.StatusUnauthorized {
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="oidc-bridge"`)
	}
	if err := c.JSON(status, body); err != nil {
		s.log.Error("write error response", "request_id", rid, "err", err)
	}
}
