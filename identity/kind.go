package identity

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Platform is one CI kind: how its tokens' claims are read into Claims, and
// what the policy rules of package mapping need to know about it. Each kind
// lives in its own file, kind_<kind>.go, and is listed once in platforms
// below; package mapping asks the kind instead of switching on kinds.
//
// Every method returns plain data (no I/O, no clock), the same on every
// call. The interface is sealed (read is unexported) so that a kind is
// always reviewed with the claim reader it uses.
type Platform interface {
	// Kind is the kind's name: the admin API's issuer kind.
	Kind() Kind
	// Defaults are the limits and replay rules of the kind's tokens where
	// the issuer sets none.
	Defaults() Defaults
	// Conditions lists the first-class mapping conditions the kind's tokens
	// support, in the API's order, each with the claims it reads and how
	// its patterns compare. A condition not listed is refused in a mapping
	// of the kind: its tokens carry nothing it could read.
	Conditions() []Condition
	// Breadth says what every mapping of the kind must constrain.
	Breadth() Breadth
	// Guards returns the safety rules that apply to the verified claims c
	// whatever a mapping's conditions say; nil when none applies.
	Guards(c *Claims) []Guard
	// Lint returns the kind's parts of mapping lint.
	Lint() LintRules
	// Issuer says what the kind knows of its issuers' URLs and audiences.
	Issuer() IssuerRules
	// read reads the kind's own claims of a token into c, after iss, sub
	// and jti; it records the first problem in r.
	read(r *claimReader, c *Claims)
}

// platforms is the registry of kinds, in the order the API lists them.
// Adding a CI kind is one file (kind_<kind>.go, implementing Platform), one
// line here, and a realistic claim set in test/oidctest/claimsets/<kind>-<what>.json, which
// the contract test (kind_test.go) reads.
var platforms = []Platform{
	github{},
	gitlab{},
	buildkite{},
	circleci{},
	bitbucket{},
	terraformCloud{},
	kubernetes{},
	aws{},
	forgejo{},
	azureDevOps{},
	jenkins{},
	generic{},
}

var byKind = func() map[Kind]Platform {
	m := make(map[Kind]Platform, len(platforms))
	for _, p := range platforms {
		m[p.Kind()] = p
	}
	return m
}()

// Platforms returns the registered kinds, in the API's order.
func Platforms() []Platform { return append([]Platform(nil), platforms...) }

// PlatformOf returns the registered kind k or, for a kind that is not
// registered (a row from outside the admin API), the strictest rules: the
// github rules where kinds differ, without github's own guards and
// production rules, case-sensitive environments, and no claims read at all.
func PlatformOf(k Kind) Platform {
	if p, ok := byKind[k]; ok {
		return p
	}
	return unknown{k}
}

// Valid reports whether k is one of the registered kinds.
func (k Kind) Valid() bool {
	_, ok := byKind[k]
	return ok
}

// KindLimits returns the default age and lifetime limits of a kind's tokens
// (Defaults; each kind's file says why), MaxTokenLimit for an unknown kind.
func KindLimits(k Kind) (age, lifetime time.Duration) {
	d := PlatformOf(k).Defaults()
	return d.TokenAge, d.TokenLifetime
}

// Defaults of a kind's tokens.
type Defaults struct {
	// TokenAge and TokenLifetime bound now-iat and exp-iat when the issuer
	// sets no limits, between MinTokenLimit and MaxTokenLimit.
	TokenAge, TokenLifetime time.Duration
	// JTIRequired: the platform always sends a jti, so a token of it
	// without one is not its own and is refused. Otherwise a token may
	// have none, and the replay guard keys it on its SHA-256
	// (Claims.ReplayKey).
	JTIRequired bool
	// ReplayScope is the replay scope of an issuer that sets none:
	// ReplayScopeToken or ReplayScopeTokenMapping.
	ReplayScope string
}

// Replay scopes of an issuer (package mapping documents them).
const (
	ReplayScopeToken        = "token"
	ReplayScopeTokenMapping = "token_mapping"
)

// The first-class conditions of mappings, by the name the admin API gives
// them; Claims.ConditionValue returns the normalised claim each reads.
const (
	ConditionRepository   = "repository"
	ConditionRepositoryID = "repository_id"
	ConditionRef          = "ref"
	ConditionEnvironment  = "environment"
	ConditionEventName    = "event_name"
	ConditionWorkflowRef  = "workflow_ref"
)

