package entratest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"

	"github.com/oidc-bridge/oidc-bridge/test/faulttest"
)

// openIDScopes are the scopes MSAL adds to every request; Entra ignores them
// in the client credentials flow.
var openIDScopes = map[string]bool{"openid": true, "profile": true, "offline_access": true}

// token answers POST /{tenant}/oauth2/v2.0/token.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	call := Call{Time: s.now(), Method: r.Method, Path: r.URL.Path, Host: r.Host, Endpoint: EndpointToken,
		Tenant: r.PathValue("tenant"), CorrelationID: r.Header.Get("client-request-id")}
	defer s.calls.Record(&call)
	fail := func(e entraError) { s.writeError(w, r, &call, e) }

	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		fail(refusal(900144, "The request body must contain the following parameter: 'grant_type'."))
		return
	}
	form := r.PostForm
	call.GrantType, call.ClientID = form.Get("grant_type"), form.Get("client_id")
	call.ClientAssertionType, call.Scope = form.Get("client_assertion_type"), form.Get("scope")
	assertion := form.Get("client_assertion")
	if tok, err := jose.ParseSignedCompact(assertion, []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.PS256}); err == nil {
		var claims map[string]any
		if json.Unmarshal(tok.UnsafePayloadWithoutVerification(), &claims) == nil {
			call.Assertion = claims
		}
		call.AssertionKeyID = tok.Signatures[0].Header.KeyID
	}

	s.mu.Lock()
	refuse := s.refuse
	s.mu.Unlock()
	hang, forced, drop := s.tokenFaults.Next()
	if drop {
		call.Status, call.Error = 0, "dropped"
		s.calls.RecordEarly(&call)
		faulttest.DropConnection(w)
		return
	}
	if hang {
		s.wait(r)
		fail(failure(http.StatusServiceUnavailable))
		return
	}
	if forced != 0 {
		fail(failure(forced))
		return
	}

	// The request's shape, in the order Entra reports missing parts.
	for _, p := range []string{"grant_type", "client_id", "scope"} {
		if form.Get(p) == "" {
			fail(refusal(900144, "The request body must contain the following parameter: '%s'.", p))
			return
		}
	}
	if call.GrantType != GrantClientCredentials {
		fail(refusal(70003, ""))
		return
	}
	if assertion == "" || call.ClientAssertionType != AssertionType {
		fail(refusal(7000218, ""))
		return
	}
	resource, ok := resourceOf(call.Scope)
	if !ok {
		fail(refusal(1002012, "The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", call.Scope))
		return
	}
	if refuse != 0 {
		fail(refusal(refuse, ""))
		return
	}

	tenant, client := strings.ToLower(call.Tenant), strings.ToLower(call.ClientID)
	s.mu.Lock()
	knownTenant := s.tenants[tenant]
	fics, knownApp := s.apps[appKey{tenant, client}]
	fics = slices.Clone(fics)
	s.mu.Unlock()
	if !knownTenant {
		fail(refusal(90002, "Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", call.Tenant))
		return
	}
	if !knownApp {
		fail(refusal(700016, "Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.", call.ClientID, call.Tenant))
		return
	}
	if e, ok := s.verify(r.Context(), assertion, fics); !ok {
		fail(e)
		return
	}
	s.issue(w, &call, tenant, resource)
}

// resourceOf returns the one resource of a client credentials scope list:
// exactly one <resource>/.default besides the OpenID scopes.
func resourceOf(scope string) (string, bool) {
	var resources []string
	for sc := range strings.FieldsSeq(scope) {
		if openIDScopes[sc] {
			continue
		}
		r, ok := strings.CutSuffix(sc, "/.default")
		if !ok || r == "" {
			return "", false
		}
		resources = append(resources, r)
	}
	if len(resources) != 1 {
		return "", false
	}
	return resources[0], true
}

