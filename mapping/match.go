package mapping

import (
	"github.com/oidc-bridge/oidc-bridge/identity"
)

// Reasons Admits gives for a refusal. They are stable: logs, audit rows and
// the reason label of metrics use them, so the set stays small and fixed (a
// claims condition reports "claims", never the claim's name).
const (
	ReasonNoClaims      = "no_claims"
	ReasonDisabled      = "disabled"
	ReasonIssuer        = "issuer"
	ReasonUnconstrained = "unconstrained"
	ReasonRepository    = identity.ConditionRepository
	ReasonRepositoryID  = identity.ConditionRepositoryID
	ReasonRef           = identity.ConditionRef
	ReasonEnvironment   = identity.ConditionEnvironment
	ReasonEventName     = identity.ConditionEventName
	ReasonWorkflowRef   = identity.ConditionWorkflowRef
	ReasonClaims        = "claims"
	ReasonForkPipeline  = identity.GuardForkPipeline
	ReasonEventOptIn    = identity.GuardEventOptIn
)

const reasonAdmitted = ""

// Admits reports whether the mapping admits the verified claims c and, when it
// does not, a short stable reason (one of the Reason constants) for the log
// and the audit row. It is pure: no I/O, no clock.
//
// Every condition present must hold, and a condition holds when any of its
// patterns matches:
//   - repository matches Claims.Repository, ASCII case-insensitively;
//   - repository_id equals Claims.RepositoryID exactly: no patterns and no
//     numeric normalisation ("0123" is not "123");
//   - ref matches the full Claims.Ref byte-exactly (refs/heads/main never
//     matches refs/tags/main, refs/heads/mainx or refs/heads/main/);
//   - environment matches as the issuer's platform compares environment
//     names (its identity.Platform's Conditions): github ASCII
//     case-insensitively, gitlab and every other kind byte-exactly;
//   - event_name and workflow_ref (Claims.WorkflowRef) match
//     case-sensitively;
//   - each claims entry matches the named raw claim of the same JSON type
//     only (see typed.go): string patterns match string claims, booleans a
//     boolean claim, numbers a number claim of the same value; a missing
//     claim, or one holding an array, object or null, never matches. A key
//     starting with '/' is a JSON Pointer naming a nested claim (see
//     pointer.go), matched the same way.
//
// An absent claim (an empty string) never matches any pattern, not even `*`
// or `**`: a condition is a demand that the token say something.
//
// Beyond the conditions, these safety rules hold whatever the mapping says:
//   - A disabled mapping admits nothing ("disabled").
//   - A mapping admits only tokens of its own issuer: Claims.IssuerName must
//     equal Mapping.Issuer ("issuer"), so a caller that forgets to filter
//     mappings by issuer cannot let one issuer's tokens reach another's
//     mappings.
//   - A mapping that validation would refuse for being too broad admits
//     nothing ("unconstrained"): the kind's identity.Breadth says what it
//     must constrain. For a generic token it must have at least one
//     condition, for any other token (github, gitlab, or a kind this
//     package does not know) a repository or repository_id condition
//     (attack catalogue 25: such rows may predate the rule or come from
//     outside the admin API).
//   - The kind's guards (identity.Guard, in the kind's file), these two
//     today, admit a token they apply to only with the condition they
//     demand.
//   - GitLab fork merge-request pipelines ("fork_pipeline"): when a gitlab
//     token's job_project_path (the project the job runs in) differs, ASCII
//     case-insensitively, from its project_path, the job runs fork code with
//     the parent project's pipeline, and the mapping admits it only if its
//     claims conditions name job_project_path, that is only if the admin
//     decided which projects' jobs may use it. A gitlab token without
//     job_project_path counts as differing, so it fails closed too.
//   - GitHub pull_request_target and workflow_run ("event_requires_opt_in"):
//     these runs carry the base branch's context (ref refs/heads/main) but may
//     execute code from a fork, so a github token with one of these event
//     names is admitted only by a mapping whose event_name condition lists
//     that event literally; a wildcard such as `*` or `pull_request*` does not
//     count as opting in (attack catalogue 34).
//
// The conditions are checked before the safety rules, so a refusal names the
// first condition that failed when there is one.
func (m *Mapping) Admits(c *identity.Claims) (ok bool, reason string) {
	if c == nil {
		return false, ReasonNoClaims
	}
	if !m.Enabled {
		return false, ReasonDisabled
	}
	if m.Issuer != c.IssuerName {
		return false, ReasonIssuer
	}
	cond := &m.Conditions
	k := rulesOf(c.Kind)
	if !cond.constrains(k) {
		return false, ReasonUnconstrained
	}
	if r := cond.mismatch(c, k); r != reasonAdmitted {
		return false, r
	}
	for _, g := range k.Guards(c) {
		if !cond.guarded(g) {
			return false, g.Reason
		}
	}
	return true, reasonAdmitted
}

// Select returns, in order, the mappings of ms that admit c.
func Select(ms []Mapping, c *identity.Claims) []Mapping {
	admitted, _ := Evaluate(ms, c)
	return admitted
}

// Evaluate is Select that also returns, for each mapping of ms in order,
// Admits' reason ("" for the admitted ones), for logs and explanations.
func Evaluate(ms []Mapping, c *identity.Claims) (admitted []Mapping, reasons []string) {
	reasons = make([]string, len(ms))
	for i := range ms {
		ok, reason := ms[i].Admits(c)
		reasons[i] = reason
		if ok {
			admitted = append(admitted, ms[i])
		}
	}
	return admitted, reasons
}

// mismatch returns the reason of the first condition that does not hold, or
// "" when all hold. A condition the kind does not support never holds.
func (cond *Conditions) mismatch(c *identity.Claims, k *kindRules) string {
	for i, v := range cond.firstClass() {
		if v != nil && !v.matches(c.ConditionValue(firstClassNames[i]), k.compare[i]) {
			return firstClassNames[i]
		}
	}
	for name, v := range cond.Claims {
		if !v.matchesClaim(rawClaim(c, name)) {
			return ReasonClaims
		}
	}
	return reasonAdmitted
}

// constrains mirrors the breadth rule of ValidateMapping for kind k: the
// mapping has one of the conditions of k's Breadth, or, when that lists
// none, any condition at all.
func (cond *Conditions) constrains(k *kindRules) bool {
	if len(k.breadth.AnyOf) > 0 {
		for _, name := range k.breadth.AnyOf {
			if cond.has(name) {
				return true
			}
		}
		return false
	}
	for _, v := range cond.firstClass() {
		if v != nil {
			return true
		}
	}
	return len(cond.Claims) > 0
}

// matches reports whether any pattern matches s. An empty s is an absent
// claim and matches nothing; so does a Values with no patterns, one that
// does not hold strings (which only a claims condition may), and any Values
// with a nil match (a condition the kind does not support).
func (v *Values) matches(s string, match func(pattern, s string) bool) bool {
	if s == "" || match == nil || v.typ() != TypeString || v.Invalid != "" {
		return false
	}
	for _, p := range v.Patterns {
		if match(p, s) {
			return true
		}
	}
	return false
}

// lists reports whether v names s literally, wildcards not counting.
func (v *Values) lists(s string) bool {
	if v == nil || s == "" {
		return false
	}
	for _, p := range v.Patterns {
		if p == s {
			return true
		}
	}
	return false
}

func equalString(a, b string) bool { return a == b }
