package mapping

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/oidc-bridge/oidc-bridge/providers"
)

// Google's limits on what a gcp mapping decides, each with its source. The
// admin API refuses a mapping that breaks one (400 invalid_request naming the
// field), so that Google never has to.
const (
	// GCPMaxLifetime is the longest access token generateAccessToken grants
	// by default, and GCPMaxExtendedLifetime the longest it grants to a
	// service account that an organisation policy enforcing
	// GCPLifetimeConstraint lists. Source: IAM Service Account Credentials
	// API, projects.serviceAccounts.generateAccessToken, field lifetime ("By
	// default, the maximum allowed value is 1 hour. To set a lifetime of up
	// to 12 hours, you can add the service account as an allowed value in an
	// Organization Policy that enforces the
	// constraints/iam.allowServiceAccountCredentialLifetimeExtension
	// constraint"),
	// https://cloud.google.com/iam/docs/reference/credentials/rest/v1/projects.serviceAccounts/generateAccessToken
	GCPMaxLifetime         = 3600
	GCPMaxExtendedLifetime = 43200
	GCPLifetimeConstraint  = "constraints/iam.allowServiceAccountCredentialLifetimeExtension"

	// gcpMaxSubject is the most bytes google.subject may hold once the
	// attribute mapping ran ("The size of mapped attribute google.subject
	// exceeds the 127 bytes limit"), https://cloud.google.com/iam/docs/workload-identity-federation#mapping.
	// The bridge's assertion carries providers.Subject("gcp", mapping name).
	gcpMaxSubject = 127
	// gcpMaxAudience: a workload identity pool provider's allowed audiences
	// are at most 256 characters each (WorkloadIdentityPoolProvider.Oidc.
	// allowed_audiences), and one that has any must list the bridge's aud
	// (gcp.Audience of the provider's name),
	// https://cloud.google.com/iam/docs/reference/rest/v1/projects.locations.workloadIdentityPools.providers#oidc.
	gcpMaxAudience = 256
	// gcpMaxDelegates bounds a delegation chain. Google documents no limit;
	// this is the bridge's own (providers/gcp refuses more at mint time).
	gcpMaxDelegates = 16
)

// checkCloudMapping applies the rules of a provider that depend on more than
// its target: the gcp and azure ones are here, for each cloud's limits are
// documented in one place (docs/clouds.md, "GCP limits", "Azure limits").
func checkCloudMapping(m *Mapping) error {
	switch m.Provider {
	case ProviderGCP:
		return checkGCPMapping(m)
	case ProviderAzure:
		return checkAzureMapping(m)
	}
	return nil
}

// checkGCPMapping: max_duration_seconds above GCPMaxLifetime needs
// allow_lifetime_extension, and the subject of a workload_identity
// assertion must fit google.subject. The target was validated already.
func checkGCPMapping(m *Mapping) error {
	var t GCPTarget
	if err := json.Unmarshal(m.Target, &t); err != nil {
		return invalid("target", "is not a valid gcp target object")
	}
	if m.MaxDurationSeconds > GCPMaxLifetime && !t.AllowLifetimeExtension {
		return invalid("max_duration_seconds", "must be at most %d for a gcp target: Google's generateAccessToken grants "+
			"longer tokens only to service accounts that an organisation policy enforcing %s lists; "+
			"if it lists this one, set target.allow_lifetime_extension to true (up to %d)",
			GCPMaxLifetime, GCPLifetimeConstraint, GCPMaxExtendedLifetime)
	}
	if t.Mode == GCPModeWorkloadIdentity {
		return checkGoogleSubject(m.Name)
	}
	return nil
}

// checkGoogleSubject refuses a mapping name whose assertion subject would
// not fit google.subject. Mapping names (at most 64 characters) keep it at
// 88 bytes today; the check keeps that true if the prefix or the name rule
// ever change.
func checkGoogleSubject(name string) error {
	if n := len(providers.Subject(ProviderGCP, name)); n > gcpMaxSubject {
		return invalid("name", "makes the assertion's subject %d bytes long; Google's google.subject holds at most %d", n, gcpMaxSubject)
	}
	return nil
}

const serviceAccountRule = "must be a service account email: name@PROJECT_ID.iam.gserviceaccount.com (name and " +
	"project id 6-30 characters of a-z, 0-9 and '-', starting with a letter; a domain-scoped project example.com:proj " +
	"as proj.example.com), PROJECT_NUMBER-compute@developer.gserviceaccount.com, PROJECT_ID@appspot.gserviceaccount.com, " +
	"or the account's 21-digit unique id"

func checkGCPTarget(t *GCPTarget) error {
	switch t.Mode {
	case "", GCPModeImpersonate:
		if t.WorkloadIdentityProvider != "" {
			return invalid("target.workload_identity_provider", "applies to mode %s only", GCPModeWorkloadIdentity)
		}
	case GCPModeWorkloadIdentity:
		if !validWorkloadIdentityProvider(t.WorkloadIdentityProvider) {
			return invalid("target.workload_identity_provider",
				"must be //iam.googleapis.com/projects/NUMBER/locations/global/workloadIdentityPools/POOL/providers/PROVIDER")
		}
		// The bridge's aud; see gcpMaxAudience.
		if aud := "https://iam.googleapis.com/" + strings.TrimPrefix(t.WorkloadIdentityProvider, "//iam.googleapis.com/"); len(aud) > gcpMaxAudience {
			return invalid("target.workload_identity_provider", "makes the assertion's audience %d characters long; Google's allowed audiences hold at most %d", len(aud), gcpMaxAudience)
		}
	default:
		return invalid("target.mode", "must be %s (the default) or %s", GCPModeImpersonate, GCPModeWorkloadIdentity)
	}
	if t.ServiceAccount == "" {
		return invalid("target.service_account", "is required")
	}
	if !validServiceAccount(t.ServiceAccount) {
		return invalid("target.service_account", serviceAccountRule)
	}
	for i, s := range t.Scopes {
		if !validHTTPSURL(s) {
			return invalid(fmt.Sprintf("target.scopes[%d]", i), "must be an https URL like https://www.googleapis.com/auth/cloud-platform")
		}
	}
	if len(t.Delegates) > gcpMaxDelegates {
		return invalid("target.delegates", "at most %d delegates", gcpMaxDelegates)
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
		if len(id) < 4 || len(id) > 32 || !allIn(id, func(c byte) bool { return isLowerAlnum(c) || c == '-' }) {
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
	if allDigits(s) {
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
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' ||
			!allIn(l, func(c byte) bool { return isLowerAlnum(c) || c == '-' }) {
			return false
		}
	}
	return true
}

// validProjectNumber: decimal digits, no leading zero, at most 19 (an int64).
func validProjectNumber(s string) bool {
	return allDigits(s) && len(s) <= 19 && s[0] != '0'
}

// rfc1035Label: a lowercase letter, then a-z, 0-9 and '-', not ending in '-'.
func rfc1035Label(s string) bool {
	return s != "" && 'a' <= s[0] && s[0] <= 'z' && s[len(s)-1] != '-' &&
		allIn(s, func(c byte) bool { return isLowerAlnum(c) || c == '-' })
}
