package mapping

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/oidc-bridge/oidc-bridge/identity"
	"github.com/oidc-bridge/oidc-bridge/providers"
)

// Explanation says what a mapping decides about a token's claims and why: the
// policy explainer's answer for one mapping.
type Explanation struct {
	Mapping  string `json:"mapping"`
	Provider string `json:"provider"`
	Enabled  bool   `json:"enabled"`
	Mode     string `json:"mode"`
	// Admitted and Reason are exactly what Admits returns.
	Admitted bool   `json:"admitted"`
	Reason   string `json:"reason,omitempty"`
	// Detail says Reason to a person, with the value seen.
	Detail string `json:"detail,omitempty"`
	// Conditions holds one result per condition of the mapping, in the
	// order Admits checks them: repository, repository_id, ref,
	// environment, event_name, workflow_ref, then claims.<name> by name.
	Conditions []ConditionResult `json:"conditions"`
	// ResolvedTarget is, for a templated target (providers.ResolveTarget),
	// the target the exchange would use for these claims; TargetError
	// says why it cannot be resolved (the exchange then refuses with
	// reason target_template). Both empty for a target without templates.
	ResolvedTarget json.RawMessage `json:"resolved_target,omitempty"`
	TargetError    string          `json:"target_error,omitempty"`
}

// ConditionResult is one condition of a mapping held against the claims.
type ConditionResult struct {
	// Condition is repository, repository_id, ref, environment,
	// event_name, workflow_ref or claims.<name>.
	Condition string   `json:"condition"`
	Patterns  []string `json:"patterns"`
	// Type is, for claims.*, the JSON type of the condition's values:
	// string, boolean or number (a claims condition matches only a claim of
	// its type). Empty for the first-class conditions, which hold strings.
	Type string `json:"type,omitempty"`
	// Value is the value seen: the normalised claim for the first-class
	// conditions (GitLab's ref as a full ref, ...), the claim's raw form
	// for claims.* (a string as it is, anything else as its JSON text).
	Value string `json:"value"`
	// ValueType is, for claims.*, the JSON type of the claim seen when the
	// token carries it: string, boolean, number, null, array or object.
	ValueType string `json:"value_type,omitempty"`
	Present   bool   `json:"present"`
	Matched   bool   `json:"matched"`
}

// Explain evaluates every condition of m against c, without stopping at the
// first failure, and reports the decision of Admits with it: Admitted and
// Reason always equal what m.Admits(c) returns. A disabled mapping, or one
// of another issuer, still has its conditions evaluated, so that the answer
// shows what it would decide once enabled. It is pure, like Admits.
func Explain(m *Mapping, c *identity.Claims) Explanation {
	e := Explanation{Mapping: m.Name, Provider: m.Provider, Enabled: m.Enabled, Mode: m.Mode}
	if e.Mode == "" {
		e.Mode = ModeEnforce
	}
	cond := &m.Conditions
	var k *kindRules
	if c != nil {
		k = rulesOf(c.Kind)
	}
	e.Conditions = explainConditions(cond, c)

	switch {
	case c == nil:
		e.Reason, e.Detail = ReasonNoClaims, "there are no claims to match"
	case !m.Enabled:
		e.Reason, e.Detail = ReasonDisabled, "the mapping is disabled: it admits nothing"
	case m.Issuer != c.IssuerName:
		e.Reason = ReasonIssuer
		e.Detail = fmt.Sprintf("the mapping belongs to issuer %q, the token to %q", m.Issuer, c.IssuerName)
	case !cond.constrains(k):
		e.Reason, e.Detail = ReasonUnconstrained, k.breadth.Detail
	default:
		for _, r := range e.Conditions {
			if !r.Matched {
				e.Reason, e.Detail = conditionReason(r.Condition), failureDetail(r)
				break
			}
		}
		if e.Reason != "" {
			break
		}
		for _, g := range k.Guards(c) {
			if !cond.guarded(g) {
				e.Reason, e.Detail = g.Reason, g.Detail
				break
			}
		}
	}
	e.Admitted = e.Reason == reasonAdmitted
	if c != nil {
		e.ResolvedTarget, e.TargetError = resolvedTarget(m, c)
	}
	return e
}

// resolvedTarget is m's target resolved for c when it holds a template.
func resolvedTarget(m *Mapping, c *identity.Claims) (json.RawMessage, string) {
	spec, ok := Providers().Lookup(m.Provider)
	if !ok || !providers.IsTemplate(spec, m.Target) {
		return nil, ""
	}
	t, err := providers.ResolveTarget(spec, m.Target, c)
	if err != nil {
		var te *providers.TemplateError
		if errors.As(err, &te) && te.Variable != "" {
			return nil, te.Field + ": ${" + te.Variable + "}: " + te.Reason
		}
		if errors.As(err, &te) {
			return nil, te.Field + ": " + te.Reason
		}
		return nil, err.Error()
	}
	return t, ""
}

// explainConditions evaluates each condition present, with the same
// comparison Admits uses for it.
func explainConditions(cond *Conditions, c *identity.Claims) []ConditionResult {
	var claims identity.Claims
	if c != nil {
		claims = *c
	}
	k := rulesOf(claims.Kind)
	out := []ConditionResult{}
	for i, v := range cond.firstClass() {
		if v == nil {
			continue
		}
		name := firstClassNames[i]
		value := claims.ConditionValue(name)
		out = append(out, ConditionResult{
			Condition: name,
			Patterns:  patternsOf(v),
			Value:     value,
			Present:   value != "",
			Matched:   v.matches(value, k.compare[i]),
		})
	}
	names := make([]string, 0, len(cond.Claims))
	for name := range cond.Claims {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		v := cond.Claims[name]
		r := ConditionResult{Condition: "claims." + name, Patterns: patternsOf(&v), Type: v.typ()}
		raw, present := rawClaim(c, name)
		if present {
			r.Present, r.ValueType, r.Value = true, claimType(raw), claimText(raw)
		}
		r.Matched = v.matchesClaim(raw, present)
		out = append(out, r)
	}
	return out
}

func patternsOf(v *Values) []string {
	if v.Patterns == nil {
		return []string{}
	}
	return slices.Clone(v.Patterns)
}

// conditionReason is the Admits reason of a failed condition: a claims
// condition is "claims", whatever its name.
func conditionReason(condition string) string {
	if strings.HasPrefix(condition, "claims.") {
		return ReasonClaims
	}
	return condition
}

func failureDetail(r ConditionResult) string {
	if !r.Present {
		return fmt.Sprintf("%s: the token has no %s", r.Condition, strings.TrimPrefix(r.Condition, "claims."))
	}
	want := strings.Join(r.Patterns, ", ")
	if len(r.Patterns) == 0 {
		want = "(no patterns)"
	}
	if r.Type != "" && r.ValueType != r.Type {
		// A typed claims condition: say why "true" does not match true.
		return fmt.Sprintf("%s: the token's %s is a %s, the condition wants a %s (%s)",
			r.Condition, strings.TrimPrefix(r.Condition, "claims."), r.ValueType, r.Type, want)
	}
	return fmt.Sprintf("%s: %s matches none of %s", r.Condition, identity.QuoteValue(r.Value), want)
}
