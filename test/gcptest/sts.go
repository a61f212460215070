package gcptest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Token exchange constants of RFC 8693 as Google STS uses them.
const (
	TokenExchangeGrant   = "urn:ietf:params:oauth:grant-type:token-exchange"
	AccessTokenType      = "urn:ietf:params:oauth:token-type:access_token"
	JWTTokenType         = "urn:ietf:params:oauth:token-type:jwt"
	IDTokenType          = "urn:ietf:params:oauth:token-type:id_token"
	maxSubjectTokenLife  = 48 * time.Hour
	maxGoogleSubjectSize = 127
	maxAllowedAudiences  = 10
	maxAudienceLen       = 256
	clockSkew            = 30 * time.Second
)

var providerName = regexp.MustCompile(`^//iam\.googleapis\.com/(projects/[0-9]+/locations/global/workloadIdentityPools/[a-z0-9-]{4,32})/providers/[a-z0-9-]{4,32}$`)

// WorkloadIdentityProvider is an OIDC provider of a workload identity pool,
// as an admin configures it in Google Cloud.
type WorkloadIdentityProvider struct {
	// Name is the full resource name:
	// //iam.googleapis.com/projects/NUMBER/locations/global/workloadIdentityPools/POOL/providers/PROVIDER.
	Name string
	// IssuerURI is the issuer's URL; subject tokens' iss must equal it, and
	// its discovery document and JWKS are fetched from there.
	IssuerURI string
	// AllowedAudiences are the accepted aud values; when empty, aud must be
	// Name or Name with "//" replaced by "https://", as at Google.
	AllowedAudiences []string
	// AttributeMapping maps google.subject and attribute.NAME to
	// "assertion.CLAIM"; nil means {"google.subject": "assertion.sub"}.
	AttributeMapping map[string]string
}

// Pool is the provider's pool: projects/N/locations/global/workloadIdentityPools/POOL.
func (p WorkloadIdentityProvider) Pool() string {
	m := providerName.FindStringSubmatch(p.Name)
	if m == nil {
		return ""
	}
	return m[1]
}

// Principal is the IAM member of one subject (google.subject) of the pool.
func (p WorkloadIdentityProvider) Principal(subject string) string {
	return "principal://iam.googleapis.com/" + p.Pool() + "/subject/" + subject
}

// PrincipalSet is the IAM member of every identity of the pool whose mapped
// attribute (attribute.NAME) has value.
func (p WorkloadIdentityProvider) PrincipalSet(attribute, value string) string {
	return "principalSet://iam.googleapis.com/" + p.Pool() + "/attribute." + attribute + "/" + value
}

// AllIdentities is the IAM member of every identity of the pool.
func (p WorkloadIdentityProvider) AllIdentities() string {
	return "principalSet://iam.googleapis.com/" + p.Pool() + "/*"
}

// AddWorkloadIdentityProvider trusts p's issuer for token exchanges whose
// audience is p.Name.
func (h *Handler) AddWorkloadIdentityProvider(p WorkloadIdentityProvider) error {
	if !providerName.MatchString(p.Name) {
		return fmt.Errorf("gcptest: %q is not a workload identity pool provider's resource name", p.Name)
	}
	if u, err := url.Parse(p.IssuerURI); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("gcptest: issuer %q is not an http(s) URL", p.IssuerURI)
	}
	// Google's limits on allowed audiences: at most 10, each at most 256
	// characters (WorkloadIdentityPoolProvider.Oidc.allowed_audiences).
	if len(p.AllowedAudiences) > maxAllowedAudiences {
		return fmt.Errorf("gcptest: at most %d allowed audiences", maxAllowedAudiences)
	}
	for _, a := range p.AllowedAudiences {
		if a == "" || len(a) > maxAudienceLen {
			return fmt.Errorf("gcptest: an allowed audience is 1-%d characters", maxAudienceLen)
		}
	}
	for k, v := range p.AttributeMapping {
		if k != "google.subject" && !strings.HasPrefix(k, "attribute.") || !strings.HasPrefix(v, "assertion.") {
			return fmt.Errorf("gcptest: attribute mapping %s=%s is not supported", k, v)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.providers[p.Name] = p
	return nil
}

// stsParams reads the exchange's parameters from a form or a JSON body
// (camelCase as google.golang.org/api/sts/v1 sends them, or snake_case).
func stsParams(r *http.Request) (map[string]string, error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	out := map[string]string{}
	switch mt {
	case "application/x-www-form-urlencoded":
		if err := r.ParseForm(); err != nil {
			return nil, err
		}
		for k := range r.PostForm {
			out[k] = r.PostForm.Get(k)
		}
	case "application/json":
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, err
		}
		for k, v := range m {
			s, ok := v.(string)
			if !ok {
				if k == "options" {
					continue
				}
				return nil, fmt.Errorf("field %s is not a string", k)
			}
			out[snake(k)] = s
		}
	default:
		return nil, errors.New("unsupported content type")
	}
	return out, nil
}

