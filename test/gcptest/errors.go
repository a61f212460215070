package gcptest

import (
	"net/http"

	"github.com/oidc-bridge/oidc-bridge/providers/gcp/rpcstatus"
)

// statusCodes are the HTTP statuses of google.rpc.Code names, as Google's
// REST APIs answer them.
var statusCodes = map[string]int{
	"CANCELLED":           499,
	"UNKNOWN":             http.StatusInternalServerError,
	"INVALID_ARGUMENT":    http.StatusBadRequest,
	"DEADLINE_EXCEEDED":   http.StatusGatewayTimeout,
	"NOT_FOUND":           http.StatusNotFound,
	"ALREADY_EXISTS":      http.StatusConflict,
	"PERMISSION_DENIED":   http.StatusForbidden,
	"UNAUTHENTICATED":     http.StatusUnauthorized,
	"RESOURCE_EXHAUSTED":  http.StatusTooManyRequests,
	"FAILED_PRECONDITION": http.StatusBadRequest,
	"ABORTED":             http.StatusConflict,
	"OUT_OF_RANGE":        http.StatusBadRequest,
	"UNIMPLEMENTED":       http.StatusNotImplemented,
	"INTERNAL":            http.StatusInternalServerError,
	"UNAVAILABLE":         http.StatusServiceUnavailable,
	"DATA_LOSS":           http.StatusInternalServerError,
}

// StatusOf is the google.rpc.Code name Google's REST APIs answer with an
// HTTP status (rpcstatus.Name).
func StatusOf(httpStatus int) string { return rpcstatus.Name(httpStatus) }

// errorShape writes one endpoint family's errors.
type errorShape interface {
	// refuse answers code (the family's own error code) with msg.
	refuse(w http.ResponseWriter, call *Call, code, msg string)
	// fail answers an injected server failure with status.
	fail(w http.ResponseWriter, call *Call, status int)
}

// googleErrors is the JSON error of Google's REST APIs.
type googleErrors struct{}

type googleError struct {
	Error googleErrorBody `json:"error"`
}

type googleErrorBody struct {
	Code    int              `json:"code"`
	Message string           `json:"message"`
	Status  string           `json:"status"`
	Details []map[string]any `json:"details,omitempty"`
}

func (googleErrors) refuse(w http.ResponseWriter, call *Call, code, msg string) {
	status, ok := statusCodes[code]
	if !ok {
		status = http.StatusBadRequest
	}
	body := googleErrorBody{Code: status, Message: msg, Status: code}
	if code == "PERMISSION_DENIED" {
		body.Details = []map[string]any{{
			"@type":  "type.googleapis.com/google.rpc.ErrorInfo",
			"reason": "IAM_PERMISSION_DENIED",
			"domain": "iam.googleapis.com",
			"metadata": map[string]string{
				"permission": "iam.serviceAccounts.getAccessToken",
			},
		}}
	}
	writeJSON(w, status, googleError{Error: body})
	call.Status, call.ErrorCode, call.ErrorMessage = status, code, msg
}

func (g googleErrors) fail(w http.ResponseWriter, call *Call, status int) {
	code := StatusOf(status)
	msg := "Internal error encountered."
	switch code {
	case "UNAVAILABLE":
		msg = "The service is currently unavailable."
	case "RESOURCE_EXHAUSTED":
		msg = "Quota exceeded for quota metric 'Generate credentials requests'."
	case "DEADLINE_EXCEEDED":
		msg = "The request was aborted because a deadline was exceeded."
	}
	body := googleErrorBody{Code: status, Message: msg, Status: code}
	writeJSON(w, status, googleError{Error: body})
	call.Status, call.ErrorCode, call.ErrorMessage = status, code, msg
}

// oauthErrors is the error shape of the OAuth token endpoint and STS
// (RFC 6749 section 5.2).
type oauthErrors struct{}

type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

func (oauthErrors) refuse(w http.ResponseWriter, call *Call, code, msg string) {
	status := http.StatusBadRequest
	if code == "invalid_client" || code == "unauthorized_client" {
		status = http.StatusUnauthorized
	}
	writeJSON(w, status, oauthError{Error: code, Description: msg})
	call.Status, call.ErrorCode, call.ErrorMessage = status, code, msg
}

func (oauthErrors) fail(w http.ResponseWriter, call *Call, status int) {
	code, msg := "server_error", "Internal error encountered."
	if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
		code, msg = "temporarily_unavailable", "The service is currently unavailable."
	}
	writeJSON(w, status, oauthError{Error: code, Description: msg})
	call.Status, call.ErrorCode, call.ErrorMessage = status, code, msg
}
