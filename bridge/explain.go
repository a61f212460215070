package bridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/identity"
	"github.com/oidc-bridge/oidc-bridge/mapping"
)

func issuerPolicy(is mapping.Issuer) api.ExplainIssuerPolicy {
	id := mapping.IdentityIssuer(is)
	age, life := id.Limits()
	p := api.ExplainIssuerPolicy{Kind: is.Kind, AudienceHint: identity.PlatformOf(identity.Kind(is.Kind)).Issuer().AudienceHint,
		ReplayScope: is.ReplayScope, MaxTokenAgeSeconds: int(age / time.Second),
		MaxTokenLifetimeSeconds: int(life / time.Second), KeySource: id.KeySource()}
	if len(is.JWKS) > 0 {
		// Validated when written; a set that no longer parses shows no keys.
		keys, _ := identity.ParseStaticJWKS(is.JWKS)
		for _, k := range keys {
			p.Keys = append(p.Keys, api.ExplainKey{KID: k.KID, KTY: k.KTY, Alg: k.Alg})
		}
	}
	return p
}

// explainTimeout bounds one explanation (a token's verification may fetch
// the issuer's keys).
const explainTimeout = 30 * time.Second

// explain is POST /v1/admin/explain: what every mapping of the token's issuer
// says about the token, and what the exchange would decide. It verifies a
// token as the exchange does but never mints, never writes the ledger, and
// never logs the token or the claims.
func (s *Server) explain(c echo.Context) error {
	var req api.ExplainRequest
	if err := decodeStrict(c, &req); err != nil {
		return err
	}
	res, err := s.Explain(c.Request().Context(), req)
	if err != nil {
		return err
	}
	s.log.Info("explain", "request_id", c.Response().Header().Get(echo.HeaderXRequestID),
		"issuer", res.Issuer, "verified", res.Verified, "outcome", res.Decision.Outcome, "mapping", res.Decision.Mapping)
	return c.JSON(http.StatusOK, res)
}

