package gcp

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/oidc-bridge/oidc-bridge/providers"
)

// Name is the provider's name in mappings.
const Name = "gcp"

// The target's modes. impersonate (the default) calls generateAccessToken
// with the bridge's Application Default Credentials; workload_identity
// first exchanges a bridge-signed JWT at Google's STS for a federated token
// (through the target's workload identity pool provider), so the bridge
// holds no Google key.
const (
	modeImpersonate      = "impersonate"
	modeWorkloadIdentity = "workload_identity"
)

// Google's limits on what a gcp mapping decides, each with its source. The
// admin API refuses a mapping that breaks one (400 invalid_request naming the
// field), so that Google never has to.
const (
	// MaxLifetime is the longest access token generateAccessToken grants
	// by default, and MaxExtendedLifetime the longest it grants to a
	// service account that an organisation policy enforcing
	// LifetimeConstraint lists. Source: IAM Service Account Credentials
	// API, projects.serviceAccounts.generateAccessToken, field lifetime ("By
	// default, the maximum allowed value is 1 hour. To set a lifetime of up
	// to 12 hours, you can add the service account as an allowed value in an
	// Organization Policy that enforces the
	// constraints/iam.allowServiceAccountCredentialLifetimeExtension
	// constraint"),
	// https://cloud.google.com/iam/docs/reference/credentials/rest/v1/projects.serviceAccounts/generateAccessToken
	MaxLifetime         = 3600
	MaxExtendedLifetime = 43200
	LifetimeConstraint  = "constraints/iam.allowServiceAccountCredentialLifetimeExtension"

	// maxSubject is the most bytes google.subject may hold once the
	// attribute mapping ran ("The size of mapped attribute google.subject
	// exceeds the 127 bytes limit"), https://cloud.google.com/iam/docs/workload-identity-federation#mapping.
	// The bridge's assertion carries Subject(mapping name).
	maxSubject = 127
	// maxAudience: a workload identity pool provider's allowed audiences
	// are at most 256 characters each (WorkloadIdentityPoolProvider.Oidc.
	// allowed_audiences), and one that has any must list the bridge's aud
	// (Audience of the provider's name),
	// https://cloud.google.com/iam/docs/reference/rest/v1/projects.locations.workloadIdentityPools.providers#oidc.
	maxAudience = 256
	// maxDelegates bounds a delegation chain and maxScopes the scopes.
	// Google documents no limit; these are the bridge's own, so that a
	// target cannot grow a request without bound.
	maxDelegates = 16
	maxScopes    = 64
	// maxIDTokenAudience bounds id_token_audience. Google documents no
	// limit for generateIdToken's audience; this is the bridge's own, the
	// length of the longest URL it takes elsewhere.
	maxIDTokenAudience = 2048
	// IDTokenLifetime is how long the ID tokens of generateIdToken live:
	// Google sets it (one hour) and the request has no lifetime field,
	// https://cloud.google.com/iam/docs/reference/credentials/rest/v1/projects.serviceAccounts/generateIdToken.
	IDTokenLifetime = 3600
)

// The target's token formats: an OAuth access token (generateAccessToken,
// the default) or an OpenID Connect ID token signed by Google for the
// service account (generateIdToken), for Cloud Run, Cloud Functions and
// IAP, which take ID tokens rather than access tokens.
const (
	formatAccessToken = "access_token"
	formatIDToken     = "id_token"
)

// DefaultUniverseDomain is the universe of Google Cloud's public cloud.
// Other universes (Trusted Partner Clouds such as S3NS, s3nsapis.fr) serve
// IAM Credentials at iamcredentials.UNIVERSE and STS at sts.UNIVERSE.
const DefaultUniverseDomain = "googleapis.com"

