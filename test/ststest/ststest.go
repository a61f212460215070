package ststest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/oidc-bridge/oidc-bridge/test/faulttest"
)

// The access key pair every fake knows unless built with WithKeys. Tests give
// it to the bridge as AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
const (
	AccessKeyID     = "AKIASTSFAKETESTKEY01"
	SecretAccessKey = "ststest/TestSecretAccessKey/0123456789ab"
)

// CallerAccount is the account of the callers' own identities, as
// GetCallerIdentity reports it.
const CallerAccount = "111122223333"

// The STS API version and XML namespace of the Query protocol.
const (
	APIVersion = "2011-06-15"
	xmlns      = "https://sts.amazonaws.com/doc/2011-06-15/"
)

// maxSessionToken is the session token size that SessionTokenUtilization
// reports as 100%.
const maxSessionToken = 4096

// maxBody bounds a request body; STS's own limit is far above anything an
// AssumeRole needs.
const maxBody = 1 << 20

// Key is an access key pair the fake accepts. SessionToken, when set, must
// arrive as X-Amz-Security-Token (temporary credentials); when empty, a
// request carrying a token is refused.
type Key struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
}

// Option configures a Handler or Server.
type Option func(*Handler)

// WithKeys replaces the default key pair with keys.
func WithKeys(keys ...Key) Option {
	return func(h *Handler) {
		h.keys = make(map[string]Key, len(keys))
		for _, k := range keys {
			h.keys[k.AccessKeyID] = k
		}
	}
}

// WithLatency delays every answer by d (see SetLatency).
func WithLatency(d time.Duration) Option {
	return func(h *Handler) { h.latency = d }
}

// WithClock makes the fake read the time from now: signature freshness and
// credential expirations follow it.
func WithClock(now func() time.Time) Option {
	return func(h *Handler) { h.now = now }
}

// WithRoleChainingCaller makes every caller of AssumeRole a role session,
// as the bridge is on IRSA, EKS Pod Identity, an ECS task role or an EC2
// instance profile: the call is then role chaining, and DurationSeconds over
// 3600 is refused (see SetRoleChainingCaller).
func WithRoleChainingCaller() Option {
	return func(h *Handler) { h.chaining = true }
}

// SetRoleChainingCaller says whether later AssumeRole callers are role
// sessions (WithRoleChainingCaller).
func (h *Handler) SetRoleChainingCaller(on bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.chaining = on
}

// Call is one request the fake received, whatever its outcome.
type Call struct {
	Time    time.Time
	Action  string
	Version string
	// Region is the region of the signature's credential scope.
	Region string
	// Host is the request's Host header: the STS endpoint the SDK resolved
	// (sts.us-gov-west-1.amazonaws.com) when a test maps such hosts to the
	// fake (test/hosttest), else the fake's address.
	Host string
	// AccessKeyID is the key id the request was signed with; empty when the
	// request carried no SigV4 Authorization header.
	AccessKeyID string

	RoleArn           string
	RoleSessionName   string
	DurationSeconds   int // 0 when absent
	SourceIdentity    string
	Policy            string
	PolicyArns        []string
	ExternalID        string
	Tags              map[string]string
	TransitiveTagKeys []string
	// WebIdentityIssuer, WebIdentitySubject, WebIdentityAudience and
	// WebIdentityClaims (the whole payload) are what an
	// AssumeRoleWithWebIdentity's token claims, read whenever the token
	// parses as a JWT, verified or not: Status and ErrorCode tell. Of a
	// verified token, SourceIdentity, Tags and TransitiveTagKeys hold what
	// its https://aws.amazon.com/source_identity and
	// https://aws.amazon.com/tags claims say.
	WebIdentityIssuer   string
	WebIdentitySubject  string
	WebIdentityAudience []string
	WebIdentityClaims   json.RawMessage
	// Params is the whole decoded form.
	Params url.Values

	// Status and ErrorCode are what the fake answered (ErrorCode empty on
	// success); IssuedAccessKeyID the key id it issued, if any.
	Status            int
	ErrorCode         string
	IssuedAccessKeyID string
	RequestID         string
}

