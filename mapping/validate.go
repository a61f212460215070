package mapping

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

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
	maxAudienceLen     = 512
	maxTargetLen       = 16 << 10
)

// DurationBounds returns the range of max_duration_seconds a provider
// accepts, in seconds, and false for an unknown provider:
//   - aws 900..43200: AssumeRoleWithWebIdentity's own limits (15 min to 12 h;
//     the role's MaxSessionDuration may still cut it shorter);
//   - gcp 60..43200: generateAccessToken's lifetime range; above 3600 only
//     with target.allow_lifetime_extension (the
//     constraints/iam.allowServiceAccountCredentialLifetimeExtension org
//     policy lists the account; checkGCPMapping);
//   - azure 60..86400: Entra ID decides an access token's lifetime itself
//     (typically 60-90 minutes); the value only caps what a caller may ask
//     for and bounds the client assertion;
//   - jwt 60..86400: tokens the bridge signs; a day is the most a pipeline
//     credential should live.
func DurationBounds(provider string) (lo, hi int, ok bool) {
	switch provider {
	case ProviderAWS:
		return 900, 43200, true
	case ProviderGCP:
		return 60, 43200, true
	case ProviderAzure, ProviderJWT:
		return 60, 86400, true
	}
	return 0, 0, false
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
	switch {
	case a == "":
		return invalid(field, "must not be empty")
	case len(a) > maxAudienceLen:
		return invalid(field, "must be at most %d bytes", maxAudienceLen)
	case !utf8.ValidString(a):
		return invalid(field, "must be valid UTF-8")
	case hasSpaceOrControl(a):
		return invalid(field, "must not contain whitespace or control characters")
	}
	return nil
}

