package mapping

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"

	"github.com/oidc-bridge/oidc-bridge/identity"
	"github.com/oidc-bridge/oidc-bridge/providers"
)

// Lint codes: stable, for the admin API, plan-time diagnostics and options
// that turn some of them into errors.
const (
	LintUnpinnedTenant        = "unpinned_tenant"
	LintNoImmutableID         = "no_immutable_id"
	LintWildcardRepository    = "wildcard_repository"
	LintUnprotectedProduction = "unprotected_production"
	LintAmbiguousRef          = "ambiguous_ref"
	LintTagRef                = "tag_ref"
	LintRiskyEvent            = "risky_event"
	LintSelfHostedRunner      = "self_hosted_runner"
	LintUnconstrainedTemplate = "unconstrained_template"
)

// StrictLintError is the refusal of an object with lint warnings under
// ?lint=strict (what: "mappings" or "issuers"): a *ValidationError on the
// first warning's field whose message names the first warning in full and
// every code, carrying all the warnings for the answer's "warnings".
// Nil when ws is empty.
func StrictLintError(what string, ws []Warning) *ValidationError {
	if len(ws) == 0 {
		return nil
	}
	codes := make([]string, len(ws))
	for i, w := range ws {
		codes[i] = w.Code
	}
	return &ValidationError{Field: ws[0].Field, Warnings: slices.Clone(ws),
		Message: fmt.Sprintf("lint %s: %s (lint=strict refuses %s with warnings; %d in all: %s; each is listed in \"warnings\")",
			ws[0].Code, ws[0].Message, what, len(ws), strings.Join(codes, ", "))}
}

// Claims that lint reads from a mapping's claims conditions.
const (
	claimRepositoryOwnerID = "repository_owner_id"
	claimRefProtected      = "ref_protected"
	claimRunnerEnvironment = "runner_environment"
	claimDeploymentTier    = "deployment_tier"
)

// Lint returns the risky-but-valid configurations of m, a mapping of an issuer
// of kind kind, as warnings in a fixed order: by code in the order below,
// then by field. It is pure and deterministic; it does not validate (a
// mapping that ValidateMapping refuses may lint clean). The rules that differ
// between kinds are the kind's (identity.LintRules, in its file in package
// identity); a kind other than github, gitlab or generic gets the github
// rules where they differ, without github's production rules.
//
// A mapping is production-looking when one of these, split into words at
// every character that is not a letter or a digit, at lower-to-upper case
// changes and between letters and digits, and compared case-insensitively,
// has the word "prod", "production" or "live": its name; a pattern of
// conditions.environment; a pattern of conditions.claims.deployment_tier
// (GitLab); any string in its target (the role ARN, service account,
// audience, ...). So "web-prod", "DeployProd" and "arn:...:role/live-deploy"
// are, "product-api", "delivery" and "preprod" are not.
//
// A ref pattern pins specific branches or tags when it starts with
// refs/heads/ or refs/tags/ and has, after that prefix, at least one
// character that is neither a wildcard nor '/' (refs/heads/main,
// refs/heads/release-*, refs/tags/v*; not refs/heads/*, refs/heads/**,
// refs/** or refs/pull/*/merge). A mapping's ref is protected when
// conditions.ref is present and every one of its patterns pins.
// conditions.claims.ref_protected "true" alone does not make it protected:
// GitHub and GitLab both send that claim for any ref a protection rule
// covers, and a wildcard rule (release/*) covers branches that developers
// can create from any commit (GitLab: anyone allowed to merge; GitHub:
// anyone with write access unless creation is restricted); the bridge sees
// neither the rules nor who may create refs.
//
// The codes and their rules:
//
//   - unpinned_tenant (conditions.<the kind's first pin>): the issuer serves
//     several tenants (every Buildkite or HCP Terraform organization, every
//     project of a CircleCI organization, every repository of a Bitbucket
//     workspace) and the mapping has none of the conditions that pin its
//     own (identity.LintRules.TenantPin) with literal values only (no
//     wildcard), or not all of TenantPinAll (a kubernetes mapping: the
//     namespace and the service account, or sub): another tenant's jobs
//     obtain it. github, gitlab and forgejo: never (a
//     mapping names the owner in its repository, or pins the
//     repository_id). generic (conditions): the issuer's tenants are not
//     known, so no condition has only literal values (every one is a
//     wildcard pattern) draws it; one literal condition, any, does not.
//   - no_immutable_id (conditions.repository_id): names are reusable, ids
//     are not (attack catalogue 29). github and other non-generic kinds:
//     neither conditions.repository_id nor conditions.claims.repository_owner_id;
//     gitlab: no conditions.repository_id (the project_id); generic: never.
//   - wildcard_repository (conditions.repository[i]): a repository pattern
//     with a wildcard also trusts repositories created later (catalogue 26).
//   - unprotected_production (conditions.ref): the ref is not protected
//     although the mapping is production-looking, or although it has an
//     environment condition: any branch can declare an environment and the
//     bridge cannot see deployment-branch rules (catalogue 33). A mapping
//     that requires claims.ref_protected "true" without pinning the ref
//     keeps the warning, and its message says why.
//   - ambiguous_ref (conditions.ref[i]): a ref pattern with a wildcard in the
//     segment after refs/ (refs/*/main, refs/**) matches branches and tags
//     alike (catalogue 36).
//   - tag_ref (conditions.ref[i]): a pattern under refs/tags/: whoever can
//     push a tag can obtain the credential, from unreviewed code (catalogue
//     36).
//   - risky_event (conditions.event_name[i], or conditions.event_name when
//     absent): github: a pattern listing pull_request_target or workflow_run
//     literally (the only way they are admitted; catalogue 34), or one
//     matching pull_request; gitlab: one matching merge_request_event or
//     external_pull_request_event (code that has not been merged); and for a
//     production-looking github mapping, no event_name condition at all.
//   - self_hosted_runner (conditions.claims.runner_environment): a pattern
//     of that claim matches "self-hosted" (the runner is someone's machine,
//     whose state may outlive the job); or a production-looking github
//     mapping does not pin runner_environment to exactly "github-hosted".
//   - unconstrained_template (target.<field>): a templated target field
//     uses a variable (providers.Variables) that none of the mapping's
//     conditions constrains: ${environment} without an environment
//     condition lets any job that names an environment choose among the
//     targets the template can reach. ${repository_name} with a wildcard
//     repository condition is the template's point and draws no warning
//     (wildcard_repository still does).
func Lint(m *Mapping, kind identity.Kind) []Warning {
	if m == nil {
		return nil
	}
	l := &linter{m: m, cond: &m.Conditions, rules: rulesOf(kind).lint, prod: productionLooking(m)}
	l.tenantPin()
	l.pin(LintNoImmutableID, l.rules.ImmutableID, false, l.rules.ImmutableIDMessage)
	l.wildcardRepository()
	l.unprotectedProduction()
	l.refs()
	l.events()
	l.runner()
	l.provider()
	l.templates()
	return l.out
}

