package gcptest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

const saPrefix = "projects/-/serviceAccounts/"

// generateAccessTokenRequest is the JSON body. The REST client of
// cloud.google.com/go/iam also sends the name it put in the path.
type generateAccessTokenRequest struct {
	Name      string   `json:"name"`
	Delegates []string `json:"delegates"`
	Scope     []string `json:"scope"`
	Lifetime  string   `json:"lifetime"`
}

// serveIAM answers generateAccessToken.
func (h *Handler) serveIAM(w http.ResponseWriter, r *http.Request) {
	call := Call{Endpoint: IAMCredentials, Time: h.now(), Method: r.Method, Path: r.URL.Path, Host: r.Host}
	defer h.calls.Record(&call)
	var shape googleErrors
	refuse := func(code, msg string) { shape.refuse(w, &call, code, msg) }

	if !h.begin(w, r, &call, shape) {
		return
	}
	account, method, _ := strings.Cut(r.PathValue("name"), ":")
	if method != "generateAccessToken" && method != "generateIdToken" {
		refuse("NOT_FOUND", "The requested URL was not found on this server.")
		return
	}
	call.IAMMethod = method
	call.ServiceAccount = account
	if r.PathValue("project") != "-" {
		refuse("INVALID_ARGUMENT", "The project of the resource name must be the - wildcard.")
		return
	}
	if code, msg := checkAccount(account); code != "" {
		refuse(code, msg)
		return
	}

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		refuse("INVALID_ARGUMENT", "The request body could not be read.")
		return
	}
	var in generateAccessTokenRequest
	var idIn generateIDTokenRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if method == "generateIdToken" {
		err = dec.Decode(&idIn)
		in.Name, in.Delegates = idIn.Name, idIn.Delegates
		call.IDTokenAudience, call.IncludeEmail = idIn.Audience, idIn.IncludeEmail
	} else {
		err = dec.Decode(&in)
	}
	if err != nil {
		refuse("INVALID_ARGUMENT", "Invalid JSON payload received. "+err.Error())
		return
	}
	call.Scopes = in.Scope
	for _, d := range in.Delegates {
		sa, ok := strings.CutPrefix(d, saPrefix)
		if !ok || sa == "" || strings.Contains(sa, "/") {
			refuse("INVALID_ARGUMENT", "Delegates must be of the form projects/-/serviceAccounts/{ACCOUNT}.")
			return
		}
		if code, msg := checkAccount(sa); code != "" {
			refuse(code, msg)
			return
		}
		call.Delegates = append(call.Delegates, sa)
	}
	if in.Name != "" && in.Name != saPrefix+account {
		refuse("INVALID_ARGUMENT", "The name in the body does not match the name in the URL.")
		return
	}
	lifetime := time.Hour
	if in.Lifetime != "" {
		d, err := parseDuration(in.Lifetime)
		if err != nil {
			refuse("INVALID_ARGUMENT", "Invalid value at 'lifetime' (type.googleapis.com/google.protobuf.Duration).")
			return
		}
		lifetime = d
		call.Lifetime = d
	}

	tok, known := h.bearer(r)
	if known {
		call.Caller, call.CallerVia = tok.Principal, tok.Via
	}
	switch {
	case !known && r.Header.Get("Authorization") == "":
		refuse("UNAUTHENTICATED", "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential.")
		return
	case !known || !h.now().Before(tok.Expiry):
		refuse("UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.")
		return
	case !slices.Contains(tok.Scopes, CloudPlatformScope) && !slices.Contains(tok.Scopes, IAMScope):
		refuse("PERMISSION_DENIED", "Request had insufficient authentication scopes.")
		return
	}
	if code := h.refusal(IAMCredentials); code != "" {
		refuse(code, refusalMessage(code, account, method))
		return
	}

	if method == "generateIdToken" {
		h.serveIDToken(w, &call, refuse, tok, account, idIn)
		return
	}
	switch {
	case len(in.Scope) == 0:
		refuse("INVALID_ARGUMENT", "Scope required.")
		return
	case lifetime <= 0:
		refuse("INVALID_ARGUMENT", "The lifetime must be positive.")
		return
	case lifetime > h.maxLifetime(account):
		// Google's shape (400, INVALID_ARGUMENT); the words are the fake's.
		refuse("INVALID_ARGUMENT", fmt.Sprintf("The lifetime requested (%ds) exceeds the allowed maximum of %d seconds for %s. "+
			"Lifetimes of up to %d seconds need the service account listed in an organization policy enforcing %s.",
			int(lifetime/time.Second), int(h.maxLifetime(account)/time.Second), account, int(MaxExtendedLifetime/time.Second), LifetimeConstraint))
		return
	}
	// Each hop of caller → delegates… → account must be granted.
	members := h.members(tok)
	for _, next := range append(slices.Clone(call.Delegates), account) {
		if !h.allowedAny(members, next) {
			refuse("PERMISSION_DENIED", "Permission '"+permission(method)+"' denied on resource (or it may not exist).")
			return
		}
		members = []string{next}
	}

	expiry := h.now().Add(lifetime).Truncate(time.Second)
	access := h.issue("ya29.c.gcptest-", Token{Via: IAMCredentials, Principal: account, Scopes: slices.Clone(in.Scope), Expiry: expiry})
	writeJSON(w, http.StatusOK, map[string]string{
		"accessToken": access,
		"expireTime":  expiry.UTC().Format(time.RFC3339),
	})
	call.Status, call.IssuedExpiry, call.IssuedToken = http.StatusOK, expiry, access
}