// Handler is the fake's http.Handler, usable without Server (e.g. behind a
// TLS listener). Its controls (Refuse, Throttle, Fail, Hang, SetLatency)
// apply to requests that arrive after they are set.
type Handler struct {
	keys       map[string]Key // read-only after NewHandler
	now        func() time.Time
	closed     chan struct{}
	once       sync.Once
	oidcClient *http.Client // read-only after NewHandler

	oidcMu sync.Mutex
	oidc   map[string]*oidcProvider // by issuer URL
	// roleTrust holds the roles' web identity trust policies.
	roleTrust map[string]TrustPolicy

	mu       sync.Mutex
	latency  time.Duration
	refuse   string
	throttle int
	faults   faulttest.Faults // Fail, Drop and Hang
	hold     chan struct{}    // closed by the release of Hold
	held     chan struct{}    // one send per request that starts waiting on hold
	calls    []Call
	issued   map[string]time.Time // by access key id: when it was issued
	// chaining: AssumeRole callers are role sessions (role chaining).
	chaining bool
	// outbound mints GetWebIdentityToken's tokens (WithOutboundIdentity);
	// read-only after NewHandler.
	outbound func(OutboundRequest) (string, error)
}

// NewHandler returns a Handler that knows the default key pair unless
// options say otherwise.
func NewHandler(opts ...Option) *Handler {
	h := &Handler{
		keys:   map[string]Key{AccessKeyID: {AccessKeyID: AccessKeyID, SecretAccessKey: SecretAccessKey}},
		now:    time.Now,
		closed: make(chan struct{}),
		issued: make(map[string]time.Time),
		oidc:   make(map[string]*oidcProvider),
	}
	for _, o := range opts {
		o(h)
	}
	if h.oidcClient == nil {
		h.oidcClient = &http.Client{Timeout: oidcFetchTimeout}
	}
	return h
}

// Server is a Handler served on 127.0.0.1 by httptest.
type Server struct {
	*Handler
	srv *httptest.Server
}

// New starts a fake STS on 127.0.0.1, closed when the test ends.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	h := NewHandler(opts...)
	s := &Server{Handler: h, srv: httptest.NewServer(h)}
	t.Cleanup(func() {
		h.Close() // release hung requests first: srv.Close waits for them
		s.srv.Close()
	})
	return s
}

// URL is the fake's base URL, for AWS_ENDPOINT_URL_STS.
func (s *Server) URL() string { return s.srv.URL }

// Close releases requests held by Hang or latency; later requests are no
// longer held. Server calls it when the test ends.
func (h *Handler) Close() { h.once.Do(func() { close(h.closed) }) }

// Refuse makes every later AssumeRole that passes validation, and every
// AssumeRoleWithWebIdentity whose token verifies, fail with code
// (AccessDenied, RegionDisabledException, MalformedPolicyDocument,
// PackedPolicyTooLarge, ExpiredToken, ...) and that code's HTTP status, until
// Reset or Refuse(""). The message, like AWS's, names the caller and the role.
func (h *Handler) Refuse(code string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.refuse = code
}

// Throttle makes the next n requests fail with 400 Throttling.
func (h *Handler) Throttle(n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.throttle = n
}

// Fail makes the next n requests fail with status (503 answers
// ServiceUnavailable, any other InternalFailure). Throttle is served first.
func (h *Handler) Fail(n, status int) { h.faults.Fail(n, status) }

// Drop makes the next n requests be read in full and then their
// connections closed without an answer, as a network that loses the
// response after STS got the request: the client cannot know whether STS
// acted. Such calls are recorded with ErrorCode "(dropped)" and Status 0.
func (h *Handler) Drop(n int) { h.faults.Drop(n) }

// Hang makes every later request block until its client goes away (or the
// handler is closed), until Reset.
func (h *Handler) Hang() { h.faults.Hang() }

// Hold makes every later request wait, after its signature is checked and
// any latency, until release is called (or its client goes away, or the
// handler is closed or Reset): a mint held in flight. arrived receives once
// for each request that starts waiting (up to 16 unread).
func (h *Handler) Hold() (arrived <-chan struct{}, release func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.releaseHold()
	hold, held := make(chan struct{}), make(chan struct{}, 16)
	h.hold, h.held = hold, held
	var once sync.Once
	return held, func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			if h.hold == hold {
				h.releaseHold()
			}
		})
	}
}

