package ststest

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// The IAM API version and XML namespace of the Query protocol.
const (
	IAMAPIVersion = "2010-05-08"
	iamXmlns      = "https://iam.amazonaws.com/doc/2010-05-08/"
)

// IAMCall is one request the IAM fake received, whatever its outcome.
type IAMCall struct {
	Time    time.Time
	Action  string
	Version string
	// Region is the region of the signature's credential scope.
	Region      string
	AccessKeyID string

	RoleName       string
	PolicyName     string
	PolicyDocument string
	Params         url.Values

	// Status and ErrorCode are what the fake answered (ErrorCode empty on
	// success).
	Status    int
	ErrorCode string
	RequestID string
}

// IAMHandler is a fake IAM that answers PutRolePolicy (and GetRolePolicy,
// to read back what was put) over IAM's Query protocol: form-encoded POST,
// SigV4 signed for service iam with a key the fake knows (the options
// WithKeys and WithClock apply as to the STS fake), XML answers and errors
// in IAM's shapes. Every role exists unless RefuseRole says otherwise; the
// fake keeps the inline policies put. It evaluates no IAM policy: every
// valid, signed call succeeds unless Refuse or RefuseRole asks for an
// error. All methods are safe for concurrent use.
type IAMHandler struct {
	keys map[string]Key
	now  func() time.Time

	mu         sync.Mutex
	refuse     string
	refuseRole map[string]string
	calls      []IAMCall
	policies   map[string]map[string]string // role → policy name → document
}

// NewIAMHandler returns an IAM fake. Of the options, WithKeys and WithClock
// apply.
func NewIAMHandler(opts ...Option) *IAMHandler {
	h := NewHandler(opts...)
	return &IAMHandler{keys: h.keys, now: h.now, refuseRole: map[string]string{}, policies: map[string]map[string]string{}}
}

// IAMServer is an IAMHandler served on 127.0.0.1 by httptest.
type IAMServer struct {
	*IAMHandler
	srv *httptest.Server
}

// NewIAM starts a fake IAM on 127.0.0.1, closed when the test ends.
func NewIAM(t testing.TB, opts ...Option) *IAMServer {
	t.Helper()
	s := &IAMServer{IAMHandler: NewIAMHandler(opts...)}
	s.srv = httptest.NewServer(s.IAMHandler)
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the fake's base URL, for AWS_ENDPOINT_URL_IAM.
func (s *IAMServer) URL() string { return s.srv.URL }

// Refuse makes every later valid PutRolePolicy fail with code
// (AccessDenied, NoSuchEntity, LimitExceeded, ...) and that code's status,
// until Reset or Refuse("").
func (h *IAMHandler) Refuse(code string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.refuse = code
}

// RefuseRole makes later calls on the role named role fail with code
// (AccessDenied for a role the caller may not change, NoSuchEntity for one
// that does not exist); "" clears it.
func (h *IAMHandler) RefuseRole(role, code string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if code == "" {
		delete(h.refuseRole, role)
	} else {
		h.refuseRole[role] = code
	}
}

// Reset clears the controls, the calls and the policies.
func (h *IAMHandler) Reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.refuse, h.refuseRole, h.calls, h.policies = "", map[string]string{}, nil, map[string]map[string]string{}
}

// Calls returns a copy of the calls received so far.
func (h *IAMHandler) Calls() []IAMCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]IAMCall, len(h.calls))
	for i, c := range h.calls {
		c.Params = cloneValues(c.Params)
		out[i] = c
	}
	return out
}

// RolePolicy returns the inline policy name of role as last put.
func (h *IAMHandler) RolePolicy(role, name string) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	doc, ok := h.policies[role][name]
	return doc, ok
}

var (
	iamRoleName   = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)
	iamPolicyName = regexp.MustCompile(`^[\w+=,.@-]{1,128}$`)
)

// iamErrorStatus is IAM's HTTP status of an error code; others are 400.
var iamErrorStatus = map[string]int{
	"AccessDenied":               http.StatusForbidden,
	"InvalidClientTokenId":       http.StatusForbidden,
	"MissingAuthenticationToken": http.StatusForbidden,
	"SignatureDoesNotMatch":      http.StatusForbidden,
	"NoSuchEntity":               http.StatusNotFound,
	"LimitExceeded":              http.StatusConflict,
	"UnmodifiableEntity":         http.StatusBadRequest,
	"ServiceFailure":             http.StatusInternalServerError,
}