// Explain is the explainer of POST /v1/admin/explain for other callers
// (the console): what every mapping of the token's issuer says about the
// token or bare claims of req, and what the exchange would decide. It
// never mints, never writes, never logs the token or the claims. Its
// error is answered as the admin API answers it: ErrorBody reads it.
func (s *Server) Explain(ctx context.Context, req api.ExplainRequest) (api.ExplainResponse, error) {
	if err := checkExplainRequest(&req); err != nil {
		return api.ExplainResponse{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, explainTimeout)
	defer cancel()
	claims, err := s.explainClaims(ctx, &req)
	if err != nil {
		return api.ExplainResponse{}, classified(err)
	}
	return s.explainFor(ctx, claims, req.Token != "", &req)
}

// ExplainClaims explains claims the caller already holds (the console's
// reconstruction of a recorded attempt from the ledger's columns) against
// every mapping of their issuer (claims.IssuerName), or the mapping and
// provider req names; req's token and claims are ignored. Verified is
// false.
func (s *Server) ExplainClaims(ctx context.Context, claims *identity.Claims, req api.ExplainRequest) (api.ExplainResponse, error) {
	req.Token, req.Claims, req.Issuer = "", nil, ""
	if err := checkExplainRequest(&api.ExplainRequest{Issuer: claims.IssuerName, Claims: []byte("{}"),
		Mapping: req.Mapping, Provider: req.Provider}); err != nil {
		return api.ExplainResponse{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, explainTimeout)
	defer cancel()
	return s.explainFor(ctx, claims, false, &req)
}

func (s *Server) explainFor(ctx context.Context, claims *identity.Claims, verified bool, req *api.ExplainRequest) (api.ExplainResponse, error) {
	is, err := s.opts.Store.GetIssuer(ctx, claims.IssuerName)
	if err != nil {
		return api.ExplainResponse{}, classified(err)
	}
	ms, err := s.explainMappings(ctx, claims.IssuerName, req)
	if err != nil {
		return api.ExplainResponse{}, classified(err)
	}
	res := api.ExplainResponse{
		Issuer:       claims.IssuerName,
		IssuerPolicy: issuerPolicy(is),
		Claims:       summarize(claims),
		Verified:     verified,
		Mappings:     make([]api.Explanation, len(ms)),
	}
	for i := range ms {
		res.Mappings[i] = apiExplanation(mapping.Explain(&ms[i], claims))
	}
	res.Decision = decide(ms, res.Mappings, claims.IssuerName, req)
	return res, nil
}

func checkExplainRequest(req *api.ExplainRequest) error {
	hasClaims := len(req.Claims) > 0 && !bytes.Equal(bytes.TrimSpace(req.Claims), []byte("null"))
	switch {
	case req.Token != "" && hasClaims:
		return invalid("claims", "claims: send either a token or claims, not both")
	case req.Token == "" && !hasClaims:
		return invalid("token", `token: send a token ({"token": "<JWT>"}) or bare claims ({"issuer": "<name>", "claims": {...}})`)
	case req.Token != "" && req.Issuer != "":
		return invalid("issuer", "issuer: only with claims; a token names its own issuer")
	case hasClaims && req.Issuer == "":
		return invalid("issuer", "issuer: required with claims: the name of a registered issuer")
	case hasClaims && !mapping.ValidName(req.Issuer):
		return invalid("issuer", "issuer: not a valid issuer name")
	case req.Mapping != "" && !mapping.ValidName(req.Mapping):
		return invalid("mapping", "mapping: not a valid mapping name")
	}
	if req.Provider != "" && !mapping.KnownProvider(req.Provider) {
		return invalid("provider", "provider: must be one of "+strings.Join(mapping.Providers().Names(), ", "))
	}
	if !hasClaims {
		req.Claims = nil
	}
	return nil
}

// explainClaims verifies the token, or reads the bare claims as the named
// issuer's tokens are read.
func (s *Server) explainClaims(ctx context.Context, req *api.ExplainRequest) (*identity.Claims, error) {
	if req.Token != "" {
		if s.opts.Verifier == nil {
			return nil, unavailableBecause("this server verifies no tokens; explain bare claims instead")
		}
		// Errors answer as the exchange's: 401 invalid_token or
		// untrusted_issuer, 503 unavailable.
		return s.opts.Verifier.Verify(ctx, req.Token)
	}
	is, err := s.opts.Store.GetIssuer(ctx, req.Issuer)
	if errors.Is(err, mapping.ErrNotFound) {
		return nil, invalid("issuer", fmt.Sprintf("issuer: no issuer %q is registered", req.Issuer))
	}
	if err != nil {
		return nil, err
	}
	if !is.Enabled {
		return nil, invalid("issuer", fmt.Sprintf("issuer: %q is disabled: its tokens are refused before any mapping is considered", is.Name))
	}
	claims, err := identity.NormalizeClaims(mapping.IdentityIssuer(is), req.Claims)
	if err != nil {
		msg := err.Error()
		var ie *identity.Error
		if errors.As(err, &ie) && ie.Err != nil {
			msg = ie.Reason + ": " + ie.Err.Error()
		}
		return nil, invalid("claims", "claims: a token with these claims would be refused ("+msg+")")
	}
	return claims, nil
}

// explainMappings returns the mappings to explain: every mapping of the
// issuer (of the provider, if given), or the named one wherever it belongs.
func (s *Server) explainMappings(ctx context.Context, issuer string, req *api.ExplainRequest) ([]mapping.Mapping, error) {
	if req.Mapping != "" {
		m, err := s.opts.Store.GetMapping(ctx, req.Mapping)
		if errors.Is(err, mapping.ErrNotFound) {
			return nil, invalid("mapping", fmt.Sprintf("mapping: no mapping %q exists", req.Mapping))
		}
		if err != nil {
			return nil, err
		}
		return []mapping.Mapping{m}, nil
	}
	ms, err := s.opts.Store.ListMappings(ctx, mapping.Filter{Issuer: issuer, Provider: req.Provider})
	if err != nil {
		return nil, err
	}
	return ms, nil
}

// decide applies the exchange's selection rule (selectMapping) to the
// explanations: only enabled enforce-mode mappings of the issuer (and
// provider) can issue; a named one must admit the token, otherwise exactly
// one must.
func decide(ms []mapping.Mapping, es []api.Explanation, issuer string, req *api.ExplainRequest) api.ExplainDecision {
	selectable := func(i int) bool {
		return ms[i].Enabled && ms[i].Issuer == issuer && (req.Provider == "" || ms[i].Provider == req.Provider)
	}
	if req.Mapping != "" {
		e := es[0]
		switch {
		case !selectable(0):
			return api.ExplainDecision{Outcome: api.OutcomeNoMatch,
				Message: fmt.Sprintf("no enabled mapping %q of this token's issuer%s", req.Mapping, providerNote(req.Provider))}
		case ms[0].Mode == mapping.ModeAudit:
			return api.ExplainDecision{Outcome: api.OutcomeNoMatch,
				Message: fmt.Sprintf("mapping %q is in audit mode: it records what it would decide but issues nothing", req.Mapping)}
		case !e.Admitted:
			return api.ExplainDecision{Outcome: api.OutcomeNoMatch,
				Message: fmt.Sprintf("mapping %q does not admit this token (%s)", req.Mapping, e.Reason)}
		case e.TargetError != "":
			return templateRefusal(req.Mapping, e.TargetError)
		}
		return api.ExplainDecision{Outcome: api.OutcomeWouldIssue, Mapping: req.Mapping,
			Message: fmt.Sprintf("mapping %q admits this token", req.Mapping)}
	}
	var admitted []string
	for i := range ms {
		if selectable(i) && ms[i].Mode != mapping.ModeAudit && es[i].Admitted {
			admitted = append(admitted, ms[i].Name)
		}
	}
	switch len(admitted) {
	case 0:
		return api.ExplainDecision{Outcome: api.OutcomeNoMatch,
			Message: fmt.Sprintf("no enabled mapping of issuer %q%s admits this token", issuer, providerNote(req.Provider))}
	case 1:
		if i := slices.IndexFunc(es, func(e api.Explanation) bool { return e.Mapping == admitted[0] }); i >= 0 && es[i].TargetError != "" {
			return templateRefusal(admitted[0], es[i].TargetError)
		}
		return api.ExplainDecision{Outcome: api.OutcomeWouldIssue, Mapping: admitted[0],
			Message: fmt.Sprintf("mapping %q admits this token and is the only one", admitted[0])}
	}
	return api.ExplainDecision{Outcome: api.OutcomeAmbiguous, Candidates: admitted,
		Message: fmt.Sprintf("several mappings admit this token: %s; the exchange needs the request's \"mapping\" field", strings.Join(admitted, ", "))}
}

// templateRefusal is the exchange's refusal of an admitting mapping whose
// target template the token cannot fill (reason target_template).
func templateRefusal(name, why string) api.ExplainDecision {
	return api.ExplainDecision{Outcome: api.OutcomeNoMatch,
		Message: fmt.Sprintf("mapping %q admits this token but cannot serve it: %s", name, why)}
}

func summarize(c *identity.Claims) api.ExplainClaims {
	return api.ExplainClaims{
		Issuer: c.Issuer, Subject: c.Subject,
		Repository: c.Repository, RepositoryID: c.RepositoryID,
		RepositoryOwner: c.RepositoryOwner, RepositoryOwnerID: c.RepositoryOwnerID, JobProjectPath: c.JobProjectPath,
		Ref: c.Ref, RefType: c.RefType, SHA: c.SHA,
		Environment: c.Environment, EventName: c.EventName, WorkflowRef: c.WorkflowRef,
		Actor: c.Actor, RunID: c.RunID, RunAttempt: c.RunAttempt, JobID: c.JobID, JTI: c.JTI,
		IssuedAt: c.IssuedAt.UTC(), ExpiresAt: c.Expiry.UTC(),
	}
}
