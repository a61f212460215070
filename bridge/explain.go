package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/identity"
	"github.com/oidc-bridge/oidc-bridge/mapping"
)

// ExplainRequest is the body of POST /v1/admin/explain: exactly one of Token
// (verified as the exchange verifies it) and Claims (a bare claims object,
// with Issuer naming its registered issuer).
type ExplainRequest struct {
	// Token is a pipeline OIDC token, the bare JWT.
	Token string `json:"token,omitempty"`
	// Issuer is the registered issuer's name, with Claims only.
	Issuer string `json:"issuer,omitempty"`
	// Claims is a token's payload: read as the issuer's tokens are, but
	// neither signed nor checked for time or audience.
	Claims json.RawMessage `json:"claims,omitempty"`
	// Mapping explains only that mapping, and the decision is the
	// exchange's for a request naming it.
	Mapping string `json:"mapping,omitempty"`
	// Provider narrows the mappings as the exchange's provider does.
	Provider string `json:"provider,omitempty"`
}

// ExplainResponse is the 200 body of POST /v1/admin/explain.
type ExplainResponse struct {
	// Issuer is the registered issuer's name.
	Issuer string `json:"issuer"`
	// IssuerPolicy is what the issuer imposes on every exchange of its
	// tokens, whatever the mapping.
	IssuerPolicy ExplainIssuerPolicy `json:"issuer_policy"`
	Claims       ExplainClaims       `json:"claims"`
	// Verified is true when a token was given and verified; false for bare
	// claims.
	Verified bool `json:"verified"`
	// Mappings explains every mapping of the issuer (enabled or not, in
	// either mode; of the provider, if given), by name; or only the named
	// one.
	Mappings []mapping.Explanation `json:"mappings"`
	Decision ExplainDecision       `json:"decision"`
}

// ExplainIssuerPolicy is the issuer's replay scope and its effective token
// age and lifetime limits (its own, or its kind's defaults).
type ExplainIssuerPolicy struct {
	// ReplayScope is token (a token is exchanged once in all) or
	// token_mapping (once per mapping).
	ReplayScope             string `json:"replay_scope"`
	MaxTokenAgeSeconds      int    `json:"max_token_age_seconds"`
	MaxTokenLifetimeSeconds int    `json:"max_token_lifetime_seconds"`
}

func issuerPolicy(is mapping.Issuer) ExplainIssuerPolicy {
	age, life := mapping.IdentityIssuer(is).Limits()
	return ExplainIssuerPolicy{ReplayScope: is.ReplayScope, MaxTokenAgeSeconds: int(age / time.Second),
		MaxTokenLifetimeSeconds: int(life / time.Second)}
}

// ExplainClaims is a readable summary of the normalised claims: the values
// the mappings' conditions are held against, and the job's identifiers.
type ExplainClaims struct {
	Issuer            string    `json:"iss"`
	Subject           string    `json:"sub,omitempty"`
	Repository        string    `json:"repository,omitempty"`
	RepositoryID      string    `json:"repository_id,omitempty"`
	RepositoryOwner   string    `json:"repository_owner,omitempty"`
	RepositoryOwnerID string    `json:"repository_owner_id,omitempty"`
	JobProjectPath    string    `json:"job_project_path,omitempty"`
	Ref               string    `json:"ref,omitempty"`
	RefType           string    `json:"ref_type,omitempty"`
	SHA               string    `json:"sha,omitempty"`
	Environment       string    `json:"environment,omitempty"`
	EventName         string    `json:"event_name,omitempty"`
	WorkflowRef       string    `json:"workflow_ref,omitempty"`
	Actor             string    `json:"actor,omitempty"`
	RunID             string    `json:"run_id,omitempty"`
	RunAttempt        string    `json:"run_attempt,omitempty"`
	JobID             string    `json:"job_id,omitempty"`
	JTI               string    `json:"jti,omitempty"`
	IssuedAt          time.Time `json:"issued_at,omitzero"`
	ExpiresAt         time.Time `json:"expires_at,omitzero"`
}

// Outcomes of an explanation's decision.
const (
	OutcomeWouldIssue = "would_issue"
	OutcomeNoMatch    = api.CodeNoMatchingMapping
	OutcomeAmbiguous  = api.CodeAmbiguousMapping
)

// ExplainDecision is what the exchange's selection would decide for this
// token and request: the mapping it would use, or the error it would answer.
// Only the selection is explained: the request's duration, quotas, replay of
// the token and the cloud are not consulted.
type ExplainDecision struct {
	// Outcome is would_issue, no_matching_mapping or ambiguous_mapping.
	Outcome string `json:"outcome"`
	// Mapping is the mapping that would be used, for would_issue.
	Mapping string `json:"mapping,omitempty"`
	// Candidates are the mappings that admit the token, for
	// ambiguous_mapping.
	Candidates []string `json:"candidates,omitempty"`
	Message    string   `json:"message"`
}

// explainTimeout bounds one explanation (a token's verification may fetch
// the issuer's keys).
const explainTimeout = 30 * time.Second