// releaseHold releases the requests held by Hold; h.mu is held.
func (h *Handler) releaseHold() {
	if h.hold != nil {
		close(h.hold)
		h.hold, h.held = nil, nil
	}
}

// SetLatency delays every later answer by d; 0 removes the delay.
func (h *Handler) SetLatency(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.latency = d
}

// Reset clears every control (including latency) and forgets the calls.
func (h *Handler) Reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.latency, h.refuse, h.throttle = 0, "", 0
	h.faults.Reset()
	h.releaseHold()
	h.calls = nil
}

// IssuedAt returns when the fake issued the session of accessKeyID (after
// any latency or Hold): its aws:TokenIssueTime. It reports false for a key
// it never issued.
func (h *Handler) IssuedAt(accessKeyID string) (time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	at, ok := h.issued[accessKeyID]
	return at, ok
}

// Calls returns a copy of the calls received so far, in arrival order of
// their answers.
func (h *Handler) Calls() []Call {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Call, len(h.calls))
	for i, c := range h.calls {
		c.Tags = maps.Clone(c.Tags)
		c.Params = cloneValues(c.Params)
		c.PolicyArns = slices.Clone(c.PolicyArns)
		c.TransitiveTagKeys = slices.Clone(c.TransitiveTagKeys)
		c.WebIdentityAudience = slices.Clone(c.WebIdentityAudience)
		c.WebIdentityClaims = slices.Clone(c.WebIdentityClaims)
		out[i] = c
	}
	return out
}

// CallCount is len(Calls()) without the copy.
func (h *Handler) CallCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.calls)
}