// target is a gcp mapping's target. decodeTarget is the only way one is
// read, at write time (Spec.CheckTarget) as at mint time.
type target struct {
	ServiceAccount string
	// Scopes are never empty once decoded: none means DefaultScope.
	Scopes    []string
	Delegates []string
	// Mode is impersonate or workload_identity, never empty once decoded.
	Mode string
	// WorkloadIdentityProvider is the full resource name of the workload
	// identity pool provider that trusts the bridge, required for
	// workload_identity: //iam.googleapis.com/projects/NUMBER/locations/
	// global/workloadIdentityPools/POOL/providers/PROVIDER.
	WorkloadIdentityProvider string
	// AllowLifetimeExtension says that the organisation policy
	// LifetimeConstraint lists the service account, so that Google grants
	// it tokens of up to 12 hours; without it max_duration_seconds is at
	// most MaxLifetime.
	AllowLifetimeExtension bool
	// TokenFormat is access_token or id_token, never empty once decoded.
	TokenFormat string
	// IDTokenAudience is the aud of the ID token, required for (and
	// only for) id_token: a Cloud Run service's URL, an IAP OAuth client
	// id.
	IDTokenAudience string
	// IncludeEmail asks for the email and email_verified claims in the ID
	// token (id_token only).
	IncludeEmail bool
	// UniverseDomain is the Google Cloud universe of the service account,
	// DefaultUniverseDomain once decoded.
	UniverseDomain string
}

// decodeTarget reads raw strictly (providers.DecodeTarget) and applies the
// target's rules; its errors are the admin API's (*providers.FieldError).
// Absent or empty scopes mean DefaultScope; an absent mode means
// impersonate.
func decodeTarget(raw []byte) (target, error) {
	var t target
	if err := providers.DecodeTarget(Name, raw, []providers.Field{
		{Key: "service_account", Dst: &t.ServiceAccount},
		{Key: "scopes", Dst: &t.Scopes},
		{Key: "delegates", Dst: &t.Delegates},
		{Key: "mode", Dst: &t.Mode},
		{Key: "workload_identity_provider", Dst: &t.WorkloadIdentityProvider},
		{Key: "allow_lifetime_extension", Dst: &t.AllowLifetimeExtension},
		{Key: "token_format", Dst: &t.TokenFormat},
		{Key: "id_token_audience", Dst: &t.IDTokenAudience},
		{Key: "include_email", Dst: &t.IncludeEmail},
		{Key: "universe_domain", Dst: &t.UniverseDomain},
	}); err != nil {
		return t, err
	}
	if err := t.check(); err != nil {
		return t, err
	}
	if t.Mode == "" {
		t.Mode = modeImpersonate
	}
	if t.TokenFormat == "" {
		t.TokenFormat = formatAccessToken
	}
	if t.UniverseDomain == "" {
		t.UniverseDomain = DefaultUniverseDomain
	}
	if len(t.Scopes) == 0 && t.TokenFormat == formatAccessToken {
		t.Scopes = []string{DefaultScope}
	}
	return t, nil
}

func invalid(field, format string, args ...any) error {
	return providers.Invalid(Name, field, format, args...)
}

// maxLifetime is the longest token Google grants t's service account, in
// seconds.
func (t *target) maxLifetime() int {
	if t.TokenFormat == formatIDToken {
		return IDTokenLifetime
	}
	if t.AllowLifetimeExtension {
		return MaxExtendedLifetime
	}
	return MaxLifetime
}

const serviceAccountRule = "must be a service account email: name@PROJECT_ID.iam.gserviceaccount.com (name and " +
	"project id 6-30 characters of a-z, 0-9 and '-', starting with a letter; a domain-scoped project example.com:proj " +
	"as proj.example.com), PROJECT_NUMBER-compute@developer.gserviceaccount.com, PROJECT_ID@appspot.gserviceaccount.com, " +
	"or the account's 21-digit unique id"

