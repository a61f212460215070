package bridge

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/mapping"
	"github.com/oidc-bridge/oidc-bridge/providers"
	"github.com/oidc-bridge/oidc-bridge/providers/aws"
	"github.com/oidc-bridge/oidc-bridge/providers/gcp"
	"github.com/oidc-bridge/oidc-bridge/providers/jwt"
)

// RFC 8693 identifiers.
const (
	grantTokenExchange   = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeJWT         = "urn:ietf:params:oauth:token-type:jwt"
	tokenTypeIDToken     = "urn:ietf:params:oauth:token-type:id_token"
	tokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
)

// tokenExchange is POST /oauth2/token: the exchange as a standard RFC 8693
// token exchange, for mappings whose credential is one bearer token (gcp,
// azure, jwt). The pipeline token is the subject_token; audience or
// resource names the mapping. It runs the same verify → select → reserve →
// mint → record flow as /v1/exchange and answers in OAuth's shapes
// (RFC 6749 §5.1/§5.2, RFC 8693 §2.2).
func (s *Server) tokenExchange(c echo.Context) error {
	form, err := readForm(c)
	if err != nil {
		return s.badTokenRequest(c, "", "invalid_request", err.Error())
	}
	switch gt := form.Get("grant_type"); gt {
	case grantTokenExchange:
	case "":
		return s.badTokenRequest(c, "grant_type", "invalid_request", "grant_type is required")
	default:
		return s.badTokenRequest(c, "grant_type", "unsupported_grant_type", "the only grant_type is "+grantTokenExchange)
	}
	raw := form.Get("subject_token")
	if raw == "" {
		return s.badTokenRequest(c, "subject_token", "invalid_request", "subject_token is required")
	}
	switch form.Get("subject_token_type") {
	case tokenTypeJWT, tokenTypeIDToken:
	default:
		return s.badTokenRequest(c, "subject_token_type", "invalid_request",
			"subject_token_type must be "+tokenTypeJWT+" or "+tokenTypeIDToken)
	}
	if form.Has("actor_token") || form.Has("actor_token_type") {
		return s.badTokenRequest(c, "actor_token", "invalid_request", "actor_token is not supported")
	}
	want := form.Get("requested_token_type")
	res, err := s.runExchange(c, raw, endpoint{
		params: func() (api.ExchangeRequest, error) { return tokenExchangeRequest(form) },
		accept: func(m *mapping.Mapping) error { return acceptBearer(want, m) },
	})
	if err != nil {
		return tokenExchangeError(c, err)
	}
	token, issuedType, err := bearerToken(res.cred.Body)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	c.Response().Header().Set("Pragma", "no-cache")
	return c.JSON(http.StatusOK, api.TokenExchangeResponse{
		AccessToken:     token,
		IssuedTokenType: issuedType,
		TokenType:       "Bearer",
		ExpiresIn:       max(int64(math.Round(time.Until(res.cred.ExpiresAt).Seconds())), 0),
		IssuanceID:      res.issuance,
		Mapping:         res.mapping.Name,
	})
}

// readForm reads an application/x-www-form-urlencoded body, refusing other
// types and repeated parameters (RFC 6749 §3.2).
func readForm(c echo.Context) (url.Values, error) {
	r := c.Request()
	if ct := r.Header.Get(echo.HeaderContentType); !strings.HasPrefix(ct, echo.MIMEApplicationForm) {
		return nil, errors.New("the request must be application/x-www-form-urlencoded")
	}
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errors.New("the request body is too large")
		}
		return nil, errors.New("malformed form body")
	}
	for k, v := range r.PostForm {
		if len(v) > 1 {
			return nil, errors.New("parameter " + k + " is repeated")
		}
	}
	return r.PostForm, nil
}