// snake turns grantType into grant_type.
func snake(s string) string {
	var b strings.Builder
	for _, r := range s {
		if 'A' <= r && r <= 'Z' {
			b.WriteByte('_')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// serveSTS answers a token exchange.
func (h *Handler) serveSTS(w http.ResponseWriter, r *http.Request) {
	call := Call{Endpoint: STS, Time: h.now(), Method: r.Method, Path: r.URL.Path, Host: r.Host}
	defer h.calls.Record(&call)
	var shape oauthErrors
	refuse := func(code, msg string) { shape.refuse(w, &call, code, msg) }
	if !h.begin(w, r, &call, shape) {
		return
	}

	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	p, err := stsParams(r)
	if err != nil {
		refuse("invalid_request", "The request body could not be parsed: "+err.Error())
		return
	}
	call.GrantType, call.Audience = p["grant_type"], p["audience"]
	call.SubjectTokenType, call.RequestedTokenType = p["subject_token_type"], p["requested_token_type"]
	call.Scopes = strings.Fields(p["scope"])
	switch {
	case call.GrantType != TokenExchangeGrant:
		refuse("unsupported_grant_type", "Invalid value for \"grant_type\".")
		return
	case call.RequestedTokenType != AccessTokenType:
		refuse("invalid_request", "Invalid value for \"requested_token_type\".")
		return
	case call.SubjectTokenType != JWTTokenType && call.SubjectTokenType != IDTokenType:
		refuse("invalid_request", "Invalid value for \"subject_token_type\".")
		return
	case p["subject_token"] == "":
		refuse("invalid_request", "Missing required parameter: \"subject_token\".")
		return
	}
	h.mu.Lock()
	prov, ok := h.providers[call.Audience]
	h.mu.Unlock()
	if !ok {
		refuse("invalid_target", "The target service indicated by the \"audience\" parameters is invalid. This might either be because the pool or provider is disabled or deleted or because it doesn't exist.")
		return
	}

	claims, msg := h.verifySubjectToken(r.Context(), prov, p["subject_token"], &call)
	if msg != "" {
		refuse("invalid_grant", msg)
		return
	}
	subject, attrs, code, msg := mapAttributes(prov, claims)
	if msg != "" {
		refuse(code, msg)
		return
	}
	call.Principal, call.Attributes = prov.Principal(subject), attrs
	if code := h.refusal(STS); code != "" {
		refuse(code, "The exchange for "+call.Principal+" was refused.")
		return
	}
	expiry := h.now().Add(TokenTTL)
	access := h.issue("gcptest-federated-", Token{
		Via: STS, Principal: call.Principal, Attributes: attrs, Pool: prov.Pool(),
		Scopes: call.Scopes, Expiry: expiry,
	})
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token":      access,
		"issued_token_type": AccessTokenType,
		"token_type":        "Bearer",
		"expires_in":        int(TokenTTL / time.Second),
	})
	call.Status, call.IssuedExpiry = http.StatusOK, expiry
}

// verifySubjectToken checks an OIDC JWT as Google does for prov; it returns
// the claims, or the invalid_grant message.
func (h *Handler) verifySubjectToken(ctx context.Context, prov WorkloadIdentityProvider, token string, call *Call) (map[string]any, string) {
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil || len(jws.Signatures) != 1 {
		return nil, "Unable to parse the ID Token: it must be a JWT signed with RS256 or ES256."
	}
	kid := jws.Signatures[0].Header.KeyID
	if kid == "" {
		return nil, "The ID Token's header has no kid."
	}
	var unverified struct {
		Iss string `json:"iss"`
	}
	if json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &unverified) != nil {
		return nil, "Unable to parse the ID Token's claims."
	}
	if unverified.Iss != prov.IssuerURI {
		return nil, fmt.Sprintf("The issuer in ID Token %s does not match the expected ones: %s.", unverified.Iss, prov.IssuerURI)
	}
	keys, err := h.fetchJWKS(ctx, prov.IssuerURI)
	if err != nil {
		return nil, "Unable to fetch the issuer's keys: " + err.Error()
	}
	found := keys.Key(kid)
	if len(found) == 0 {
		return nil, "The ID Token's kid " + kid + " is not among the issuer's keys."
	}
	var payload []byte
	for _, k := range found {
		if payload, err = jws.Verify(k); err == nil {
			break
		}
	}
	if err != nil {
		return nil, "Invalid ID Token signature."
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var claims map[string]any
	if dec.Decode(&claims) != nil {
		return nil, "Unable to parse the ID Token's claims."
	}
	call.SubjectClaims = claims

	if !audienceOK(prov, claims["aud"]) {
		return nil, fmt.Sprintf("The audience in ID Token %v does not match the expected audience.", claims["aud"])
	}
	now := h.now()
	iat, okIat := unix(claims["iat"])
	exp, okExp := unix(claims["exp"])
	switch {
	case !okIat:
		return nil, "The ID Token has no valid iat."
	case !okExp:
		return nil, "The ID Token has no valid exp."
	case iat.After(now.Add(clockSkew)):
		return nil, "The ID Token's iat is in the future."
	case !exp.After(now):
		return nil, "The ID Token has expired."
	case exp.Sub(iat) >= maxSubjectTokenLife:
		return nil, "The ID Token's exp must be less than 48 hours after its iat."
	}
	if nbf, ok := unix(claims["nbf"]); claims["nbf"] != nil && (!ok || nbf.After(now.Add(clockSkew))) {
		return nil, "The ID Token is not valid yet."
	}
	return claims, ""
}

func audienceOK(prov WorkloadIdentityProvider, aud any) bool {
	allowed := prov.AllowedAudiences
	if len(allowed) == 0 {
		allowed = []string{prov.Name, "https:" + prov.Name}
	}
	var auds []string
	switch a := aud.(type) {
	case string:
		auds = []string{a}
	case []any:
		for _, v := range a {
			if s, ok := v.(string); ok {
				auds = append(auds, s)
			}
		}
	}
	for _, a := range auds {
		for _, ok := range allowed {
			if a == ok {
				return true
			}
		}
	}
	return false
}

func unix(v any) (time.Time, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, false
	}
	f, err := n.Float64()
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0), true
}

