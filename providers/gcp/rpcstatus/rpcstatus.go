// Package rpcstatus maps HTTP statuses to the google.rpc.Code names that
// Google's REST APIs answer with them: the one table both the gcp provider
// (reading a status-less error) and the wire-compatible fake (test/gcptest,
// writing one) use. It imports nothing of Google's SDK.
package rpcstatus

import "net/http"

// Name is the google.rpc.Code name of an HTTP status, as Google's REST APIs
// map them: a 5xx without a name of its own is INTERNAL, anything else
// unknown UNKNOWN.
func Name(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "INVALID_ARGUMENT"
	case http.StatusUnauthorized:
		return "UNAUTHENTICATED"
	case http.StatusForbidden:
		return "PERMISSION_DENIED"
	case http.StatusNotFound:
		return "NOT_FOUND"
	case http.StatusConflict:
		return "ABORTED"
	case http.StatusTooManyRequests:
		return "RESOURCE_EXHAUSTED"
	case 499:
		return "CANCELLED"
	case http.StatusNotImplemented:
		return "UNIMPLEMENTED"
	case http.StatusServiceUnavailable:
		return "UNAVAILABLE"
	case http.StatusGatewayTimeout:
		return "DEADLINE_EXCEEDED"
	}
	if status >= 500 {
		return "INTERNAL"
	}
	return "UNKNOWN"
}