// nameCollision returns a repository pattern of the mapping under which
// two repositories may share their last segment: one with "**", or with a
// wildcard before its last '/'; "" when there is none.
func (l *linter) nameCollision() string {
	v := l.cond.Repository
	if v == nil {
		return ""
	}
	for _, p := range v.Patterns {
		prefix, _, _ := strings.Cut(p, "/")
		if i := strings.LastIndexByte(p, '/'); i >= 0 {
			prefix = p[:i]
		}
		if strings.Contains(p, "**") || HasWildcard(prefix) {
			return p
		}
	}
	return ""
}

// provider adds the findings of the mapping's provider, when its spec has
// lint rules of its own (providers.Linter: github's permissions).
func (l *linter) provider() {
	s, ok := Providers().Lookup(l.m.Provider)
	if !ok {
		return
	}
	pl, ok := s.(providers.Linter)
	if !ok {
		return
	}
	admitsPR := l.cond.EventName == nil
	if v := l.cond.EventName; v != nil {
		for _, p := range v.Patterns {
			if Match(p, "pull_request") || Match(p, "pull_request_target") {
				admitsPR = true
			}
		}
	}
	pinned := l.literal("repository") || l.cond.RepositoryID != nil
	for _, f := range pl.LintTarget(providers.LintMapping{Target: l.m.Target, AdmitsPullRequests: admitsPR, RepositoryPinned: pinned}) {
		l.add(f.Code, f.Field, "%s", f.Message)
	}
}

// templates is unconstrained_template: each variable of the target's
// templates, in the order providers.Variables lists them, needs one of its
// constraining conditions.
func (l *linter) templates() {
	spec, ok := Providers().Lookup(l.m.Provider)
	if !ok {
		return
	}
	used := providers.TemplateVariables(spec, l.m.Target)
	for _, field := range slices.Sorted(maps.Keys(used)) {
		for _, v := range providers.Variables {
			if !slices.Contains(used[field], v.Name) ||
				slices.ContainsFunc(v.Conditions, func(c string) bool { return l.cond.values(c) != nil }) {
				continue
			}
			l.add(LintUnconstrainedTemplate, field,
				"${%s} is not constrained by any condition of the mapping (add one of conditions.%s): every token the mapping admits picks its own target with it",
				v.Name, strings.Join(v.Conditions, ", conditions."))
		}
		if p := l.nameCollision(); p != "" && slices.Contains(used[field], "repository_name") {
			l.add(LintUnconstrainedTemplate, field,
				"${repository_name} is only the repository's last segment, and the repository pattern %q admits repositories under different owners or groups: same-named ones (acme/team-a/web, acme/team-b/web) would share one target; write the owner or group literally (acme/team-a/*), or use ${repository_id}", p)
		}
	}
}