func (t *target) check() error {
	switch t.Mode {
	case "", modeImpersonate:
		if t.WorkloadIdentityProvider != "" {
			return invalid("target.workload_identity_provider", "applies to mode %s only", modeWorkloadIdentity)
		}
	case modeWorkloadIdentity:
		if !validWorkloadIdentityProvider(t.WorkloadIdentityProvider) {
			return invalid("target.workload_identity_provider",
				"must be //iam.googleapis.com/projects/NUMBER/locations/global/workloadIdentityPools/POOL/providers/PROVIDER")
		}
		if aud := Audience(t.WorkloadIdentityProvider); len(aud) > maxAudience {
			return invalid("target.workload_identity_provider", "makes the assertion's audience %d characters long; Google's allowed audiences hold at most %d", len(aud), maxAudience)
		}
	default:
		return invalid("target.mode", "must be %s (the default) or %s", modeImpersonate, modeWorkloadIdentity)
	}
	if t.ServiceAccount == "" {
		return invalid("target.service_account", "is required")
	}
	if !validServiceAccount(t.ServiceAccount) {
		return invalid("target.service_account", serviceAccountRule)
	}
	if len(t.Scopes) > maxScopes {
		return invalid("target.scopes", "at most %d scopes", maxScopes)
	}
	for i, s := range t.Scopes {
		if !validHTTPSURL(s) {
			return invalid(fmt.Sprintf("target.scopes[%d]", i), "must be an https URL like https://www.googleapis.com/auth/cloud-platform")
		}
	}
	if err := t.checkFormat(); err != nil {
		return err
	}
	if t.UniverseDomain != "" && !validUniverseDomain(t.UniverseDomain) {
		return invalid("target.universe_domain", "must be a Google Cloud universe's domain like %s (the default) or "+
			"s3nsapis.fr: lowercase DNS labels, no scheme, port or path", DefaultUniverseDomain)
	}
	if len(t.Delegates) > maxDelegates {
		return invalid("target.delegates", "at most %d delegates", maxDelegates)
	}
	for i, d := range t.Delegates {
		field := fmt.Sprintf("target.delegates[%d]", i)
		switch {
		case !validServiceAccount(d):
			return invalid(field, serviceAccountRule)
		case d == t.ServiceAccount:
			return invalid(field, "is the target service account itself; delegates are the accounts before it in the chain")
		case slices.Contains(t.Delegates[:i], d):
			return invalid(field, "duplicate delegate %q", d)
		}
	}
	return nil
}

// checkFormat applies token_format's rules: an ID token has an audience
// and no scopes (generateIdToken takes none: the audience is what the
// token is for) and always lives Google's hour.
func (t *target) checkFormat() error {
	switch t.TokenFormat {
	case "", formatAccessToken:
		switch {
		case t.IDTokenAudience != "":
			return invalid("target.id_token_audience", "applies to token_format %s only", formatIDToken)
		case t.IncludeEmail:
			return invalid("target.include_email", "applies to token_format %s only", formatIDToken)
		}
		return nil
	case formatIDToken:
	default:
		return invalid("target.token_format", "must be %s (the default) or %s", formatAccessToken, formatIDToken)
	}
	switch {
	case t.IDTokenAudience == "":
		return invalid("target.id_token_audience", "is required with token_format %s: the service the token is for, "+
			"such as a Cloud Run service's URL (https://hello-abc123-ew.a.run.app) or an IAP OAuth client id", formatIDToken)
	case !validIDTokenAudience(t.IDTokenAudience):
		return invalid("target.id_token_audience", "must be at most %d printable characters without spaces; "+
			"a URL must be an absolute http(s) URL without user information or fragment", maxIDTokenAudience)
	case len(t.Scopes) > 0:
		return invalid("target.scopes", "apply to token_format %s only: an ID token has an audience, not scopes", formatAccessToken)
	case t.AllowLifetimeExtension:
		return invalid("target.allow_lifetime_extension", "applies to token_format %s only: Google's ID tokens "+
			"always live %d seconds", formatAccessToken, IDTokenLifetime)
	}
	return nil
}

// validIDTokenAudience accepts what generateIdToken takes as an audience:
// any non-empty string (an IAP client id, a custom audience), bounded and
// printable here; one that looks like a URL (it has "://") must be an
// absolute http(s) URL, as Cloud Run and Cloud Functions compare the
// service's URL.
func validIDTokenAudience(s string) bool {
	if s == "" || len(s) > maxIDTokenAudience || !utf8.ValidString(s) ||
		strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) {
		return false
	}
	if !strings.Contains(s, "://") {
		return true
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && u.Opaque == "" &&
		u.User == nil && u.Fragment == "" && !strings.Contains(s, "#")
}

// validUniverseDomain accepts a DNS name of at least two lowercase labels
// (googleapis.com, s3nsapis.fr), at most 253 characters: the suffix to
// which Google's clients prepend a service name (iamcredentials., sts.).
func validUniverseDomain(s string) bool {
	if len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' || !providers.AllBytes(l, isLabelChar) {
			return false
		}
	}
	return !providers.Digits(labels[len(labels)-1])
}

func validHTTPSURL(s string) bool {
	if s == "" || len(s) > 2048 || !utf8.ValidString(s) ||
		strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && u.Scheme == "https" && u.Host != "" && u.Opaque == "" &&
		u.User == nil && u.Fragment == "" && !strings.Contains(s, "#")
}

