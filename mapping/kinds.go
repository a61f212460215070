package mapping

import (
	"slices"
	"strings"

	"github.com/oidc-bridge/oidc-bridge/identity"
)

// kindRules is what this package applies of an issuer kind
// (identity.Platform): its comparisons as matchers, its breadth, guards and
// lint rules. Nothing here names a kind: each kind's rules are in its file
// in package identity (kind_github.go, kind_gitlab.go, ...).
type kindRules struct {
	identity.Platform
	// compare holds the matcher of each first-class condition, in
	// firstClassNames' order; nil for a condition the kind does not
	// support, which matches nothing.
	compare [len(firstClassNames)]func(pattern, s string) bool
	breadth identity.Breadth
	lint    identity.LintRules
}

func newKindRules(p identity.Platform) *kindRules {
	k := &kindRules{Platform: p, breadth: p.Breadth(), lint: p.Lint()}
	for _, cd := range p.Conditions() {
		i := slices.Index(firstClassNames[:], cd.Name)
		if i < 0 {
			continue
		}
		switch cd.Compare {
		case identity.Exact:
			k.compare[i] = Match
		case identity.Fold:
			k.compare[i] = MatchFold
		case identity.Equal:
			k.compare[i] = equalString
		}
	}
	return k
}

// registeredRules holds the rules of every registered kind, built once.
var registeredRules = func() map[identity.Kind]*kindRules {
	m := map[identity.Kind]*kindRules{}
	for _, p := range identity.Platforms() {
		m[p.Kind()] = newKindRules(p)
	}
	return m
}()

// rulesOf returns the rules of kind k; an unregistered kind gets
// identity.PlatformOf's strictest rules.
func rulesOf(k identity.Kind) *kindRules {
	if r, ok := registeredRules[k]; ok {
		return r
	}
	return newKindRules(identity.PlatformOf(k))
}

// firstClassNames are the first-class conditions in the order Admits
// checks them.
var firstClassNames = [...]string{
	identity.ConditionRepository, identity.ConditionRepositoryID, identity.ConditionRef,
	identity.ConditionEnvironment, identity.ConditionEventName, identity.ConditionWorkflowRef,
}

// firstClass returns the mapping's first-class conditions in
// firstClassNames' order, absent ones nil.
func (cond *Conditions) firstClass() [len(firstClassNames)]*Values {
	return [...]*Values{cond.Repository, cond.RepositoryID, cond.Ref, cond.Environment, cond.EventName, cond.WorkflowRef}
}

// has reports whether the mapping has the condition name: a first-class
// condition's name, or claims.<claim>.
func (cond *Conditions) has(name string) bool {
	return cond.values(name) != nil
}

// values returns the values of the condition name (see has), nil when the
// mapping does not have it.
func (cond *Conditions) values(name string) *Values {
	if claim, ok := strings.CutPrefix(name, "claims."); ok {
		if v, ok := cond.Claims[claim]; ok {
			return &v
		}
		return nil
	}
	if i := slices.Index(firstClassNames[:], name); i >= 0 {
		return cond.firstClass()[i]
	}
	return nil
}

// guarded reports whether the mapping satisfies the guard g: it has g's
// condition and, when g names a literal, lists it.
func (cond *Conditions) guarded(g identity.Guard) bool {
	v := cond.values(g.Condition)
	if g.Literal == "" {
		return v != nil
	}
	return v.lists(g.Literal)
}

// conditionList lists the first-class conditions of the kind for a
// message: "ref, event_name", or "none".
func (k *kindRules) conditionList() string {
	var names []string
	for i, name := range firstClassNames {
		if k.compare[i] != nil {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// breadthField is the field a refusal for breadth names.
func (k *kindRules) breadthField() string {
	if len(k.breadth.AnyOf) == 0 {
		return "conditions"
	}
	return "conditions." + k.breadth.AnyOf[0]
}

// kindChoices lists the registered kinds for a message: "github, gitlab or
// generic".
func kindChoices() string {
	ps := identity.Platforms()
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = string(p.Kind())
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}