type linter struct {
	m     *Mapping
	cond  *Conditions
	rules identity.LintRules // the kind's
	prod  bool
	out   []Warning
}

func (l *linter) add(code, field, format string, args ...any) {
	l.out = append(l.out, Warning{Code: code, Field: field, Message: fmt.Sprintf(format, args...)})
}

// tenantPin is unpinned_tenant: pin with TenantPin, unless the mapping has
// every condition of TenantPinAll, literally (whose first names the field).
func (l *linter) tenantPin() {
	if msg := l.rules.TenantUnknown; msg != "" {
		if !l.anyLiteral() {
			l.add(LintUnpinnedTenant, "conditions", "%s", msg)
		}
		return
	}
	all := l.rules.TenantPinAll
	if len(all) == 0 {
		l.pin(LintUnpinnedTenant, l.rules.TenantPin, true, l.rules.TenantPinMessage)
		return
	}
	if !slices.ContainsFunc(all, func(name string) bool { return !l.literal(name) }) ||
		slices.ContainsFunc(l.rules.TenantPin, l.literal) {
		return
	}
	l.add(LintUnpinnedTenant, "conditions."+all[0], "%s", l.rules.TenantPinMessage)
}

// anyLiteral reports whether some condition of the mapping has only values
// without a wildcard.
func (l *linter) anyLiteral() bool {
	for _, v := range l.cond.firstClass() {
		if v != nil && !slices.ContainsFunc(v.Patterns, HasWildcard) {
			return true
		}
	}
	for _, v := range l.cond.Claims {
		if !slices.ContainsFunc(v.Patterns, HasWildcard) {
			return true
		}
	}
	return false
}

// literal reports whether the mapping has the condition name with values
// that have no wildcard.
func (l *linter) literal(name string) bool {
	v := l.cond.values(name)
	return v != nil && !slices.ContainsFunc(v.Patterns, HasWildcard)
}

// pin warns code with message on conditions.<any[0]> unless the mapping
// has one of the conditions any; with literal, one whose values have no
// wildcard. No rule when any is empty.
func (l *linter) pin(code string, any []string, literal bool, message string) {
	if len(any) == 0 {
		return
	}
	for _, name := range any {
		if v := l.cond.values(name); v != nil && (!literal || !slices.ContainsFunc(v.Patterns, HasWildcard)) {
			return
		}
	}
	l.add(code, "conditions."+any[0], "%s", message)
}

func (l *linter) wildcardRepository() {
	v := l.cond.Repository
	if v == nil {
		return
	}
	for i, p := range v.Patterns {
		if HasWildcard(p) {
			l.add(LintWildcardRepository, indexField("conditions.repository", v, i),
				"repository pattern %q also trusts repositories created later under that owner; list the repositories instead", p)
		}
	}
}

func (l *linter) unprotectedProduction() {
	if !l.prod && l.cond.Environment == nil {
		return
	}
	if l.refPinned() {
		return
	}
	why := "the mapping looks like production"
	if !l.prod {
		why = "the mapping pins an environment, which any branch can declare"
	}
	hint := "pin conditions.ref to the protected branches or tags (refs/heads/main)"
	if l.refProtectedClaim() {
		l.add(LintUnprotectedProduction, "conditions.ref", `%s and relies on claims.ref_protected "true" alone, which does not pin the ref: %s; %s as well`,
			why, l.rules.RefProtectedCaveat, hint)
		return
	}
	if l.cond.Ref == nil {
		l.add(LintUnprotectedProduction, "conditions.ref", "%s but admits any ref: %s", why, hint)
		return
	}
	l.add(LintUnprotectedProduction, "conditions.ref", "%s but its ref patterns %s do not pin specific branches or tags: %s",
		why, strings.Join(l.cond.Ref.Patterns, ", "), hint)
}

// refProtectedClaim reports whether the mapping requires the string claim
// ref_protected "true" (GitHub and GitLab both send it as a string).
func (l *linter) refProtectedClaim() bool {
	v, ok := l.cond.Claims[claimRefProtected]
	return ok && v.typ() == TypeString && allEqual(v.Patterns, "true")
}

// refPinned: see Lint.
func (l *linter) refPinned() bool {
	v := l.cond.Ref
	if v == nil || len(v.Patterns) == 0 {
		return false
	}
	for _, p := range v.Patterns {
		if !pinsRef(p) {
			return false
		}
	}
	return true
}

