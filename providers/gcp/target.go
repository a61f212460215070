package gcp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strings"
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
}

var (
	serviceAccountEmail = regexp.MustCompile(`^[a-z0-9-]{1,64}@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.iam\.gserviceaccount\.com$`)
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
	fields := map[string]any{
		"service_account":            &t.ServiceAccount,
		"scopes":                     &t.Scopes,
		"delegates":                  &t.Delegates,
		"mode":                       &t.Mode,
		"workload_identity_provider": &t.WorkloadIdentityProvider,
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return t, errors.New("gcp: target is not a JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return t, errors.New("gcp: target is not valid JSON")
		}
		key, _ := tok.(string)
		dst, known := fields[key]
		if !known {
			return t, fmt.Errorf("gcp: target has an unknown field %q", truncate(key, 32))
		}
		if seen[key] {
			return t, fmt.Errorf("gcp: target has %s twice", key)
		}
		seen[key] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return t, errors.New("gcp: target is not valid JSON")
		}
		if err := decodeValue(v, dst); err != nil {
			return t, fmt.Errorf("gcp: target's %s %v", key, err)
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return t, errors.New("gcp: target is not valid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return t, errors.New("gcp: target has trailing data")
	}
	return t, t.check()
}

// decodeValue reads a string into *string or an array of strings into
// *[]string, refusing null and every other type.
func decodeValue(v json.RawMessage, dst any) error {
	switch d := dst.(type) {
	case *string:
		if len(v) == 0 || v[0] != '"' || json.Unmarshal(v, d) != nil {
			return errors.New("is not a string")
		}
	case *[]string:
		if len(v) == 0 || v[0] != '[' {
			return errors.New("is not an array of strings")
		}
		var list []*string
		if json.Unmarshal(v, &list) != nil {
			return errors.New("is not an array of strings")
		}
		out := make([]string, 0, len(list))
		for _, s := range list {
			if s == nil {
				return errors.New("is not an array of strings")
			}
			out = append(out, *s)
		}
		*d = out
	}
	return nil
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

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