// validWorkloadIdentityProvider accepts the full resource name of a
// workload identity pool provider: a project number (at most 19 digits, no
// leading zero), pool and provider ids of 4-32 characters of a-z, 0-9 and
// '-' (https://cloud.google.com/iam/docs/reference/rest/v1/projects.locations.workloadIdentityPools.providers/create).
func validWorkloadIdentityProvider(s string) bool {
	rest, ok := strings.CutPrefix(s, "//iam.googleapis.com/projects/")
	if !ok {
		return false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 7 || !validProjectNumber(parts[0]) || parts[1] != "locations" || parts[2] != "global" ||
		parts[3] != "workloadIdentityPools" || parts[5] != "providers" {
		return false
	}
	for _, id := range []string{parts[4], parts[6]} {
		if len(id) < 4 || len(id) > 32 || !providers.AllBytes(id, isLabelChar) {
			return false
		}
	}
	return true
}

// validServiceAccount accepts the forms generateAccessToken takes in
// projects/-/serviceAccounts/{ACCOUNT_EMAIL_OR_UNIQUEID}:
//   - a user-managed account, name@PROJECT_ID.iam.gserviceaccount.com: the
//     account id is 6-30 characters matching [a-z]([-a-z0-9]*[a-z0-9])
//     (CreateServiceAccountRequest.account_id,
//     https://cloud.google.com/iam/docs/reference/rest/v1/projects.serviceAccounts/create);
//     PROJECT_ID as validProjectRef reads it;
//   - the Google-managed defaults that pipelines commonly impersonate,
//     PROJECT_NUMBER-compute@developer.gserviceaccount.com (Compute Engine)
//     and PROJECT_ID@appspot.gserviceaccount.com (App Engine),
//     https://cloud.google.com/iam/docs/service-account-types;
//   - the account's unique id, 21 decimal digits (ServiceAccount.unique_id).
//
// Google writes these in lower case; anything else is refused.
func validServiceAccount(s string) bool {
	if providers.Digits(s) {
		return len(s) == 21 && s[0] != '0'
	}
	local, domain, ok := strings.Cut(s, "@")
	if !ok {
		return false
	}
	switch domain {
	case "developer.gserviceaccount.com":
		number, ok := strings.CutSuffix(local, "-compute")
		return ok && validProjectNumber(number)
	case "appspot.gserviceaccount.com":
		return validProjectRef(local)
	}
	project, ok := strings.CutSuffix(domain, ".iam.gserviceaccount.com")
	return ok && validAccountID(local) && validProjectRef(project)
}

// validAccountID: 6-30 characters, [a-z]([-a-z0-9]*[a-z0-9]).
func validAccountID(s string) bool {
	return len(s) >= 6 && len(s) <= 30 && rfc1035Label(s)
}

// validProjectRef accepts a project id as it appears in a service account's
// e-mail: PROJECT_ID (6-30 characters, a lowercase letter first, then a-z,
// 0-9 and '-', no trailing '-'; https://cloud.google.com/resource-manager/docs/creating-managing-projects#before_you_begin),
// or, for a domain-scoped project example.com:proj, proj.example.com.
func validProjectRef(s string) bool {
	id, domain, scoped := strings.Cut(s, ".")
	if len(id) < 6 || len(id) > 30 || !rfc1035Label(id) {
		return false
	}
	if !scoped {
		return true
	}
	labels := strings.Split(domain, ".")
	if len(labels) < 2 || len(domain) > 253 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' || !providers.AllBytes(l, isLabelChar) {
			return false
		}
	}
	return true
}

// validProjectNumber: decimal digits, no leading zero, at most 19 (an int64).
func validProjectNumber(s string) bool {
	return providers.Digits(s) && len(s) <= 19 && s[0] != '0'
}

// rfc1035Label: a lowercase letter, then a-z, 0-9 and '-', not ending in '-'.
func rfc1035Label(s string) bool {
	return s != "" && 'a' <= s[0] && s[0] <= 'z' && s[len(s)-1] != '-' && providers.AllBytes(s, isLabelChar)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isLabelChar(c byte) bool { return 'a' <= c && c <= 'z' || isDigit(c) || c == '-' }