// Compare says how a condition's values compare with the normalised claim.
type Compare int

// The comparisons. Package mapping implements them.
const (
	// Exact: patterns, byte-exact (mapping.Match).
	Exact Compare = iota + 1
	// Fold: patterns, with ASCII letters compared case-insensitively
	// (mapping.MatchFold); Unicode does not fold.
	Fold
	// Equal: the value itself, byte-exact; no patterns.
	Equal
)

// Condition is a first-class mapping condition as a kind supports it.
type Condition struct {
	// Name is one of the Condition constants.
	Name string
	// Claims are the token's claims the kind reads into the condition's
	// normalised value. A claims condition may not name them: the
	// first-class condition reads them, normalised.
	Claims []string
	// Compare is how the condition's values compare with that value.
	Compare Compare
}

// Breadth is the least a mapping of a kind must constrain: tokens of the
// kind differ only in what the conditions read.
type Breadth struct {
	// AnyOf: a mapping must have one of these conditions (a Condition
	// constant, or "claims.<name>"); empty: at least one condition, any.
	AnyOf []string
	// Message is validation's refusal of a mapping without (its field is
	// conditions.<AnyOf[0]>, or conditions); Detail the explainer's words
	// for the refusal of such a mapping when it is stored all the same.
	Message string
	Detail  string
}

// repositoryBreadth is the breadth rule of kinds whose tokens name a
// repository: label names the kind in the refusal.
func repositoryBreadth(label string) Breadth {
	return Breadth{
		AnyOf: []string{ConditionRepository, ConditionRepositoryID},
		Message: fmt.Sprintf("a mapping of a %s issuer must constrain the repository: "+
			"set repository (owner/name) or repository_id", label),
		Detail: "the mapping constrains neither repository nor repository_id: it admits nothing",
	}
}

// Guard is a safety rule of a kind for one token: the token is admitted only
// by a mapping whose condition Condition is present and, when Literal is
// set, lists Literal itself (a wildcard that matches it does not count).
type Guard struct {
	// Reason is the stable reason of the refusal (package mapping's).
	Reason string
	// Condition is a Condition constant or "claims.<name>".
	Condition string
	Literal   string
	// Detail says the refusal to a person, with the values seen.
	Detail string
}

// LintRules are a kind's parts of mapping lint (mapping.Lint documents the
// codes). A zero field means the kind has no such rule.
type LintRules struct {
	// ImmutableID lists the conditions any of which pins an immutable id
	// (no_immutable_id, on the field conditions.<ImmutableID[0]>), and
	// ImmutableIDMessage the warning when none is present.
	ImmutableID        []string
	ImmutableIDMessage string
	// RefProtectedCaveat says why claims.ref_protected "true" alone does
	// not pin a ref (unprotected_production).
	RefProtectedCaveat string
	// risky_event: RiskyEventsListed are the events an event_name pattern
	// draws the warning for by naming them literally, RiskyEvents those it
	// draws it for by matching them.
	RiskyEventsListed []string
	RiskyEvents       []string
	// ProductionEvents is the risky_event warning of a production-looking
	// mapping without an event_name condition.
	ProductionEvents string
	// HostedRunner is the runner_environment a production-looking mapping
	// must pin exactly, and HostedRunnerMessage the self_hosted_runner
	// warning when it does not.
	HostedRunner        string
	HostedRunnerMessage string
	// TenantPin lists the conditions one of which a mapping must have, each
	// value written literally (no wildcard), where one issuer serves
	// several tenants that must not obtain each other's mappings
	// (unpinned_tenant, on the field conditions.<TenantPin[0]>), and
	// TenantPinMessage the warning when none is.
	TenantPin        []string
	TenantPinMessage string
	// TenantPinAll lists conditions that pin the tenant all together, each
	// literally, as one of TenantPin does alone (Kubernetes' namespace and
	// service account, which claims.sub names at once); unpinned_tenant is
	// then on the field conditions.<TenantPinAll[0]>.
	TenantPinAll []string
	// TenantUnknown, when set, says the kind knows nothing of its issuers'
	// tenants (generic): unpinned_tenant, on the field conditions, with
	// this message, unless some condition has only literal values (it
	// then names one workload, or a few, whatever the issuer's tenancy).
	TenantUnknown string
}