// verify checks a client assertion against the application's federated
// identity credentials as Entra does.
func (s *Server) verify(ctx context.Context, assertion string, fics []FederatedCredential) (entraError, bool) {
	tok, err := jose.ParseSignedCompact(assertion, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil || len(tok.Signatures) != 1 {
		return refusal(50027, ""), false
	}
	var c struct {
		Iss string          `json:"iss"`
		Sub string          `json:"sub"`
		Aud json.RawMessage `json:"aud"`
		Exp *json.Number    `json:"exp"`
		Nbf *json.Number    `json:"nbf"`
		Iat *json.Number    `json:"iat"`
	}
	if err := json.Unmarshal(tok.UnsafePayloadWithoutVerification(), &c); err != nil || c.Iss == "" || c.Sub == "" || c.Exp == nil {
		return refusal(50027, ""), false
	}
	auds, ok := audiences(c.Aud)
	if !ok {
		return refusal(50027, ""), false
	}

	var byIssuer []FederatedCredential
	for _, fc := range fics {
		if fc.Issuer == c.Iss {
			byIssuer = append(byIssuer, fc)
		}
	}
	if len(byIssuer) == 0 {
		return refusal(70021, "No matching federated identity record found for presented assertion. Assertion Issuer: '%s'. Assertion Subject: '%s'. Assertion Audience: '%s'. https://learn.microsoft.com/entra/workload-id/workload-identity-federation",
			c.Iss, c.Sub, strings.Join(auds, ",")), false
	}

	keys, err := s.issuerKeys(ctx, c.Iss, tok.Signatures[0].Header.KeyID)
	if err != nil {
		return refusal(50166, ""), false
	}
	if _, err := tok.Verify(keys); err != nil {
		return refusal(700027, ""), false
	}

	now := s.now()
	exp, err1 := c.Exp.Int64()
	nbf := int64(0)
	var err2 error
	if c.Nbf != nil {
		nbf, err2 = c.Nbf.Int64()
	}
	if err1 != nil || err2 != nil {
		return refusal(50027, ""), false
	}
	if now.After(time.Unix(exp, 0).Add(clockSkew)) || now.Add(clockSkew).Before(time.Unix(nbf, 0)) {
		return refusal(700024, "Client assertion is not within its valid time range. Current time: %s, assertion valid from %s, expiry time of assertion %s.",
			now.UTC().Format(time.RFC3339), time.Unix(nbf, 0).UTC().Format(time.RFC3339), time.Unix(exp, 0).UTC().Format(time.RFC3339)), false
	}
	if s.maxAssertionLife > 0 {
		start := nbf
		if c.Nbf == nil && c.Iat != nil {
			start, _ = c.Iat.Int64()
		}
		if start == 0 || time.Unix(exp, 0).Sub(time.Unix(start, 0)) > s.maxAssertionLife {
			// The fake's own rule (WithMaxAssertionLifetime), in Entra's shape.
			return refusal(700024, "Client assertion is not within its valid time range: it is valid from %s to %s, longer than the %s this test allows.",
				time.Unix(start, 0).UTC().Format(time.RFC3339), time.Unix(exp, 0).UTC().Format(time.RFC3339), s.maxAssertionLife), false
		}
	}

	var byAudience []FederatedCredential
	for _, fc := range byIssuer {
		if slices.ContainsFunc(fc.Audiences, func(a string) bool { return slices.Contains(auds, a) }) {
			byAudience = append(byAudience, fc)
		}
	}
	if len(byAudience) == 0 {
		return refusal(700212, "No matching federated identity record found for presented assertion audience '%s'. Please note that the matching is done using a case-sensitive comparison. Check your federated identity credential Subject, Audience and Issuer against the presented assertion.",
			strings.Join(auds, ",")), false
	}
	if !slices.ContainsFunc(byAudience, func(fc FederatedCredential) bool { return fc.Subject == c.Sub }) {
		return refusal(700213, "No matching federated identity record found for presented assertion subject '%s'. Please note that the matching is done using a case-sensitive comparison. Check your federated identity credential Subject, Audience and Issuer against the presented assertion.",
			c.Sub), false
	}
	return entraError{}, true
}

// audiences reads aud, a string or an array of strings.
func audiences(raw json.RawMessage) ([]string, bool) {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, one != ""
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil && len(many) > 0 {
		return many, true
	}
	return nil, false
}

// issuerKeys returns iss's published keys, from the cache unless kid is not
// among them.
func (s *Server) issuerKeys(ctx context.Context, iss, kid string) (*jose.JSONWebKeySet, error) {
	s.keysMu.Lock()
	set, ok := s.keys[iss]
	s.keysMu.Unlock()
	if ok && (kid == "" || len(set.Key(kid)) > 0) {
		return &set, nil
	}
	var doc struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := s.getJSON(ctx, strings.TrimSuffix(iss, "/")+"/.well-known/openid-configuration", &doc); err != nil {
		return nil, err
	}
	if doc.JWKSURI == "" {
		return nil, errors.New("entratest: discovery document without jwks_uri")
	}
	set = jose.JSONWebKeySet{}
	if err := s.getJSON(ctx, doc.JWKSURI, &set); err != nil {
		return nil, err
	}
	s.keysMu.Lock()
	s.keys[iss] = set
	s.keysMu.Unlock()
	return &set, nil
}

func (s *Server) getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := s.issuerClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("entratest: GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(v)
}

// issue answers with a fresh access token for resource.
func (s *Server) issue(w http.ResponseWriter, call *Call, tenant, resource string) {
	now := s.now()
	tid := tenantID(tenant)
	oid := uuid.NewSHA1(uuid.NameSpaceURL, []byte(tid+"/"+strings.ToLower(call.ClientID))).String()
	claims := map[string]any{
		"aud":   resource,
		"iss":   s.URL() + "/" + tid + "/v2.0",
		"iat":   now.Unix(),
		"nbf":   now.Unix(),
		"exp":   now.Add(s.lifetime).Unix(),
		"azp":   call.ClientID,
		"appid": call.ClientID,
		"idp":   s.URL() + "/" + tid + "/v2.0",
		"oid":   oid,
		"sub":   oid,
		"tid":   tid,
		"uti":   uuid.NewString(),
		"ver":   "2.0",
	}
	payload, _ := json.Marshal(claims)
	jws, err := s.signer.Sign(payload)
	var token string
	if err == nil {
		token, err = jws.CompactSerialize()
	}
	if err != nil {
		s.writeError(w, &http.Request{Header: http.Header{}}, call, failure(http.StatusInternalServerError))
		return
	}
	secs := int64(s.lifetime / time.Second)
	call.Status, call.AccessToken = http.StatusOK, token
	writeJSON(w, http.StatusOK, map[string]any{
		"token_type":     "Bearer",
		"expires_in":     secs,
		"ext_expires_in": secs,
		"access_token":   token,
	})
}