// tokenExchangeRequest names the mapping from audience or resource (both
// given: they must agree) and reads requested_token_type and scope.
func tokenExchangeRequest(form url.Values) (api.ExchangeRequest, error) {
	aud, res := form.Get("audience"), form.Get("resource")
	name := aud
	switch {
	case aud == "" && res == "":
		return api.ExchangeRequest{}, invalid("audience", "audience (or resource) must name the mapping to use")
	case aud == "":
		name = res
	case res != "" && res != aud:
		return api.ExchangeRequest{}, invalid("resource", "audience and resource name different mappings")
	}
	switch form.Get("requested_token_type") {
	case "", tokenTypeAccessToken, tokenTypeJWT, tokenTypeIDToken:
	default:
		return api.ExchangeRequest{}, invalid("requested_token_type", "requested_token_type must be "+tokenTypeAccessToken+", "+
			tokenTypeJWT+" or "+tokenTypeIDToken)
	}
	// scope (RFC 8693 §2.1, space-delimited) narrows a gcp mapping's
	// scopes as /v1/exchange's scopes do: a subset, never another scope.
	req := api.ExchangeRequest{Mapping: name, Scopes: strings.Fields(form.Get("scope"))}
	return req, checkExchangeRequest(&req)
}

// naturalTokenType is the RFC 8693 type of the token a mapping issues: the
// jwt provider signs a JWT; a gcp target with token_format id_token gets a
// Google ID token; otherwise gcp and azure return OAuth access tokens (an
// Azure access token happens to be a JWT, but it is for Azure's APIs, not a
// token to verify, so it is not offered as one).
func naturalTokenType(m *mapping.Mapping) string {
	switch {
	case m.Provider == jwt.Name:
		return tokenTypeJWT
	case m.Provider == gcp.Name && gcp.IssuesIDToken(m.Target):
		return tokenTypeIDToken
	}
	return tokenTypeAccessToken
}

// acceptBearer refuses a mapping whose credential is not a single bearer
// token (aws), and then one that cannot produce the requested token type.
func acceptBearer(requested string, m *mapping.Mapping) error {
	if m.Provider == aws.Name {
		return because("not_a_bearer_token", noMatch(fmt.Sprintf(
			"mapping %q issues AWS credentials, which are not a single bearer token; use POST /v1/exchange", m.Name)))
	}
	return checkRequestedType(requested, m)
}

// checkRequestedType refuses a requested_token_type that mapping m cannot
// produce (RFC 8693 §2.2.2: invalid_request). Absent, the mapping's natural
// type is issued. The mapping is known only once the token has verified and
// the mapping has been selected, so this runs then, before the quota and
// replay reservation and the mint: nothing is spent, and the refusal is
// recorded as a denial.
func checkRequestedType(requested string, m *mapping.Mapping) error {
	if requested == "" {
		return nil
	}
	if natural := naturalTokenType(m); requested != natural {
		return invalid("requested_token_type", fmt.Sprintf(
			"requested_token_type: mapping %q issues %s, not %s", m.Name, natural, requested))
	}
	return nil
}

// bearerToken returns the single token of a bearer credential and its
// RFC 8693 type.
func bearerToken(body any) (string, string, error) {
	switch b := body.(type) {
	case providers.JWTCredentials:
		return b.Token, tokenTypeJWT, nil
	case providers.GCPCredentials:
		if b.IDToken != "" {
			return b.IDToken, tokenTypeIDToken, nil
		}
		return b.AccessToken, tokenTypeAccessToken, nil
	case providers.AzureCredentials:
		return b.AccessToken, tokenTypeAccessToken, nil
	}
	return "", "", errors.New("bridge: credential is not a bearer token")
}

// tokenExchangeError answers a failed exchange in RFC 6749 §5.2's shape:
// a bad or unacceptable subject token or request is invalid_request, a
// mapping that will not issue is invalid_target (RFC 8693 §2.2.2). The
// contract's own code and the issuance id ride along.
func tokenExchangeError(c echo.Context, err error) error {
	p := classify(err)
	status, code := p.oauth()
	if p.body.Error == api.CodeInternal {
		p.body.RequestID = c.Response().Header().Get(echo.HeaderXRequestID)
	}
	p.setRetryAfter(c)
	return oauthError(c, status, code, p.body.Message, p.body)
}

func oauthError(c echo.Context, status int, code, description string, detail api.Error) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	c.Response().Header().Set("Pragma", "no-cache")
	return c.JSON(status, api.OAuthError{Error: code, ErrorDescription: description,
		BridgeError: detail.Error, IssuanceID: detail.IssuanceID, RequestID: detail.RequestID})
}