func cloneValues(v url.Values) url.Values {
	if v == nil {
		return nil
	}
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

// ServeHTTP answers one STS Query-protocol request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	call := Call{Time: h.now(), RequestID: uuid.NewString(), Host: r.Host}
	w.Header().Set("X-Amzn-Requestid", call.RequestID)
	recorded := false
	record := func() {
		if recorded {
			return
		}
		recorded = true
		h.mu.Lock()
		h.calls = append(h.calls, call)
		h.mu.Unlock()
	}
	defer record()
	fail := func(code, msg string) {
		call.Status, call.ErrorCode = writeError(w, call.RequestID, code, msg)
	}

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		fail("ValidationError", "Request body could not be read.")
		return
	}
	params, bad := h.params(r, body)
	if bad != "" {
		fail("MalformedQueryString", bad)
		return
	}
	call.Params = params
	call.Action, call.Version = params.Get("Action"), params.Get("Version")
	if call.Action == "AssumeRole" || call.Action == actionWebIdentity {
		call.readAssumeRole(params)
	}
	if h.faults.TakeDrop() {
		call.ErrorCode = "(dropped)"
		record() // before the client can see the connection close
		faulttest.DropConnection(w)
		return
	}

	// AssumeRoleWithWebIdentity needs no signature: the token is the
	// caller's proof. A signed one is checked all the same, as STS does.
	var auth authInfo
	if call.Action != actionWebIdentity || r.Header.Get("Authorization") != "" {
		var code, msg string
		auth, code, msg = h.verify(r, body)
		call.AccessKeyID, call.Region = auth.accessKeyID, auth.region
		if code != "" {
			fail(code, msg)
			return
		}
	}

	h.mu.Lock()
	latency, hold, held := h.latency, h.hold, h.held
	h.mu.Unlock()
	hang := h.faults.Hanging()
	if !h.wait(r.Context(), latency, hang) || !h.waitHold(r.Context(), hold, held) {
		fail("ServiceUnavailable", "Service unavailable.")
		return
	}

	h.mu.Lock()
	var forced, refuse string
	var forcedStatus int
	if h.throttle > 0 {
		h.throttle--
		forced = "Throttling"
	} else if forcedStatus = h.faults.TakeFail(); forcedStatus != 0 {
		forced = "InternalFailure"
		if forcedStatus == http.StatusServiceUnavailable {
			forced = "ServiceUnavailable"
		}
	}
	refuse = h.refuse
	chaining := h.chaining
	h.mu.Unlock()
	switch {
	case forced == "Throttling":
		fail(forced, "Rate exceeded")
		return
	case forced != "":
		call.Status, call.ErrorCode = writeErrorStatus(w, call.RequestID, forcedStatus, "Receiver", forced,
			"An internal error has occurred. Please try again.")
		return
	}

	if call.Version != APIVersion {
		fail("InvalidAction", fmt.Sprintf("Could not find operation %s for version %s", call.Action, call.Version))
		return
	}
	switch call.Action {
	case "AssumeRole":
		if code, msg := validateAssumeRole(params, chaining); code != "" {
			fail(code, msg)
			return
		}
		if refuse != "" {
			fail(refuse, refusalMessage(refuse, call.Action, auth.accessKeyID, call.RoleArn))
			return
		}
		h.assumeRole(w, &call)
	case actionWebIdentity:
		if code, msg := validateAssumeRoleWithWebIdentity(params); code != "" {
			fail(code, msg)
			return
		}
		wi, werr := h.verifyWebIdentity(r.Context(), params.Get("WebIdentityToken"), &call)
		if werr != nil {
			fail(werr.code, werr.msg)
			return
		}
		if !h.trusts(call.RoleArn, wi) {
			refuse = "AccessDenied"
		}
		if refuse != "" {
			fail(refuse, refusalMessage(refuse, call.Action, auth.accessKeyID, call.RoleArn))
			return
		}
		h.assumeRoleWithWebIdentity(w, &call, wi)
	case actionOutbound:
		h.getWebIdentityToken(w, &call, auth, fail)
	case "GetCallerIdentity":
		writeXML(w, http.StatusOK, getCallerIdentityResponse{
			Xmlns: xmlns,
			Result: callerIdentity{
				Arn:     "arn:aws:iam::" + CallerAccount + ":user/ststest",
				UserID:  "AIDA" + idFrom(auth.accessKeyID, 17),
				Account: CallerAccount,
			},
			Metadata: responseMetadata{RequestID: call.RequestID},
		})
		call.Status = http.StatusOK
	default:
		fail("InvalidAction", fmt.Sprintf("Could not find operation %s for version %s", call.Action, call.Version))
	}
}

// params decodes the form: the body of a POST (which must be form-encoded)
// and the URL's query string. On failure it returns STS's message.
func (h *Handler) params(r *http.Request, body []byte) (url.Values, string) {
	params, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, "Malformed query string."
	}
	if r.Method == http.MethodPost && len(body) > 0 {
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "application/x-www-form-urlencoded" {
			return nil, "Content-Type must be application/x-www-form-urlencoded."
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, "Malformed request body."
		}
		for k, vs := range form {
			params[k] = append(params[k], vs...)
		}
	}
	return params, ""
}

// wait applies latency and Hang; it reports false when the request's client
// went away or the handler closed meanwhile.
func (h *Handler) wait(ctx context.Context, latency time.Duration, hang bool) bool {
	if latency > 0 {
		t := time.NewTimer(latency)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return false
		case <-h.closed:
			return false
		}
	}
	if hang {
		select {
		case <-ctx.Done():
		case <-h.closed:
		}
		return false
	}
	return true
}

// waitHold waits for the release of Hold's hold, if any; it reports false
// when the request's client went away or the handler closed meanwhile.
func (h *Handler) waitHold(ctx context.Context, hold, held chan struct{}) bool {
	if hold == nil {
		return true
	}
	select {
	case held <- struct{}{}:
	default:
	}
	select {
	case <-hold:
		return true
	case <-ctx.Done():
	case <-h.closed:
	}
	return false
}

