package jwt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/oidc-bridge/oidc-bridge/identity"
	"github.com/oidc-bridge/oidc-bridge/providers"
	"github.com/oidc-bridge/oidc-bridge/signing"
)

// DefaultMaxDelegationDepth is the longest act chain a token may carry,
// its own act included, unless Config says otherwise.
const DefaultMaxDelegationDepth = 3

// TokenType is the token_type of the credentials (RFC 8693 §2.2.1).
const TokenType = "Bearer"

// Limits of a token's lifetime (Spec.DurationBounds): a day is the most a
// pipeline credential should live.
const (
	minDuration = 60 * time.Second
	maxDuration = 24 * time.Hour
)

// Config configures the provider.
type Config struct {
	// Signer signs the tokens. Nil: every mint fails with ErrUnavailable,
	// code SignerUnavailable.
	Signer signing.Signer
	// MaxDelegationDepth bounds the act chain of a token: 1 admits only
	// pipeline tokens without act, 3 (the default, for values below 1) a
	// pipeline token that is itself a bridge token of a bridge token.
	MaxDelegationDepth int
	// Logger receives refusals and, at debug level, issued tokens' ids.
	// Never tokens. Nil discards.
	Logger *slog.Logger
}

// Provider signs JWTs for internal audiences. It is safe for concurrent
// use.
type Provider struct {
	signer   signing.Signer
	maxDepth int
	log      *slog.Logger
}

var _ providers.Provider = (*Provider)(nil)

// New returns a Provider; it contacts nothing.
func New(cfg Config) *Provider {
	p := &Provider{signer: cfg.Signer, maxDepth: cfg.MaxDelegationDepth, log: cfg.Logger}
	if p.maxDepth < 1 {
		p.maxDepth = DefaultMaxDelegationDepth
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	return p
}

// Name is "jwt".
func (p *Provider) Name() string { return Name }

// Mint signs a token for the target's audience, valid for req.Duration.
func (p *Provider) Mint(ctx context.Context, req providers.Request) (providers.Credential, error) {
	log := p.log.With("mapping", req.Mapping, "issuance_id", req.IssuanceID)
	t, err := decodeTarget(req.Target)
	if err != nil {
		log.Error("jwt: refusing a mapping target", "error", err)
		return providers.Credential{}, refused("InvalidTarget")
	}
	c := req.Claims
	if !providers.ValidMappingName(req.Mapping) {
		log.Error("jwt: mint request without a valid mapping name")
		return providers.Credential{}, refused("InvalidRequest")
	}
	if c == nil || c.Issuer == "" || c.Subject == "" {
		log.Error("jwt: mint request without the pipeline's iss and sub")
		return providers.Credential{}, refused("InvalidRequest")
	}
	if req.Duration < minDuration || req.Duration > maxDuration {
		log.Error("jwt: duration outside 60s..24h", "duration", req.Duration)
		return providers.Credential{}, refused("InvalidDuration")
	}
	act, err := actor(c, p.maxDepth)
	if err != nil {
		log.Warn("jwt: refusing a delegation", "error", err, "src_iss", c.Issuer)
		code := "InvalidDelegation"
		if errors.Is(err, errTooDeep) {
			code = "DelegationTooDeep"
		}
		return providers.Credential{}, refused(code)
	}
	if p.signer == nil {
		log.Error("jwt: no signer is configured")
		return providers.Credential{}, unavailable("SignerUnavailable")
	}

	now := time.Now().Truncate(time.Second)
	exp := now.Add(req.Duration.Truncate(time.Second))
	claims := make(map[string]any, len(t.Claims)+len(reserved))
	for k, v := range t.Claims {
		claims[k] = v
	}
	// The subject is the bridge's, never the pipeline's: see Subject.
	claims["sub"] = Subject(req.Mapping)
	claims["src_sub"] = c.Subject
	claims["aud"] = t.Audience
	claims["exp"] = exp.Unix()
	claims["nbf"] = now.Unix()
	claims["act"] = act
	claims["src_iss"] = c.Issuer
	for k, v := range map[string]string{
		"jti":              req.IssuanceID,
		"mapping":          req.Mapping,
		"repository":       c.Repository,
		"repository_id":    c.RepositoryID,
		"repository_owner": c.RepositoryOwner,
		"ref":              c.Ref,
		"ref_type":         c.RefType,
		"sha":              c.SHA,
		"environment":      c.Environment,
		"event_name":       c.EventName,
		"workflow_ref":     c.WorkflowRef,
		"actor":            c.Actor,
		"run_id":           c.RunID,
		"run_attempt":      c.RunAttempt,
		"job_id":           c.JobID,
	} {
		if v != "" {
			claims[k] = v
		}
	}

	token, err := p.signer.Sign(ctx, claims, signing.RS256)
	if err != nil {
		log.Error("jwt: signing failed", "error", err)
		return providers.Credential{}, unavailable("SignerUnavailable")
	}
	id := providers.TokenID(token)
	log.Debug("jwt: signed a token", "credential_id", id, "audience", t.Audience, "sub", claims["sub"], "expires_at", exp)
	return providers.Credential{
		ID:        id,
		ExpiresAt: exp.UTC(),
		Body: providers.JWTCredentials{
			Token:     token,
			TokenType: TokenType,
			ExpiresAt: exp.UTC(),
			Audience:  t.Audience,
		},
	}, nil
}

// Subject is the sub of the jwt provider's tokens for mapping:
// "oidc-bridge:jwt:mapping:<mapping>" (providers.Subject). It differs from
// the subject of every cloud assertion of the bridge, whatever the
// pipeline's token says; the pipeline's sub is in src_sub.
func Subject(mapping string) string { return providers.Subject(Name, mapping) }

var errTooDeep = errors.New("jwt: delegation chain too deep")

// actor is the token's act: the pipeline's identity, with the pipeline
// token's own act chain (iss and sub of each level) nested under it. It
// fails when the chain is malformed or would be longer than maxDepth.
func actor(c *identity.Claims, maxDepth int) (map[string]any, error) {
	type level struct{ iss, sub string }
	levels := []level{{c.Issuer, c.Subject}}
	next, present := c.Raw["act"]
	for present {
		if len(levels) == maxDepth {
			return nil, fmt.Errorf("%w: more than %d levels", errTooDeep, maxDepth)
		}
		obj, ok := next.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("jwt: act at depth %d is not an object", len(levels))
		}
		sub, ok := obj["sub"].(string)
		if !ok || sub == "" {
			return nil, fmt.Errorf("jwt: act at depth %d has no sub", len(levels))
		}
		iss, isString := obj["iss"].(string)
		if _, has := obj["iss"]; has && !isString {
			return nil, fmt.Errorf("jwt: act at depth %d has an iss that is not a string", len(levels))
		}
		levels = append(levels, level{iss, sub})
		next, present = obj["act"]
	}
	var act map[string]any
	for _, l := range slices.Backward(levels) {
		m := map[string]any{"sub": l.sub}
		if l.iss != "" {
			m["iss"] = l.iss
		}
		if act != nil {
			m["act"] = act
		}
		act = m
	}
	return act, nil
}

func refused(code string) *providers.Error {
	return &providers.Error{Provider: "jwt", Code: code, Err: providers.ErrRefused}
}

func unavailable(code string) *providers.Error {
	return &providers.Error{Provider: "jwt", Code: code, Err: providers.ErrUnavailable}
}