// ValidateOptions is what ValidateMapping knows of the deployment. The zero
// value is the lenient reading, for callers that cannot know it (Terraform's
// offline plan): the bridge's server, which does, may still refuse what it
// admits.
type ValidateOptions struct {
	// AWSRoleChaining says that the bridge's own AWS credentials are a role
	// session (BRIDGE_AWS_ROLE_CHAINING, true unless the bridge runs with an
	// IAM user's keys), so that its AssumeRole is role chaining, which AWS
	// refuses for DurationSeconds over 3600: an assume_role mapping may then
	// not ask for more.
	AWSRoleChaining bool
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
	if err := validateTarget(m.Provider, m.Target); err != nil {
		return err
	}
	lo, hi, _ := DurationBounds(m.Provider)
	if d := m.MaxDurationSeconds; d < lo || d > hi {
		return invalid("max_duration_seconds", "must be between %d and %d for provider %s (0 means %d)", lo, hi, m.Provider, DefaultMaxDuration)
	}
	if err := checkCloudMapping(m); err != nil {
		return err
	}
	if err := checkAWSChainedDuration(m, o); err != nil {
		return err
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
// duplicate.
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
	for _, p := range identity.Platforms() {
		for _, cd := range p.Conditions() {
			for _, claim := range cd.Claims {
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
	for _, ch := range checks {
		if ch.v == nil {
			continue
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
		if !validClaimName(name) {
			return invalid("conditions.claims", "claim names must be 1-%d printable ASCII characters without spaces, got %q", maxClaimNameLen, name)
		}
		if why, refused := refusedClaimNames[name]; refused {
			return invalid(field, "%s", why)
		}
		v := c.Claims[name]
		if err := validateClaimValues(field, &v); err != nil {
			return err
		}
	}

	if k := rulesOf(kind); !c.constrains(k) {
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
	if !allDigits(p) {
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

// validateTarget decodes raw strictly into the provider's target type and
// checks its fields. Strictly means: a single JSON object, keys spelt exactly
// as documented (encoding/json would otherwise accept "Role_ARN"), no unknown
// or repeated keys, no trailing data. The provider later decodes the same
// bytes, so nothing may be read one way here and another way there.
func validateTarget(provider string, raw json.RawMessage) error {
	var target any
	switch provider {
	case ProviderAWS:
		target = &AWSTarget{}
	case ProviderGCP:
		target = &GCPTarget{}
	case ProviderAzure:
		target = &AzureTarget{}
	case ProviderJWT:
		target = &JWTTarget{}
	case "":
		return invalid("provider", "is required: aws, gcp, azure or jwt")
	default:
		return invalid("provider", "must be aws, gcp, azure or jwt")
	}
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return invalid("target", "is required")
	}
	if len(raw) > maxTargetLen {
		return invalid("target", "must be at most %d bytes", maxTargetLen)
	}
	if err := checkObjectKeys("target", raw, jsonFieldNames(target)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(target); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			name, _, _ := strings.Cut(te.Field, ".")
			return invalid("target."+name, "must be a JSON %s", jsonFieldKind(target, name))
		}
		return invalid("target", "is not a valid %s target object", provider)
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalid("target", "must be a single JSON object")
	}
	switch t := target.(type) {
	case *AWSTarget:
		return checkAWSTarget(t, raw)
	case *GCPTarget:
		return checkGCPTarget(t)
	case *AzureTarget:
		return checkAzureTarget(t)
	case *JWTTarget:
		return checkJWTTarget(t)
	}
	return nil
}

// checkObjectKeys requires raw to be a JSON object whose keys are all in
// allowed, spelt exactly, each at most once.
func checkObjectKeys(field string, raw []byte, allowed []string) error {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return invalid(field, "must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // {
		return invalid(field, "must be a JSON object")
	}
	seen := make(map[string]bool, len(obj))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return invalid(field, "must be a JSON object")
		}
		key, _ := tok.(string)
		if !slices.Contains(allowed, key) {
			return invalid(field, "unknown field %q; %s takes %s", key, field, strings.Join(allowed, ", "))
		}
		if seen[key] {
			return invalid(field+"."+key, "appears more than once")
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return invalid(field, "must be a JSON object")
		}
	}
	return nil
}

func jsonFieldNames(v any) []string {
	t := reflect.TypeOf(v).Elem()
	names := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return names
}

// jsonFieldKind describes the JSON type of the field of struct *v named
// name in JSON.
func jsonFieldKind(v any, name string) string {
	t := reflect.TypeOf(v).Elem()
	for i := range t.NumField() {
		if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); tag == name {
			switch ft := t.Field(i).Type; ft.Kind() {
			case reflect.String:
				return "string"
			case reflect.Bool:
				return "boolean"
			case reflect.Slice:
				if ft.Elem().Kind() == reflect.String {
					return "list of strings"
				}
				return "list"
			case reflect.Map, reflect.Struct:
				return "object"
			}
		}
	}
	return "value of another type"
}

var awsPartitions = []string{"aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f", "aws-eusc"}

func checkAWSTarget(t *AWSTarget, raw json.RawMessage) error {
	switch t.Mode {
	case "", AWSModeAssumeRole:
	case AWSModeWebIdentity:
		if t.ExternalID != "" {
			return invalid("target.external_id", "applies to mode assume_role only: AssumeRoleWithWebIdentity takes no external id")
		}
	default:
		return invalid("target.mode", "must be %s (the default) or %s", AWSModeAssumeRole, AWSModeWebIdentity)
	}
	if err := checkRoleARN(t.RoleARN); err != nil {
		return err
	}
	if !validAWSRegion(t.Region) {
		return invalid("target.region", "must be an AWS region like eu-west-1")
	}
	if t.SessionPolicy != "" {
		if err := checkSessionPolicy(t.SessionPolicy); err != nil {
			return err
		}
	}
	// ExternalId: 2-1224 characters of [\w+=,.@:\/-]
	// (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html).
	if t.ExternalID != "" {
		if n := len(t.ExternalID); n < 2 || n > 1224 || !allIn(t.ExternalID, isExternalIDChar) {
			return invalid("target.external_id", "must be 2-1224 characters of A-Z, a-z, 0-9, '_', '+', '=', ',', '.', '@', ':', '/' and '-'")
		}
	}
	if err := checkAWSSessionTags(t, raw); err != nil {
		return err
	}
	return checkPackedSize(t)
}

// checkRoleARN accepts arn:<partition>:iam::<12 digits>:role/<path><name>,
// with AWS's rules for role names ([\w+=,.@-]{1,64}) and paths (printable
// ASCII segments, 512 bytes at most).
func checkRoleARN(arn string) error {
	const field = "target.role_arn"
	const want = "must be an IAM role ARN like arn:aws:iam::123456789012:role/deploy"
	if arn == "" {
		return invalid(field, "is required")
	}
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || !slices.Contains(awsPartitions, parts[1]) ||
		parts[2] != "iam" || parts[3] != "" || len(parts[4]) != 12 || !allDigits(parts[4]) {
		return invalid(field, want)
	}
	resource, ok := strings.CutPrefix(parts[5], "role/")
	if !ok {
		return invalid(field, want)
	}
	path, name := "", resource
	i := strings.LastIndexByte(resource, '/')
	if i >= 0 {
		path, name = resource[:i], resource[i+1:]
	}
	if name == "" || len(name) > 64 || !allIn(name, isRoleNameChar) {
		return invalid(field, "the role name must be 1-64 characters of A-Z, a-z, 0-9, '_', '+', '=', ',', '.', '@' and '-'")
	}
	if i >= 0 {
		if len(path) > 510 {
			return invalid(field, "the role path is too long")
		}
		for seg := range strings.SplitSeq(path, "/") {
			if seg == "" || !allIn(seg, func(c byte) bool { return c > ' ' && c < 0x7f }) {
				return invalid(field, "the role path must be non-empty segments of printable ASCII")
			}
		}
	}
	return nil
}

// validAWSRegion accepts <2-4 letters>(-<letters>)+-<1-2 digits>: eu-west-1,
// us-gov-west-1, cn-north-1, us-isob-east-1, eusc-de-east-1.
func validAWSRegion(r string) bool {
	parts := strings.Split(r, "-")
	if len(parts) < 3 || len(parts[0]) < 2 || len(parts[0]) > 4 {
		return false
	}
	last := parts[len(parts)-1]
	if len(last) == 0 || len(last) > 2 || !allDigits(last) {
		return false
	}
	for _, p := range parts[:len(parts)-1] {
		if p == "" || !allIn(p, func(c byte) bool { return 'a' <= c && c <= 'z' }) {
			return false
		}
	}
	return true
}

func validHTTPSURL(s string) bool {
	if s == "" || len(s) > 2048 || hasSpaceOrControl(s) || !utf8.ValidString(s) {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && u.Scheme == "https" && u.Host != "" && u.Opaque == "" &&
		u.User == nil && u.Fragment == "" && !strings.Contains(s, "#")
}

// validAzureScope accepts the client-credentials scope form
// <resource URI>/.default, where the resource URI is https://host[/path] or
// api://<app id or name>; no query, fragment or user information.
func validAzureScope(s string) bool {
	if len(s) > 2048 || hasSpaceOrControl(s) || !utf8.ValidString(s) || !strings.HasSuffix(s, "/.default") {
		return false
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" || u.User != nil || u.RawQuery != "" || u.ForceQuery ||
		u.Fragment != "" || strings.Contains(s, "#") {
		return false
	}
	return u.Scheme == "https" || u.Scheme == "api"
}

func validGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// reservedJWTClaims are the claims the bridge sets itself in the tokens of
// the jwt provider; a jwt target may not override them. providers/jwt's
// tests keep this list equal to the provider's own.
var reservedJWTClaims = []string{
	"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "act",
	"src_iss", "src_sub", "mapping",
	"ci_issuer", "ci_subject", "ci_kind", "service_account", "issuance_id",
	"repository", "repository_id", "repository_owner", "ref", "ref_type", "sha",
	"environment", "event_name", "workflow_ref", "actor", "run_id", "run_attempt", "job_id",
}

// ReservedJWTClaims returns the claims a jwt target's static claims may
// not name.
func ReservedJWTClaims() []string { return slices.Clone(reservedJWTClaims) }

func checkJWTTarget(t *JWTTarget) error {
	if t.Audience == "" {
		return invalid("target.audience", "is required")
	}
	if err := checkAudience("target.audience", t.Audience); err != nil {
		return err
	}
	// The bridge signs its cloud assertions with the same key and issuer:
	// a jwt token for a cloud's audience could be presented there.
	if providers.CloudAudience(t.Audience) {
		return invalid("target.audience", "is a cloud's federation audience (AWS STS, Entra ID, Google); "+
			"the jwt provider signs tokens for the bridge's own internal services only")
	}
	names := make([]string, 0, len(t.Claims))
	for name := range t.Claims {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if name == "" {
			return invalid("target.claims", "claim names must not be empty")
		}
		if slices.Contains(reservedJWTClaims, name) || providers.CloudClaim(name) {
			return invalid("target.claims."+name, "is set by the bridge and cannot be overridden")
		}
	}
	return nil
}

func validClaimName(s string) bool {
	if s == "" || len(s) > maxClaimNameLen {
		return false
	}
	return allIn(s, func(c byte) bool { return c > ' ' && c < 0x7f })
}

func printableASCII(s string) bool {
	return allIn(s, func(c byte) bool { return c >= ' ' && c < 0x7f })
}

func hasSpaceOrControl(s string) bool {
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return true
		}
	}
	return false
}

func allIn(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	return s != "" && allIn(s, func(c byte) bool { return '0' <= c && c <= '9' })
}

func isLowerAlnum(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }

func isAlnum(c byte) bool { return isLowerAlnum(c) || 'A' <= c && c <= 'Z' }

func isRepoChar(c byte) bool { return isAlnum(c) || c == '.' || c == '_' || c == '-' }

func isRoleNameChar(c byte) bool {
	return isAlnum(c) || strings.IndexByte("_+=,.@-", c) >= 0
}

func isExternalIDChar(c byte) bool {
	return isRoleNameChar(c) || c == ':' || c == '/'
}