func (c *Call) readAssumeRole(p url.Values) {
	c.RoleArn = p.Get("RoleArn")
	c.RoleSessionName = p.Get("RoleSessionName")
	c.DurationSeconds, _ = strconv.Atoi(p.Get("DurationSeconds"))
	c.SourceIdentity = p.Get("SourceIdentity")
	c.Policy = p.Get("Policy")
	c.ExternalID = p.Get("ExternalId")
	for _, m := range members(p, "PolicyArns.member.") {
		c.PolicyArns = append(c.PolicyArns, m["arn"])
	}
	for _, m := range members(p, "TransitiveTagKeys.member.") {
		c.TransitiveTagKeys = append(c.TransitiveTagKeys, m[""])
	}
	if tags := members(p, "Tags.member."); len(tags) > 0 {
		c.Tags = make(map[string]string, len(tags))
		for _, m := range tags {
			c.Tags[m["Key"]] = m["Value"]
		}
	}
}

// members decodes a Query-protocol list: prefix+N (scalar members, under
// key "") or prefix+N+".Field". Members are returned in index order.
func members(p url.Values, prefix string) []map[string]string {
	byIndex := map[int]map[string]string{}
	for k := range p {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		idx, field, _ := strings.Cut(rest, ".")
		n, err := strconv.Atoi(idx)
		if err != nil || n < 1 {
			continue
		}
		if byIndex[n] == nil {
			byIndex[n] = map[string]string{}
		}
		byIndex[n][field] = p.Get(k)
	}
	idx := slices.Sorted(maps.Keys(byIndex))
	out := make([]map[string]string, 0, len(idx))
	for _, n := range idx {
		out = append(out, byIndex[n])
	}
	return out
}

var (
	roleARN     = regexp.MustCompile(`^arn:aws(?:-[a-z]+)*:iam::[0-9]{12}:role/(?:[\x21-\x7E]*/)?[\w+=,.@-]{1,64}$`)
	sessionName = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)
	externalID  = regexp.MustCompile(`^[\w+=,.@:/-]+$`)
	tagKey      = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,128}$`)
	tagValue    = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]{0,256}$`)
)

// The limits STS applies, each with its source:
//   - RoleSessionName and SourceIdentity: [\w+=,.@-]{2,64}; ExternalId
//     [\w+=,.@:/-]{2,1224}; Policy 1-2048 characters of
//     [\u0009\u000A\u000D\u0020-\u00FF]; DurationSeconds 900-43200, and
//     at most 3600 "if you assume a role using role chaining"
//     (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html);
//   - up to 50 session tags, keys 1-128 and values 0-256 characters of
//     [\p{L}\p{Z}\p{N}_.:/=+\-@] (API_Tag.html), keys compared without
//     case, none starting with aws:, transitive keys among the tags
//     (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_session-tags.html);
//   - the packed form of policy and tags, whose limit AWS does not
//     publish (PackedPolicyTooLarge): the fake's model is packedLimit.
const (
	maxChainedDuration = 3600
	// packedLimit is the fake's model of AWS's packed-policy limit: the
	// policy's and the tags' (keys and values) characters, uncompressed.
	// AWS compresses, so this is a model, not AWS's figure: it lets a full
	// 2,048-character policy pass with the bridge's tags, and refuses what
	// no compression could fit.
	packedLimit = 4096
)

// packedSize is the fake's measure of policy and tags against packedLimit.
func packedSize(policy string, tags []map[string]string) (policyPart, tagsPart int) {
	for _, m := range tags {
		tagsPart += utf8.RuneCountInString(m["Key"]) + utf8.RuneCountInString(m["Value"])
	}
	return utf8.RuneCountInString(policy), tagsPart
}