// ServeHTTP answers one IAM Query-protocol request.
func (h *IAMHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	call := IAMCall{Time: h.now(), RequestID: uuid.NewString()}
	w.Header().Set("X-Amzn-Requestid", call.RequestID)
	defer func() {
		h.mu.Lock()
		h.calls = append(h.calls, call)
		h.mu.Unlock()
	}()
	fail := func(code, msg string) {
		status, ok := iamErrorStatus[code]
		if !ok {
			status = http.StatusBadRequest
		}
		typ := "Sender"
		if status >= 500 {
			typ = "Receiver"
		}
		writeXML(w, status, iamErrorResponse{Xmlns: iamXmlns,
			Error: errorDetail{Type: typ, Code: code, Message: msg}, RequestID: call.RequestID})
		call.Status, call.ErrorCode = status, code
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		fail("ValidationError", "Request body could not be read.")
		return
	}
	params, bad := (&Handler{}).params(r, body)
	if bad != "" {
		fail("MalformedQueryString", bad)
		return
	}
	call.Params = params
	call.Action, call.Version = params.Get("Action"), params.Get("Version")
	call.RoleName, call.PolicyName, call.PolicyDocument = params.Get("RoleName"), params.Get("PolicyName"), params.Get("PolicyDocument")

	auth, code, msg := verifySigV4(r, body, h.keys, h.now(), "iam")
	call.AccessKeyID, call.Region = auth.accessKeyID, auth.region
	if code != "" {
		fail(code, msg)
		return
	}
	if call.Version != IAMAPIVersion {
		fail("InvalidAction", fmt.Sprintf("Could not find operation %s for version %s", call.Action, call.Version))
		return
	}
	switch call.Action {
	case "PutRolePolicy", "GetRolePolicy":
	default:
		fail("InvalidAction", fmt.Sprintf("Could not find operation %s for version %s", call.Action, call.Version))
		return
	}
	if code, msg := validateRolePolicy(call.Action, params); code != "" {
		fail(code, msg)
		return
	}
	h.mu.Lock()
	refuse := h.refuseRole[call.RoleName]
	if refuse == "" && call.Action == "PutRolePolicy" {
		refuse = h.refuse
	}
	h.mu.Unlock()
	switch refuse {
	case "":
	case "AccessDenied":
		fail(refuse, fmt.Sprintf("User: arn:aws:iam::%s:user/ststest is not authorized to perform: iam:%s on resource: role %s because no identity-based policy allows the iam:%s action",
			CallerAccount, call.Action, call.RoleName, call.Action))
		return
	case "NoSuchEntity":
		fail(refuse, "The role with name "+call.RoleName+" cannot be found.")
		return
	default:
		fail(refuse, "Refused by the test.")
		return
	}

	if call.Action == "GetRolePolicy" {
		h.mu.Lock()
		doc, ok := h.policies[call.RoleName][call.PolicyName]
		h.mu.Unlock()
		if !ok {
			fail("NoSuchEntity", "The role policy with name "+call.PolicyName+" cannot be found.")
			return
		}
		writeXML(w, http.StatusOK, getRolePolicyResponse{Xmlns: iamXmlns,
			Result:   getRolePolicyResult{RoleName: call.RoleName, PolicyName: call.PolicyName, PolicyDocument: url.QueryEscape(doc)},
			Metadata: responseMetadata{RequestID: call.RequestID}})
		call.Status = http.StatusOK
		return
	}
	h.mu.Lock()
	if h.policies[call.RoleName] == nil {
		h.policies[call.RoleName] = map[string]string{}
	}
	h.policies[call.RoleName][call.PolicyName] = call.PolicyDocument
	h.mu.Unlock()
	writeXML(w, http.StatusOK, putRolePolicyResponse{Xmlns: iamXmlns, Metadata: responseMetadata{RequestID: call.RequestID}})
	call.Status = http.StatusOK
}

// validateRolePolicy checks what IAM checks of the parameters.
func validateRolePolicy(action string, p url.Values) (code, msg string) {
	invalid := func(format string, a ...any) (string, string) {
		return "ValidationError", "1 validation error detected: " + fmt.Sprintf(format, a...)
	}
	if !iamRoleName.MatchString(p.Get("RoleName")) {
		return invalid("Value at 'roleName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+ and length between 1 and 64")
	}
	if !iamPolicyName.MatchString(p.Get("PolicyName")) {
		return invalid("Value at 'policyName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+ and length between 1 and 128")
	}
	if action != "PutRolePolicy" {
		return "", ""
	}
	doc := p.Get("PolicyDocument")
	if n := utf8.RuneCountInString(doc); n < 1 || n > 131072 {
		return invalid("Value at 'policyDocument' failed to satisfy constraint: Member must have length between 1 and 131072")
	}
	var v struct {
		Version   string
		Statement json.RawMessage
	}
	if json.Unmarshal([]byte(doc), &v) != nil || len(v.Statement) == 0 {
		return "MalformedPolicyDocument", "Syntax errors in policy."
	}
	if v.Version != "" && v.Version != "2012-10-17" && v.Version != "2008-10-17" {
		return "MalformedPolicyDocument", "The policy failed legacy parsing"
	}
	return "", ""
}

// The XML shapes of IAM's answers.

type putRolePolicyResponse struct {
	XMLName  xml.Name         `xml:"PutRolePolicyResponse"`
	Xmlns    string           `xml:"xmlns,attr"`
	Metadata responseMetadata `xml:"ResponseMetadata"`
}

type getRolePolicyResponse struct {
	XMLName  xml.Name            `xml:"GetRolePolicyResponse"`
	Xmlns    string              `xml:"xmlns,attr"`
	Result   getRolePolicyResult `xml:"GetRolePolicyResult"`
	Metadata responseMetadata    `xml:"ResponseMetadata"`
}

// getRolePolicyResult's PolicyDocument is URL-encoded, as IAM returns it.
type getRolePolicyResult struct {
	RoleName       string `xml:"RoleName"`
	PolicyName     string `xml:"PolicyName"`
	PolicyDocument string `xml:"PolicyDocument"`
}

type iamErrorResponse struct {
	XMLName   xml.Name    `xml:"ErrorResponse"`
	Xmlns     string      `xml:"xmlns,attr"`
	Error     errorDetail `xml:"Error"`
	RequestID string      `xml:"RequestId"`
}