// pinsRef: see Lint.
func pinsRef(p string) bool {
	var rest string
	switch {
	case strings.HasPrefix(p, "refs/heads/"):
		rest = p[len("refs/heads/"):]
	case strings.HasPrefix(p, "refs/tags/"):
		rest = p[len("refs/tags/"):]
	default:
		return false
	}
	return strings.ContainsFunc(rest, func(r rune) bool { return r != '*' && r != '?' && r != '/' })
}

func (l *linter) refs() {
	v := l.cond.Ref
	if v == nil {
		return
	}
	for i, p := range v.Patterns {
		ns, _, _ := strings.Cut(strings.TrimPrefix(p, "refs/"), "/")
		if strings.HasPrefix(p, "refs/") && HasWildcard(ns) {
			l.add(LintAmbiguousRef, indexField("conditions.ref", v, i),
				"ref pattern %q matches branches and tags alike; write refs/heads/... or refs/tags/...", p)
		}
	}
	for i, p := range v.Patterns {
		if strings.HasPrefix(p, "refs/tags/") {
			l.add(LintTagRef, indexField("conditions.ref", v, i),
				"ref pattern %q trusts whoever can push a matching tag, from any commit, reviewed or not; protect the tags (rulesets) or pin a branch", p)
		}
	}
}

func (l *linter) events() {
	v := l.cond.EventName
	if v == nil {
		if l.prod && l.rules.ProductionEvents != "" {
			l.add(LintRiskyEvent, "conditions.event_name", "%s", l.rules.ProductionEvents)
		}
		return
	}
	for i, p := range v.Patterns {
		risky := p
		if !slices.Contains(l.rules.RiskyEventsListed, p) {
			risky = firstMatch(p, l.rules.RiskyEvents...)
		}
		if risky != "" {
			l.add(LintRiskyEvent, indexField("conditions.event_name", v, i),
				"event pattern %q admits %s runs, which can execute code that has not been reviewed or merged", p, risky)
		}
	}
}

func (l *linter) runner() {
	v, ok := l.cond.Claims[claimRunnerEnvironment]
	field := "conditions.claims." + claimRunnerEnvironment
	if ok {
		for _, p := range v.Patterns {
			if Match(p, "self-hosted") {
				l.add(LintSelfHostedRunner, field,
					"runner_environment pattern %q admits self-hosted runners, whose machines and state outlive the job; prefer hosted runners for credentials", p)
				return
			}
		}
	}
	if hosted := l.rules.HostedRunner; l.prod && hosted != "" && !(ok && allEqual(v.Patterns, hosted)) {
		l.add(LintSelfHostedRunner, field, "%s", l.rules.HostedRunnerMessage)
	}
}

func firstMatch(p string, events ...string) string {
	for _, e := range events {
		if Match(p, e) {
			return e
		}
	}
	return ""
}

func allEqual(ps []string, s string) bool {
	if len(ps) == 0 {
		return false
	}
	for _, p := range ps {
		if p != s {
			return false
		}
	}
	return true
}

// indexField names pattern i of v as validation does: with its index when
// the admin wrote a list.
func indexField(field string, v *Values, i int) string {
	if v.List || len(v.Patterns) != 1 {
		return fmt.Sprintf("%s[%d]", field, i)
	}
	return field
}

var productionWords = map[string]bool{"prod": true, "production": true, "live": true}

// productionLooking: see Lint.
func productionLooking(m *Mapping) bool {
	texts := []string{m.Name}
	if v := m.Conditions.Environment; v != nil {
		texts = append(texts, v.Patterns...)
	}
	if v, ok := m.Conditions.Claims[claimDeploymentTier]; ok {
		texts = append(texts, v.Patterns...)
	}
	texts = append(texts, targetStrings(m.Target)...)
	for _, t := range texts {
		for _, w := range words(t) {
			if productionWords[w] {
				return true
			}
		}
	}
	return false
}

// targetStrings returns every string in a target object, keys excluded.
func targetStrings(raw json.RawMessage) []string {
	var v any
	if len(raw) == 0 || json.Unmarshal(raw, &v) != nil {
		return nil
	}
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			out = append(out, x)
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	return out
}

// words splits s into lower-case words: at every character that is not a
// letter or digit, at lower-to-upper case changes and between letters and
// digits.
func words(s string) []string {
	var out []string
	var cur []rune
	flush := func() {
		if len(cur) > 0 {
			out = append(out, strings.ToLower(string(cur)))
			cur = cur[:0]
		}
	}
	var prev rune
	for _, r := range s {
		switch {
		case !unicode.IsLetter(r) && !unicode.IsDigit(r):
			flush()
		case len(cur) > 0 && (unicode.IsLower(prev) && unicode.IsUpper(r) || unicode.IsLetter(prev) != unicode.IsLetter(r)):
			flush()
			cur = append(cur, r)
		default:
			cur = append(cur, r)
		}
		prev = r
	}
	flush()
	return out
}
