package mapping

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"unicode"

	"github.com/oidc-bridge/oidc-bridge/identity"
	"github.com/oidc-bridge/oidc-bridge/providers"
)

// ErrInvalid matches (errors.Is) every *ValidationError: the admin API
// answers it with 400 invalid_request.
var ErrInvalid = errors.New("mapping: invalid")

// ValidationError says which field of an issuer or mapping is at fault and
// why. Field is the JSON path as the admin wrote it ("target.role_arn",
// "conditions.repository[1]", "conditions.claims.sub").
type ValidationError struct {
	Field   string
	Message string
	// Warnings are the lint findings of a refusal under ?lint=strict
	// (StrictLintError), all of them; Field is then the first one's.
	Warnings []Warning
}

// Error returns "field: message". It carries no package prefix because it is
// written for the person who sent the object, as the 400's message.
func (e *ValidationError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

func invalid(field, format string, args ...any) *ValidationError {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Limits of what ValidateMapping admits.
const (
	// DefaultMaxDuration is the max_duration_seconds that Normalize gives a
	// mapping written without one (0).
	DefaultMaxDuration = 3600

	maxNameLen         = 64
	maxPatternLen      = 256
	maxPatterns        = 32
	maxClaimConditions = 32
	maxClaimNameLen    = 128
)

// DurationBounds returns the range of max_duration_seconds that provider
// accepts, in seconds (its providers.Spec says), and false for a provider
// Providers does not know.
func DurationBounds(provider string) (lo, hi int, ok bool) {
	spec, ok := Providers().Lookup(provider)
	if !ok {
		return 0, 0, false
	}
	lo, hi = spec.DurationBounds()
	return lo, hi, true
}

// Normalize fills the defaults of a mapping as the admin API received it; the
// handler calls it before ValidateMapping. max_duration_seconds 0 becomes
// DefaultMaxDuration. Nothing else is rewritten: what the admin wrote is what
// is validated and stored.
func Normalize(m *Mapping) {
	if m == nil {
		return
	}
	if m.MaxDurationSeconds == 0 {
		m.MaxDurationSeconds = DefaultMaxDuration
	}
	if m.Mode == "" {
		m.Mode = ModeEnforce
	}
	m.Warnings = nil // read-only: computed, never taken from input
}

// ValidName reports whether s follows the naming rule of issuers and
// mappings: 1-64 characters of a-z, 0-9, '.', '_' and '-', starting with a
// letter or digit. Names appear in URLs, logs and metric labels.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > maxNameLen || !isLowerAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isLowerAlnum(c) && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

const nameRule = "must be 1-64 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit"

// ValidateIssuer checks an issuer as the admin API receives it and returns a
// *ValidationError naming the first field at fault. It does not apply the
// https-or-loopback rule for url (identity.ValidateIssuerURL does, in the
// caller), nor does it look for duplicates in the store.
func ValidateIssuer(is *Issuer) error {
	if is == nil {
		return invalid("", "an issuer object is required")
	}
	if !ValidName(is.Name) {
		return invalid("name", nameRule)
	}
	if err := validateIssuerURL(is.URL); err != nil {
		return err
	}
	if len(is.Audiences) == 0 {
		return invalid("audiences", "at least one audience is required")
	}
	for i, a := range is.Audiences {
		field := fmt.Sprintf("audiences[%d]", i)
		if err := checkAudience(field, a); err != nil {
			return err
		}
		if slices.Contains(is.Audiences[:i], a) {
			return invalid(field, "duplicate audience %q", a)
		}
	}
	if !identity.Kind(is.Kind).Valid() {
		return invalid("kind", "must be %s", kindChoices())
	}
	if why := identity.CheckIssuerURL(identity.Kind(is.Kind), is.URL); why != "" {
		return invalid("url", "%s", why)
	}
	if err := validateIssuerKeys(is); err != nil {
		return err
	}
	return validateIssuerReplayAndLimits(is)
}

func validateIssuerURL(s string) error {
	const field = "url"
	if s == "" {
		return invalid(field, "is required")
	}
	if hasSpaceOrControl(s) {
		return invalid(field, "must not contain whitespace or control characters")
	}
	u, err := url.Parse(s)
	if err != nil {
		return invalid(field, "is not a valid URL")
	}
	switch {
	case !u.IsAbs() || u.Opaque != "" || u.Hostname() == "":
		return invalid(field, "must be an absolute URL with a host, like https://token.actions.githubusercontent.com")
	case u.User != nil:
		return invalid(field, "must not contain user information")
	case u.RawQuery != "" || u.ForceQuery:
		return invalid(field, "must not have a query")
	case u.Fragment != "" || strings.Contains(s, "#"):
		return invalid(field, "must not have a fragment")
	}
	return nil
}

func checkAudience(field, a string) error {
	if why := providers.AudienceProblem(a); why != "" {
		return invalid(field, "%s", why)
	}
	return nil
}

// ValidateOptions is what ValidateMapping knows of the deployment. The zero
// value is the lenient reading, for callers that cannot know it (Terraform's
// offline plan): the bridge's server, which does, may still refuse what it
// admits.
type ValidateOptions struct {
	// Providers checks each provider's part of a mapping: Providers() with
	// the specs the deployment configures (aws.Spec{RoleChaining: true}).
	// The zero Registry means Providers().
	Providers providers.Registry
}

// ValidateMapping checks a mapping as the admin API receives it (after
// Normalize) for a mapping of an issuer of kind issuerKind, and returns a
// *ValidationError naming the first field at fault. It does not check that
// the issuer exists. An issuerKind other than generic (an unknown one
// included) gets the github/gitlab rules, the stricter ones. opts, at most
// one, says what the caller knows of the deployment; without it, the
// lenient reading (the zero ValidateOptions).
func ValidateMapping(m *Mapping, issuerKind identity.Kind, opts ...ValidateOptions) error {
	var o ValidateOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	if m == nil {
		return invalid("", "a mapping object is required")
	}
	if !ValidName(m.Name) {
		return invalid("name", nameRule)
	}
	if m.Issuer == "" {
		return invalid("issuer", "is required")
	}
	if !ValidName(m.Issuer) {
		return invalid("issuer", "must be the name of a registered issuer")
	}
	if err := validateConditions(&m.Conditions, issuerKind); err != nil {
		return err
	}
	reg := o.Providers
	if len(reg.Names()) == 0 {
		reg = Providers()
	}
	spec, err := providerOf(reg, m.Provider)
	if err != nil {
		return err
	}
	// A templated target is checked with sample values (providers.CheckTarget).
	checked, err := providers.CheckTarget(spec, m.Target)
	if err != nil {
		return fieldError(err)
	}
	if lo, hi := spec.DurationBounds(); m.MaxDurationSeconds < lo || m.MaxDurationSeconds > hi {
		return invalid("max_duration_seconds", "must be between %d and %d for provider %s (0 means %d)", lo, hi, m.Provider, DefaultMaxDuration)
	}
	if err := spec.CheckMapping(providers.Mapping{Name: m.Name, Target: checked, MaxDurationSeconds: m.MaxDurationSeconds}); err != nil {
		return fieldError(err)
	}
	if q := m.Quota; q != nil {
		if q.PerHour < 0 {
			return invalid("quota.per_hour", "must be 0 (no limit) or more")
		}
		if q.PerJob < 0 {
			return invalid("quota.per_job", "must be 0 (no limit) or more")
		}
	}
	switch m.Mode {
	case "", ModeEnforce, ModeAudit:
	default:
		return invalid("mode", "must be %s (the default) or %s", ModeEnforce, ModeAudit)
	}
	return nil
}

// Names a claims condition may not use. Registered JWT claims are verified,
// not matched; the others are the claims a first-class condition reads for
// some registered kind (identity.Condition.Claims), which it normalises
// (GitLab's bare ref becomes refs/heads/x, repository compares
// case-insensitively), so matching the raw claim would be a weaker
// duplicate. A registered claim keeps its own reason (azure_devops'
// workflow_ref reads sub, which no claims condition matches either way).
var refusedClaimNames = func() map[string]string {
	m := map[string]string{
		"iss": "is checked when the token is verified",
		"aud": "is checked when the token is verified",
		"exp": "is checked when the token is verified",
		"iat": "is checked when the token is verified",
		"nbf": "is checked when the token is verified",
		"jti": "is checked when the token is verified (replay)",
		"sub": "cannot be matched: its format varies between issuers and over time; match discrete claims " +
			"such as repository_id, ref and environment instead",
	}
	registeredClaims := maps.Clone(m)
	for _, p := range identity.Platforms() {
		for _, cd := range p.Conditions() {
			for _, claim := range cd.Claims {
				if _, registered := registeredClaims[claim]; registered {
					continue
				}
				why := "use conditions." + cd.Name
				if claim == identity.ConditionRef && cd.Name == identity.ConditionRef {
					why += " (the full ref, refs/heads/... or refs/tags/...)"
				}
				m[claim] = why
			}
		}
	}
	return m
}()

func validateConditions(c *Conditions, kind identity.Kind) error {
	checks := []struct {
		name  string
		v     *Values
		check func(field, p string) error
	}{
		{"repository", c.Repository, checkRepositoryPattern},
		{"repository_id", c.RepositoryID, checkRepositoryID},
		{"ref", c.Ref, checkRefPattern},
		{"environment", c.Environment, nil},
		{"event_name", c.EventName, nil},
		{"workflow_ref", c.WorkflowRef, nil},
	}
	k := rulesOf(kind)
	for i, ch := range checks {
		if ch.v == nil {
			continue
		}
		if k.compare[i] == nil {
			return invalid("conditions."+ch.name, "tokens of a %s issuer carry nothing this condition reads (its conditions: %s); use claims conditions",
				kind, k.conditionList())
		}
		if err := validateValues("conditions."+ch.name, ch.v, ch.check); err != nil {
			return err
		}
	}

	if len(c.Claims) > maxClaimConditions {
		return invalid("conditions.claims", "at most %d claims", maxClaimConditions)
	}
	names := make([]string, 0, len(c.Claims))
	for name := range c.Claims {
		names = append(names, name)
	}
	slices.Sort(names) // the first error must not depend on map order
	for _, name := range names {
		field := "conditions.claims." + name
		if isPointer(name) {
			if why := checkPointer(name); why != "" {
				return invalid(field, "%s", why)
			}
		} else if !validClaimName(name) {
			return invalid("conditions.claims", "claim names must be 1-%d printable ASCII characters without spaces (or a JSON Pointer starting with '/'), got %q", maxClaimNameLen, name)
		} else if why, refused := refusedClaimNames[name]; refused {
			return invalid(field, "%s", why)
		}
		v := c.Claims[name]
		if err := validateClaimValues(field, &v); err != nil {
			return err
		}
	}

	if !c.constrains(k) {
		return invalid(k.breadthField(), "%s", k.breadth.Message)
	}
	return nil
}

// validateClaimValues validates a claims condition: strings follow the rules
// of every pattern; booleans and numbers are valid JSON of their type. A
// list holds values of one type (field: the claim, without an index).
func validateClaimValues(field string, v *Values) error {
	if v.Invalid != "" {
		f, why, _ := strings.Cut(v.Invalid, ": ")
		return invalid(field+f, "%s", why)
	}
	switch v.typ() {
	case TypeString:
		return validateValues(field, v, nil)
	case TypeBoolean, TypeNumber:
	default:
		return invalid(field, "unknown value type %q: must be a string, a boolean or a number", v.Type)
	}
	return eachValue(field, v, func(f, p string) error {
		if v.Type == TypeBoolean && p != "true" && p != "false" {
			return invalid(f, "must be true or false")
		}
		if v.Type == TypeNumber {
			if len(p) > maxPatternLen {
				return invalid(f, "must be at most %d bytes", maxPatternLen)
			}
			c, ok := canonicalNumber(p)
			if !ok {
				return invalid(f, "must be a JSON number")
			}
			if !numberInRange(c) {
				return invalid(f, "must be a number whose decimal exponent is within -%d..%d", maxNumberExp, maxNumberExp)
			}
		}
		return nil
	})
}

// eachValue checks how many values v holds, then calls check with each
// value and its field, which names the value's index when the admin wrote a
// list.
func eachValue(field string, v *Values, check func(field, p string) error) error {
	if len(v.Patterns) == 0 {
		return invalid(field, "must hold at least one value")
	}
	if len(v.Patterns) > maxPatterns {
		return invalid(field, "at most %d values", maxPatterns)
	}
	for i, p := range v.Patterns {
		f := field
		if v.List || len(v.Patterns) != 1 {
			f = fmt.Sprintf("%s[%d]", field, i)
		}
		if err := check(f, p); err != nil {
			return err
		}
	}
	return nil
}

// validateValues applies the rules every pattern follows, then check (if any)
// to each pattern. Fields name the pattern's index when the admin wrote a list.
// The values must be strings.
func validateValues(field string, v *Values, check func(field, p string) error) error {
	if v.Invalid != "" || v.typ() != TypeString {
		return invalid(field, "must be a string or a list of strings")
	}
	return eachValue(field, v, func(f, p string) error {
		switch {
		case p == "":
			return invalid(f, "must not be empty")
		case len(p) > maxPatternLen:
			return invalid(f, "must be at most %d bytes", maxPatternLen)
		case !printableASCII(p):
			return invalid(f, "must be printable ASCII (no control characters, newlines or non-ASCII)")
		case strings.Contains(p, "***"):
			return invalid(f, "three or more '*' in a row mean nothing more than '**'; write '**'")
		}
		if check != nil {
			return check(f, p)
		}
		return nil
	})
}

// checkRepositoryPattern enforces that a repository pattern names its owner
// (GitHub) or top-level namespace (GitLab) literally: "acme/web", "acme/*" and
// "acme/**" are fine; "*", "**/web", "*/web" and "ac*/web" would trust
// anybody able to create an account with a fitting name.
func checkRepositoryPattern(field, p string) error {
	owner, rest, found := strings.Cut(p, "/")
	if !found || owner == "" || HasWildcard(owner) {
		return invalid(field, "must name the owner or namespace literally, like acme/web, acme/* or acme/**")
	}
	for _, seg := range append([]string{owner}, strings.Split(rest, "/")...) {
		if seg == "" {
			return invalid(field, "must not have empty path segments")
		}
		if seg == "." || seg == ".." {
			return invalid(field, "must not have '.' or '..' segments")
		}
		for i := 0; i < len(seg); i++ {
			if c := seg[i]; !isRepoChar(c) && c != '*' && c != '?' {
				return invalid(field, "repository names are made of A-Z, a-z, 0-9, '.', '_' and '-' (and '*', '?' as wildcards)")
			}
		}
	}
	return nil
}

func checkRepositoryID(field, p string) error {
	if !providers.Digits(p) {
		return invalid(field, "must be the repository's (or project's) numeric id, decimal digits only; patterns are not allowed")
	}
	if len(p) > 1 && p[0] == '0' {
		return invalid(field, "must be written without leading zeros, as the token carries it")
	}
	if len(p) > 20 {
		return invalid(field, "is too long for a repository id")
	}
	return nil
}

func checkRefPattern(field, p string) error {
	if !strings.HasPrefix(p, "refs/") {
		return invalid(field, "must be a full ref starting with refs/, like refs/heads/main or refs/tags/v*")
	}
	return nil
}

// providerOf returns the spec of the provider a mapping names.
func providerOf(reg providers.Registry, name string) (providers.Spec, error) {
	if name == "" {
		return nil, invalid("provider", "is required: %s", reg.Choices())
	}
	spec, ok := reg.Lookup(name)
	if !ok {
		return nil, invalid("provider", "must be %s", reg.Choices())
	}
	return spec, nil
}

// fieldError turns a provider's refusal into the admin API's.
func fieldError(err error) error {
	var fe *providers.FieldError
	if errors.As(err, &fe) {
		return &ValidationError{Field: fe.Field, Message: fe.Message}
	}
	return invalid("target", "%s", err)
}

func validClaimName(s string) bool {
	if s == "" || len(s) > maxClaimNameLen {
		return false
	}
	return providers.AllBytes(s, func(c byte) bool { return c > ' ' && c < 0x7f })
}

func printableASCII(s string) bool {
	return providers.AllBytes(s, func(c byte) bool { return c >= ' ' && c < 0x7f })
}

func hasSpaceOrControl(s string) bool {
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return true
		}
	}
	return false
}

func isLowerAlnum(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }

func isAlnum(c byte) bool { return isLowerAlnum(c) || 'A' <= c && c <= 'Z' }

func isRepoChar(c byte) bool { return isAlnum(c) || c == '.' || c == '_' || c == '-' }