// explain is POST /v1/admin/explain: what every mapping of the token's issuer
// says about the token, and what the exchange would decide. It verifies a
// token as the exchange does but never mints, never writes the ledger, and
// never logs the token or the claims.
func (s *Server) explain(c echo.Context) error {
	var req ExplainRequest
	if err := decodeStrict(c, &req); err != nil {
		return err
	}
	if err := checkExplainRequest(&req); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), explainTimeout)
	defer cancel()

	claims, err := s.explainClaims(ctx, &req)
	if err != nil {
		return err
	}
	is, err := s.opts.Store.GetIssuer(ctx, claims.IssuerName)
	if err != nil {
		return err
	}
	ms, err := s.explainMappings(ctx, claims.IssuerName, &req)
	if err != nil {
		return err
	}
	res := ExplainResponse{
		Issuer:       claims.IssuerName,
		IssuerPolicy: issuerPolicy(is),
		Claims:       summarize(claims),
		Verified:     req.Token != "",
		Mappings:     make([]mapping.Explanation, len(ms)),
	}
	for i := range ms {
		res.Mappings[i] = mapping.Explain(&ms[i], claims)
	}
	res.Decision = decide(ms, res.Mappings, claims.IssuerName, &req)
	s.log.Info("explain", "request_id", c.Response().Header().Get(echo.HeaderXRequestID),
		"issuer", claims.IssuerName, "verified", res.Verified, "outcome", res.Decision.Outcome, "mapping", res.Decision.Mapping)
	return c.JSON(http.StatusOK, res)
}

func checkExplainRequest(req *ExplainRequest) error {
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
	switch req.Provider {
	case "", mapping.ProviderAWS, mapping.ProviderGCP, mapping.ProviderAzure, mapping.ProviderJWT:
	default:
		return invalid("provider", "provider: must be one of aws, gcp, azure, jwt")
	}
	if !hasClaims {
		req.Claims = nil
	}
	return nil
}

// explainClaims verifies the token, or reads the bare claims as the named
// issuer's tokens are read.
func (s *Server) explainClaims(ctx context.Context, req *ExplainRequest) (*identity.Claims, error) {
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
func (s *Server) explainMappings(ctx context.Context, issuer string, req *ExplainRequest) ([]mapping.Mapping, error) {
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
func decide(ms []mapping.Mapping, es []mapping.Explanation, issuer string, req *ExplainRequest) ExplainDecision {
	selectable := func(i int) bool {
		return ms[i].Enabled && ms[i].Issuer == issuer && (req.Provider == "" || ms[i].Provider == req.Provider)
	}
	if req.Mapping != "" {
		e := es[0]
		switch {
		case !selectable(0):
			return ExplainDecision{Outcome: OutcomeNoMatch,
				Message: fmt.Sprintf("no enabled mapping %q of this token's issuer%s", req.Mapping, providerNote(req.Provider))}
		case ms[0].Mode == mapping.ModeAudit:
			return ExplainDecision{Outcome: OutcomeNoMatch,
				Message: fmt.Sprintf("mapping %q is in audit mode: it records what it would decide but issues nothing", req.Mapping)}
		case !e.Admitted:
			return ExplainDecision{Outcome: OutcomeNoMatch,
				Message: fmt.Sprintf("mapping %q does not admit this token (%s)", req.Mapping, e.Reason)}
		}
		return ExplainDecision{Outcome: OutcomeWouldIssue, Mapping: req.Mapping,
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
		return ExplainDecision{Outcome: OutcomeNoMatch,
			Message: fmt.Sprintf("no enabled mapping of issuer %q%s admits this token", issuer, providerNote(req.Provider))}
	case 1:
		return ExplainDecision{Outcome: OutcomeWouldIssue, Mapping: admitted[0],
			Message: fmt.Sprintf("mapping %q admits this token and is the only one", admitted[0])}
	}
	return ExplainDecision{Outcome: OutcomeAmbiguous, Candidates: admitted,
		Message: fmt.Sprintf("several mappings admit this token: %s; the exchange needs the request's \"mapping\" field", strings.Join(admitted, ", "))}
}

func summarize(c *identity.Claims) ExplainClaims {
	return ExplainClaims{
		Issuer: c.Issuer, Subject: c.Subject,
		Repository: c.Repository, RepositoryID: c.RepositoryID,
		RepositoryOwner: c.RepositoryOwner, RepositoryOwnerID: c.RepositoryOwnerID, JobProjectPath: c.JobProjectPath,
		Ref: c.Ref, RefType: c.RefType, SHA: c.SHA,
		Environment: c.Environment, EventName: c.EventName, WorkflowRef: c.WorkflowRef,
		Actor: c.Actor, RunID: c.RunID, RunAttempt: c.RunAttempt, JobID: c.JobID, JTI: c.JTI,
		IssuedAt: c.IssuedAt.UTC(), ExpiresAt: c.Expiry.UTC(),
	}
}
