package gcp

import (
	"errors"
	"net/url"
	"regexp"
	"strings"

	"github.com/oidc-bridge/oidc-bridge/providers"
)

// Target modes, as mapping.GCPTarget names them.
const (
	modeImpersonate      = "impersonate"
	modeWorkloadIdentity = "workload_identity"
)

// Limits on lists of a target; Google's own are lower or unpublished, these
// only keep a corrupt target from growing a request without bound.
const (
	maxScopes    = 64
	maxDelegates = 16
)

// target mirrors mapping.GCPTarget; it is decoded here, strictly, so that
// this package does not depend on mapping.
type target struct {
	ServiceAccount           string
	Scopes                   []string
	Delegates                []string
	Mode                     string // impersonate or workload_identity, never empty
	WorkloadIdentityProvider string
	// AllowLifetimeExtension: the org policy lets this account have tokens
	// of up to 12 hours; without it Mint refuses durations above an hour.
	AllowLifetimeExtension bool
}

// The shapes of service accounts, looser than the admin API's rules
// (mapping.validServiceAccount, where Google's limits are): user-managed
// accounts and the Compute Engine and App Engine default accounts.
var (
	serviceAccountEmail = regexp.MustCompile(`^[a-z0-9-]{1,64}@(?:[a-z0-9-]+(?:\.[a-z0-9-]+)*\.iam|developer|appspot)\.gserviceaccount\.com$`)
	serviceAccountID    = regexp.MustCompile(`^[1-9][0-9]{0,31}$`)
	providerName        = regexp.MustCompile(`^//iam\.googleapis\.com/projects/[0-9]+/locations/global/workloadIdentityPools/[a-z0-9-]{4,32}/providers/[a-z0-9-]{4,32}$`)
)

// decodeTarget reads a JSON object with exactly the keys of
// mapping.GCPTarget, each at most once and spelled exactly (encoding/json
// alone would accept "SERVICE_ACCOUNT" and duplicates), then checks each
// value's shape. Absent or empty scopes mean DefaultScope; an absent mode
// means impersonate. The admin API validated the target already; this fails
// closed if the stored target was changed behind its back. Errors name the
// field, not its value.
func decodeTarget(raw []byte) (target, error) {
	var t target
	if err := providers.DecodeTarget("gcp", raw, map[string]any{
		"service_account":            &t.ServiceAccount,
		"scopes":                     &t.Scopes,
		"delegates":                  &t.Delegates,
		"mode":                       &t.Mode,
		"workload_identity_provider": &t.WorkloadIdentityProvider,
		"allow_lifetime_extension":   &t.AllowLifetimeExtension,
	}); err != nil {
		return t, err
	}
	return t, t.check()
}

func (t *target) check() error {
	switch t.Mode {
	case "", modeImpersonate:
		t.Mode = modeImpersonate
		if t.WorkloadIdentityProvider != "" {
			return errors.New("gcp: target's workload_identity_provider applies to mode workload_identity only")
		}
	case modeWorkloadIdentity:
		if !providerName.MatchString(t.WorkloadIdentityProvider) {
			return errors.New("gcp: target's workload_identity_provider is not a workload identity pool provider's resource name")
		}
	default:
		return errors.New("gcp: target's mode is neither impersonate nor workload_identity")
	}
	if !validServiceAccount(t.ServiceAccount) {
		return errors.New("gcp: target's service_account is not a service account e-mail or unique id")
	}
	if len(t.Scopes) > maxScopes {
		return errors.New("gcp: target has too many scopes")
	}
	for _, s := range t.Scopes {
		if !validScope(s) {
			return errors.New("gcp: target's scopes has a value that is not an https URL")
		}
	}
	if len(t.Delegates) > maxDelegates {
		return errors.New("gcp: target has too many delegates")
	}
	for _, d := range t.Delegates {
		if !validServiceAccount(d) {
			return errors.New("gcp: target's delegates has a value that is not a service account")
		}
	}
	if len(t.Scopes) == 0 {
		t.Scopes = []string{DefaultScope}
	}
	return nil
}

func validServiceAccount(s string) bool {
	return len(s) <= 254 && (serviceAccountEmail.MatchString(s) || serviceAccountID.MatchString(s))
}

func validScope(s string) bool {
	if s == "" || len(s) > 2048 || strings.ContainsAny(s, " \t\r\n#") {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && u.Scheme == "https" && u.Host != "" && u.User == nil && u.Opaque == ""
}