// maxLifetime is the longest token generateAccessToken grants account.
func (h *Handler) maxLifetime(account string) time.Duration {
	if h.extended[account] {
		return MaxExtendedLifetime
	}
	return DefaultMaxLifetime
}

// checkAccount answers an account that is no service account as Google does:
// 400 INVALID_ARGUMENT when it is neither an e-mail nor a unique id, 404
// NOT_FOUND when it is an e-mail outside gserviceaccount.com (no service
// account has one) or a number that is no unique id (21 digits).
func checkAccount(account string) (code, msg string) {
	local, domain, email := strings.Cut(account, "@")
	digits := account != "" && strings.Trim(account, "0123456789") == ""
	switch {
	case digits && len(account) == 21 && account[0] != '0':
		return "", ""
	case digits:
		return "NOT_FOUND", "Not found; Gaia id not found for unique id " + account
	case !email || local == "" || domain == "" || strings.ContainsAny(account, "/ \t") || strings.Count(account, "@") != 1:
		return "INVALID_ARGUMENT", "Invalid form of account ID " + account + ". Should be [Gaia ID |Email |Unique ID |] of the account"
	case domain != "gserviceaccount.com" && !strings.HasSuffix(domain, ".gserviceaccount.com"):
		return "NOT_FOUND", "Not found; Gaia id not found for email " + account
	}
	return "", ""
}

// parseDuration reads a google.protobuf.Duration's JSON form: seconds with
// up to nine fractional digits and an "s".
func parseDuration(s string) (time.Duration, error) {
	if !strings.HasSuffix(s, "s") || strings.ContainsAny(s, "hmuµn") {
		return 0, fmt.Errorf("not a duration: %q", s)
	}
	return time.ParseDuration(s)
}

// bearer finds the request's bearer token among those the fake issued.
func (h *Handler) bearer(r *http.Request) (Token, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return Token{}, false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.tokens[tok]
	return t, ok
}

// members are the IAM members a token's principal matches.
func (h *Handler) members(t Token) []string {
	if t.Pool == "" {
		return []string{t.Principal}
	}
	set := "principalSet://iam.googleapis.com/" + t.Pool
	m := []string{t.Principal, set + "/*"}
	for k, v := range t.Attributes {
		m = append(m, set+"/attribute."+k+"/"+v)
	}
	return m
}

func (h *Handler) allowedAny(members []string, account string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range members {
		if h.allowed[m][account] {
			return true
		}
	}
	return false
}

// refusalMessage is a message in Google's words for a refusal injected with
// Refuse; like Google's, it names the account.
func refusalMessage(code, account, method string) string {
	switch code {
	case "PERMISSION_DENIED":
		return "Permission '" + permission(method) + "' denied on resource (or it may not exist)."
	case "NOT_FOUND":
		return "Not found; Gaia id not found for email " + account
	case "INVALID_ARGUMENT":
		return "Request contains an invalid argument."
	case "UNAUTHENTICATED":
		return "Request had invalid authentication credentials."
	case "FAILED_PRECONDITION":
		return "Precondition check failed."
	}
	return "The request for " + account + " was refused."
}