// validateAssumeRole checks what STS checks before evaluating any policy;
// chained says the caller is a role session (role chaining).
func validateAssumeRole(p url.Values, chained bool) (code, msg string) {
	invalid := func(format string, a ...any) (string, string) {
		return "ValidationError", "1 validation error detected: " + fmt.Sprintf(format, a...)
	}
	arn := p.Get("RoleArn")
	switch {
	case arn == "":
		return invalid("Value null at 'roleArn' failed to satisfy constraint: Member must not be null")
	case len(arn) < 20 || len(arn) > 2048 || !roleARN.MatchString(arn):
		return "ValidationError", "Invalid ARN: " + arn
	}
	name := p.Get("RoleSessionName")
	if name == "" {
		return invalid("Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null")
	}
	if !sessionName.MatchString(name) {
		return invalid("Value '%s' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]* and length between 2 and 64", name)
	}
	if d := p.Get("DurationSeconds"); d != "" {
		n, err := strconv.Atoi(d)
		if err != nil || n < 900 || n > 43200 {
			return invalid("Value '%s' at 'durationSeconds' failed to satisfy constraint: Member must have value between 900 and 43200", d)
		}
		if chained && n > maxChainedDuration {
			return "ValidationError", "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."
		}
	}
	if _, ok := p["SourceIdentity"]; ok && !sessionName.MatchString(p.Get("SourceIdentity")) {
		return invalid("Value '%s' at 'sourceIdentity' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]* and length between 2 and 64", p.Get("SourceIdentity"))
	}
	if id, ok := p["ExternalId"]; ok && (len(id[0]) < 2 || len(id[0]) > 1224 || !externalID.MatchString(id[0])) {
		return invalid("Value at 'externalId' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@:/-]* and length between 2 and 1224")
	}
	if pol, ok := p["Policy"]; ok {
		switch n := utf8.RuneCountInString(pol[0]); {
		case n < 1 || n > 2048:
			return invalid("Value at 'policy' failed to satisfy constraint: Member must have length between 1 and 2048")
		case strings.IndexFunc(pol[0], func(r rune) bool { return r != '\t' && r != '\n' && r != '\r' && (r < 0x20 || r > 0xff) }) >= 0:
			return invalid("Value at 'policy' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u00FF]+")
		case !policyDocument(pol[0]):
			return "MalformedPolicyDocument", "Syntax errors in policy."
		}
	}
	tags := members(p, "Tags.member.")
	if code, msg := validateTags(tags); code != "" {
		return code, msg
	}
	var transitive []string
	for _, m := range members(p, "TransitiveTagKeys.member.") {
		transitive = append(transitive, m[""])
	}
	if code, msg := validateTransitive(transitive, tags); code != "" {
		return code, msg
	}
	if pp, tp := packedSize(p.Get("Policy"), tags); pp+tp > packedLimit {
		if tp > pp {
			return "PackedPolicyTooLarge", fmt.Sprintf("Packed size of session tags consumes %d%% of allotted space.", (pp+tp)*100/packedLimit)
		}
		return "PackedPolicyTooLarge", fmt.Sprintf("Packed policy consumes %d%% of allotted space, please use smaller policy.", (pp+tp)*100/packedLimit)
	}
	return "", ""
}

// policyDocument reports whether p is a JSON object with a Statement, as
// IAM's policy grammar requires.
func policyDocument(p string) bool {
	var doc map[string]json.RawMessage
	return json.Unmarshal([]byte(p), &doc) == nil && doc != nil && len(doc["Statement"]) > 0
}

// validateTransitive checks transitive tag keys: at most 50 tag keys, each
// among tags (without case), none twice.
func validateTransitive(keys []string, tags []map[string]string) (code, msg string) {
	if len(keys) > 50 {
		return "ValidationError", "1 validation error detected: Value at 'transitiveTagKeys' failed to satisfy constraint: Member must have length less than or equal to 50"
	}
	seen := map[string]bool{}
	for _, k := range keys {
		if !tagKey.MatchString(k) {
			return "ValidationError", fmt.Sprintf("1 validation error detected: Value '%s' at 'transitiveTagKeys.member' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+ and length between 1 and 128", k)
		}
		if seen[strings.ToLower(k)] {
			return "InvalidParameterValue", "Duplicate transitive tag keys found."
		}
		seen[strings.ToLower(k)] = true
		if !slices.ContainsFunc(tags, func(m map[string]string) bool { return strings.EqualFold(m["Key"], k) }) {
			return "InvalidParameterValue", "The specified transitive tag key must be included in the requested tags."
		}
	}
	return "", ""
}

// actionWebIdentity is the action the fake verifies tokens for.
const actionWebIdentity = "AssumeRoleWithWebIdentity"