// IssuerRules are what a kind knows of its issuers.
type IssuerRules struct {
	// Path, when set, is the path every issuer URL of the platform has,
	// segment by segment, a segment in braces standing for any non-empty
	// segment (the tenant: /org/{org-id} for CircleCI). An issuer URL of the kind with another
	// path is refused: its tokens cannot be the platform's.
	Path string
	// PathSuffix, when set, is how every issuer URL's path of the platform
	// ends, the instance being at any path before it (Forgejo's
	// /api/actions); another path is refused as Path's.
	PathSuffix string
	// Hosts, when set, are the platform's own hosts: an issuer URL of the
	// kind on another host draws the issuer lint warning issuer_host (a
	// test double, a proxy, or a mistake). A host "*.<domain>" stands for
	// any one label before the domain (AWS's per-account
	// <uuid>.tokens.sts.global.api.aws). Empty: self-hosted instances
	// exist, any host is the platform's.
	Hosts []string
	// Shared: one issuer URL serves every tenant of the platform (all
	// Buildkite organizations, all HCP Terraform organizations).
	Shared bool
	// AudienceHint says, for docs and the explainer, how a job obtains a
	// token with the bridge's audience.
	AudienceHint string
}

// CheckIssuerURL returns why u cannot be an issuer URL of kind k (its path
// is not the platform's form, IssuerRules.Path), "" when it can. u must
// already be a valid issuer URL.
func CheckIssuerURL(k Kind, u string) string {
	rules := PlatformOf(k).Issuer()
	want := rules.Path
	if want == "" && rules.PathSuffix == "" {
		return ""
	}
	p, err := url.Parse(u)
	if err != nil {
		return "is not a URL"
	}
	if suffix := rules.PathSuffix; suffix != "" {
		if !strings.HasSuffix(p.Path, suffix) {
			return fmt.Sprintf("is not a %s issuer URL: its path must end with %s", k, suffix)
		}
		return ""
	}
	got, pat := strings.Split(p.Path, "/"), strings.Split(want, "/")
	ok := len(got) == len(pat)
	for i := 0; ok && i < len(pat); i++ {
		ok = pat[i] == got[i] || strings.HasPrefix(pat[i], "{") && got[i] != ""
	}
	if !ok {
		return fmt.Sprintf("is not a %s issuer URL: its path must be %s", k, want)
	}
	return ""
}

// IssuerHostUnusual reports whether u is on none of kind k's hosts
// (IssuerRules.Hosts), when the kind lists any.
func IssuerHostUnusual(k Kind, u string) bool {
	hosts := PlatformOf(k).Issuer().Hosts
	if len(hosts) == 0 {
		return false
	}
	p, err := url.Parse(u)
	if err != nil || p.Scheme != "https" {
		return true
	}
	return !slices.ContainsFunc(hosts, func(h string) bool {
		if domain, ok := strings.CutPrefix(h, "*."); ok {
			label, rest, found := strings.Cut(p.Host, ".")
			return found && label != "" && rest == domain
		}
		return h == p.Host
	})
}

// unknown is PlatformOf's answer for a kind that is not registered.
type unknown struct{ kind Kind }

func (u unknown) Kind() Kind { return u.kind }

func (unknown) Defaults() Defaults {
	return Defaults{TokenAge: MaxTokenLimit, TokenLifetime: MaxTokenLimit, JTIRequired: true, ReplayScope: ReplayScopeToken}
}

// Conditions are generic's comparisons: environments compare byte-exactly,
// the fail-closed choice when the platform's rule is not known.
func (unknown) Conditions() []Condition { return generic{}.Conditions() }

func (unknown) Breadth() Breadth { return repositoryBreadth("github or gitlab") }

func (unknown) Guards(*Claims) []Guard { return nil }

func (unknown) Lint() LintRules {
	l := github{}.Lint()
	l.ProductionEvents, l.HostedRunner, l.HostedRunnerMessage = "", "", ""
	return l
}

func (unknown) Issuer() IssuerRules { return IssuerRules{} }

func (u unknown) read(r *claimReader, _ *Claims) {
	if r.err == nil {
		r.err = fail(ReasonUntrustedIssuer, "unknown kind %s", quote(string(u.kind)))
	}
}
