package entratest

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// entraError is one error answer in Entra's shape.
type entraError struct {
	status     int
	err        string // OAuth error: invalid_client, ...
	code       int    // AADSTS number
	desc       string // the text after "AADSTSnnn: "
	retryAfter bool
}

// codes gives Entra's OAuth error and status for the AADSTS codes the fake
// answers or that Refuse is likely to be asked for.
var codes = map[int]struct {
	err    string
	status int
	desc   string
}{
	50000:   {"server_error", 500, "There was an error issuing a token or an issue with our sign-in service."},
	50027:   {"invalid_request", 400, "JWT token is invalid or malformed."},
	50166:   {"invalid_request", 400, "Request to External OIDC endpoint failed."},
	53003:   {"access_denied", 400, "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance."},
	70003:   {"unsupported_grant_type", 400, "The app requested an unsupported grant type."},
	70021:   {"invalid_request", 400, "No matching federated identity record found for presented assertion."},
	90002:   {"invalid_request", 400, "Tenant not found."},
	90033:   {"temporarily_unavailable", 503, "A transient error has occurred. Please try again."},
	500011:  {"invalid_resource", 400, "The resource principal was not found in the tenant."},
	700016:  {"unauthorized_client", 400, "Application was not found in the directory."},
	700024:  {"invalid_client", 401, "Client assertion is not within its valid time range."},
	700027:  {"invalid_client", 401, "Client assertion failed signature validation."},
	700211:  {"invalid_client", 401, "No matching federated identity record found for presented assertion issuer."},
	700212:  {"invalid_client", 401, "No matching federated identity record found for presented assertion audience."},
	700213:  {"invalid_client", 401, "No matching federated identity record found for presented assertion subject."},
	900144:  {"invalid_request", 400, "The request body must contain a required parameter."},
	1002012: {"invalid_scope", 400, "The provided value for scope is not valid."},
	7000112: {"unauthorized_client", 400, "Application is disabled."},
	7000215: {"invalid_client", 401, "Invalid client secret provided."},
	7000218: {"invalid_client", 401, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."},
}

// refusal is code's error; a format, when given, replaces the table's text.
func refusal(code int, format string, args ...any) entraError {
	c, ok := codes[code]
	if !ok {
		c.err, c.status, c.desc = "invalid_request", http.StatusBadRequest, "Refused by entratest."
	}
	e := entraError{status: c.status, err: c.err, code: code, desc: c.desc}
	if format != "" {
		e.desc = fmt.Sprintf(format, args...)
	}
	return e
}

// failure is the error of a failing Entra answering status.
func failure(status int) entraError {
	switch status {
	case http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return entraError{status: status, err: "temporarily_unavailable", code: 90033, desc: codes[90033].desc}
	case http.StatusTooManyRequests:
		return entraError{status: status, err: "temporarily_unavailable", code: 90033, desc: codes[90033].desc, retryAfter: true}
	}
	return entraError{status: status, err: "server_error", code: 50000, desc: codes[50000].desc}
}

// parseCode reads "AADSTS70021" or "70021".
func parseCode(s string) (int, bool) {
	s = strings.TrimPrefix(strings.ToUpper(s), "AADSTS")
	n, err := strconv.Atoi(s)
	return n, err == nil && n > 0 && !strings.HasPrefix(s, "+")
}

// writeError answers e as Entra does and records it in call.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, call *Call, e entraError) {
	now := s.now().UTC()
	ts := now.Format("2006-01-02 15:04:05Z")
	traceID := uuid.NewString()
	corr := r.Header.Get("client-request-id")
	if _, err := uuid.Parse(corr); err != nil {
		corr = uuid.NewString()
	}
	if e.retryAfter {
		w.Header().Set("Retry-After", "1")
	}
	call.Status, call.Error, call.ErrorCode = e.status, e.err, "AADSTS"+strconv.Itoa(e.code)
	writeJSON(w, e.status, map[string]any{
		"error": e.err,
		"error_description": fmt.Sprintf("AADSTS%d: %s Trace ID: %s Correlation ID: %s Timestamp: %s",
			e.code, e.desc, traceID, corr, ts),
		"error_codes":    []int{e.code},
		"timestamp":      ts,
		"trace_id":       traceID,
		"correlation_id": corr,
		"error_uri":      s.URL() + "/error?code=" + strconv.Itoa(e.code),
	})
}