// validateAssumeRoleWithWebIdentity checks what STS checks of an
// AssumeRoleWithWebIdentity before it looks at the token's contents.
func validateAssumeRoleWithWebIdentity(p url.Values) (code, msg string) {
	for _, k := range []string{"SourceIdentity", "ExternalId", "Tags.member.1.Key", "TransitiveTagKeys.member.1"} {
		if _, ok := p[k]; ok {
			return "InvalidParameterValue", "The parameter " + strings.SplitN(k, ".", 2)[0] + " is not valid for AssumeRoleWithWebIdentity."
		}
	}
	// AssumeRoleWithWebIdentity is anonymous: never role chaining.
	if code, msg := validateAssumeRole(p, false); code != "" {
		return code, msg
	}
	tok := p.Get("WebIdentityToken")
	switch n := len(tok); {
	case n == 0:
		return "ValidationError", "1 validation error detected: Value null at 'webIdentityToken' failed to satisfy constraint: Member must not be null"
	case n < 4 || n > 20000:
		return "ValidationError", "1 validation error detected: Value at 'webIdentityToken' failed to satisfy constraint: Member must have length between 4 and 20000"
	}
	if id := p.Get("ProviderId"); id != "" {
		return "InvalidIdentityToken", "ProviderId must not be set for an OpenID Connect ID token."
	}
	return "", ""
}

// validateTags checks session tags as STS does, from any source.
func validateTags(tags []map[string]string) (code, msg string) {
	invalid := func(format string, a ...any) (string, string) {
		return "ValidationError", "1 validation error detected: " + fmt.Sprintf(format, a...)
	}
	if len(tags) > 50 {
		return invalid("Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50")
	}
	seen := map[string]bool{}
	for _, m := range tags {
		k, v := m["Key"], m["Value"]
		if !tagKey.MatchString(k) {
			return invalid("Value '%s' at 'tags.member.key' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+ and length between 1 and 128", k)
		}
		if !tagValue.MatchString(v) {
			return invalid("Value at 'tags.member.value' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]* and length less than or equal to 256")
		}
		if strings.HasPrefix(strings.ToLower(k), "aws:") {
			return invalid("Tag keys starting with 'aws:' are reserved for AWS use")
		}
		if seen[strings.ToLower(k)] {
			return "InvalidParameterValue", "Duplicate tag keys found. Please note that Tag keys are case insensitive."
		}
		seen[strings.ToLower(k)] = true
	}
	return "", ""
}

// session is what AssumeRole and AssumeRoleWithWebIdentity issue alike.
type session struct {
	user                    assumedRoleUser
	creds                   credentials
	packedPolicySize        *int
	sessionTokenSize        int
	sessionTokenUtilization int
}

// newSession issues credentials for a valid call.
func (h *Handler) newSession(call *Call) session {
	dur := 3600
	if call.DurationSeconds != 0 {
		dur = call.DurationSeconds
	}
	partition, account, roleName := splitRoleARN(call.RoleArn)
	s := session{
		user: assumedRoleUser{
			AssumedRoleID: "AROA" + idFrom(call.RoleArn, 17) + ":" + call.RoleSessionName,
			Arn:           "arn:" + partition + ":sts::" + account + ":assumed-role/" + roleName + "/" + call.RoleSessionName,
		},
		creds: credentials{
			AccessKeyID:     h.newAccessKeyID(),
			SecretAccessKey: randomBase64(30),
			SessionToken:    "IQoJb3JpZ2luX2Vj" + randomBase64(300),
			Expiration:      call.Time.UTC().Truncate(time.Second).Add(time.Duration(dur) * time.Second).Format(time.RFC3339),
		},
	}
	s.sessionTokenSize = len(s.creds.SessionToken)
	s.sessionTokenUtilization = min(100, s.sessionTokenSize*100/maxSessionToken)
	if call.Policy != "" || len(call.Tags) > 0 {
		tags := make([]map[string]string, 0, len(call.Tags))
		for k, v := range call.Tags {
			tags = append(tags, map[string]string{"Key": k, "Value": v})
		}
		pp, tp := packedSize(call.Policy, tags)
		pct := max(1, (pp+tp)*100/packedLimit)
		s.packedPolicySize = &pct
	}
	return s
}