// mapAttributes applies the provider's attribute mapping; on failure it
// returns STS's error code and message.
func mapAttributes(prov WorkloadIdentityProvider, claims map[string]any) (subject string, attrs map[string]string, code, msg string) {
	mapping := prov.AttributeMapping
	if mapping == nil {
		mapping = map[string]string{"google.subject": "assertion.sub"}
	}
	attrs = map[string]string{}
	for k, expr := range mapping {
		v, ok := claims[strings.TrimPrefix(expr, "assertion.")]
		if !ok {
			continue
		}
		var s string
		switch v := v.(type) {
		case string:
			s = v
		case json.Number:
			s = v.String()
		case bool:
			s = fmt.Sprint(v)
		default:
			return "", nil, "invalid_grant", "The attribute mapping of " + k + " does not yield a string."
		}
		if k == "google.subject" {
			subject = s
		} else {
			attrs[strings.TrimPrefix(k, "attribute.")] = s
		}
	}
	switch {
	case subject == "":
		return "", nil, "invalid_grant", "The mapped attribute google.subject is empty."
	case len(subject) > maxGoogleSubjectSize:
		// Google answers this one invalid_request.
		return "", nil, "invalid_request", fmt.Sprintf("The size of mapped attribute google.subject exceeds the %d bytes limit. "+
			"Either modify your attribute mapping or the incoming assertion to produce a mapped attribute that is less than %d bytes.",
			maxGoogleSubjectSize, maxGoogleSubjectSize)
	}
	return subject, attrs, "", ""
}

// fetchJWKS reads the issuer's discovery document and then its JWKS.
func (h *Handler) fetchJWKS(ctx context.Context, issuer string) (jose.JSONWebKeySet, error) {
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := h.getJSON(ctx, strings.TrimSuffix(issuer, "/")+"/.well-known/openid-configuration", &doc); err != nil {
		return jose.JSONWebKeySet{}, err
	}
	if doc.Issuer != issuer {
		return jose.JSONWebKeySet{}, errors.New("the discovery document names another issuer")
	}
	if doc.JWKSURI == "" {
		return jose.JSONWebKeySet{}, errors.New("the discovery document has no jwks_uri")
	}
	var keys jose.JSONWebKeySet
	err := h.getJSON(ctx, doc.JWKSURI, &keys)
	return keys, err
}

func (h *Handler) getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(v)
}