// assumeRole answers a valid AssumeRole.
func (h *Handler) assumeRole(w http.ResponseWriter, call *Call) {
	s := h.newSession(call)
	writeXML(w, http.StatusOK, assumeRoleResponse{
		Xmlns: xmlns,
		Result: assumeRoleResult{
			SourceIdentity:          call.SourceIdentity,
			AssumedRoleUser:         s.user,
			Credentials:             s.creds,
			PackedPolicySize:        s.packedPolicySize,
			SessionTokenSize:        s.sessionTokenSize,
			SessionTokenUtilization: s.sessionTokenUtilization,
		},
		Metadata: responseMetadata{RequestID: call.RequestID},
	})
	call.Status, call.IssuedAccessKeyID = http.StatusOK, s.creds.AccessKeyID
}

// assumeRoleWithWebIdentity answers a valid AssumeRoleWithWebIdentity whose
// token verified as wi.
func (h *Handler) assumeRoleWithWebIdentity(w http.ResponseWriter, call *Call, wi webIdentity) {
	s := h.newSession(call)
	writeXML(w, http.StatusOK, assumeRoleWithWebIdentityResponse{
		Xmlns: xmlns,
		Result: assumeRoleWithWebIdentityResult{
			Credentials:                 s.creds,
			SubjectFromWebIdentityToken: wi.subject,
			AssumedRoleUser:             s.user,
			PackedPolicySize:            s.packedPolicySize,
			Provider:                    wi.issuer,
			Audience:                    wi.audience,
			SourceIdentity:              wi.sourceIdentity,
			SessionTokenSize:            s.sessionTokenSize,
			SessionTokenUtilization:     s.sessionTokenUtilization,
		},
		Metadata: responseMetadata{RequestID: call.RequestID},
	})
	call.Status, call.IssuedAccessKeyID = http.StatusOK, s.creds.AccessKeyID
}

// newAccessKeyID returns ASIA and 16 random base32 characters, never the
// same twice from one handler.
func (h *Handler) newAccessKeyID() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	for {
		b := make([]byte, 10)
		_, _ = rand.Read(b)
		id := "ASIA" + base32.StdEncoding.EncodeToString(b)
		if _, taken := h.issued[id]; !taken {
			h.issued[id] = h.now()
			return id
		}
	}
}

func randomBase64(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// idFrom derives a stable uppercase id of n characters from s, like the
// unique ids IAM gives roles and users.
func idFrom(s string, n int) string {
	sum := sha256.Sum256([]byte(s))
	return base32.StdEncoding.EncodeToString(sum[:])[:n]
}

// splitRoleARN returns the partition, account and role name (without path)
// of a validated role ARN.
func splitRoleARN(arn string) (partition, account, name string) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return "aws", "000000000000", "unknown"
	}
	name = parts[5][strings.LastIndex(parts[5], "/")+1:]
	return parts[1], parts[4], name
}

// refusalMessage says, like STS, who was refused what: it names the caller
// and the role ARN with its account, which a bridge must not pass on.
func refusalMessage(code, action, accessKeyID, roleArn string) string {
	switch {
	case code == "AccessDenied" && action == actionWebIdentity:
		return "Not authorized to perform sts:AssumeRoleWithWebIdentity on resource: " + roleArn
	}
	switch code {
	case "AccessDenied":
		return "User: arn:aws:iam::" + CallerAccount + ":user/ststest is not authorized to perform: sts:AssumeRole on resource: " + roleArn
	case "RegionDisabledException":
		return "STS is not activated in this region for account:" + CallerAccount + ". Your account administrator can activate STS in this region using the IAM Console."
	case "ExpiredToken":
		return "The security token included in the request is expired"
	case "InvalidClientTokenId":
		return "The security token included in the request is invalid."
	case "MalformedPolicyDocument":
		return "The policy is not in the valid JSON format."
	case "PackedPolicyTooLarge":
		return "Packed policy consumes 112% of allotted space, please use smaller policy."
	}
	return "Request refused for " + accessKeyID + " on " + roleArn
}
