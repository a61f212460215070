package providers

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Spec is what a provider says of its mappings without configuration or
// I/O: its name, the range of max_duration_seconds it admits and the rules
// of its target. The admin API applies them when a mapping is written (the
// mapping package asks a Registry); the provider's Mint runs the very same
// target decode and rules on the stored target, so that a target changed
// behind the API's back fails closed.
type Spec interface {
	// Name is the provider's name in mappings: aws, gcp, azure, jwt.
	Name() string
	// DurationBounds is the range of max_duration_seconds, in seconds.
	DurationBounds() (lo, hi int)
	// CheckTarget decodes a mapping's target strictly and applies the
	// target's own rules. Errors are *FieldError.
	CheckTarget(raw json.RawMessage) error
	// CheckMapping applies the rules that join a target (one CheckTarget
	// admitted) to the mapping's name and max_duration_seconds (within
	// DurationBounds). Errors are *FieldError.
	CheckMapping(m Mapping) error
}

// Mapping is what a Spec's CheckMapping sees of a mapping.
type Mapping struct {
	Name               string
	Target             json.RawMessage
	MaxDurationSeconds int
}

// FieldError is a Spec's refusal: the field at fault as the admin wrote it
// ("target.role_arn", "max_duration_seconds", "name") and why, written for
// the admin. The mapping package turns it into its ValidationError as is;
// a provider's Mint logs it.
type FieldError struct {
	Provider string
	Field    string
	Message  string
}

// Error returns "provider: field: message".
func (e *FieldError) Error() string {
	return e.Provider + ": " + e.Field + ": " + e.Message
}

// Invalid returns a *FieldError of provider on field.
func Invalid(provider, field, format string, args ...any) *FieldError {
	return &FieldError{Provider: provider, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Registry is the providers a bridge knows, in the order the admin API's
// messages list them.
type Registry struct {
	specs []Spec
}

// NewRegistry returns a registry of specs; a later spec replaces an earlier
// one of the same name in its place.
func NewRegistry(specs ...Spec) Registry {
	var r Registry
	for _, s := range specs {
		r = r.With(s)
	}
	return r
}

// With returns r with s, replacing the spec of the same name (a spec
// configured for the deployment: aws.Spec{RoleChaining: true}) or added
// last.
func (r Registry) With(s Spec) Registry {
	out := make([]Spec, 0, len(r.specs)+1)
	replaced := false
	for _, old := range r.specs {
		if old.Name() == s.Name() {
			old, replaced = s, true
		}
		out = append(out, old)
	}
	if !replaced {
		out = append(out, s)
	}
	return Registry{specs: out}
}

// Lookup returns the spec of the provider called name.
func (r Registry) Lookup(name string) (Spec, bool) {
	for _, s := range r.specs {
		if s.Name() == name {
			return s, true
		}
	}
	return nil, false
}

// Names returns the providers' names in order.
func (r Registry) Names() []string {
	out := make([]string, len(r.specs))
	for i, s := range r.specs {
		out[i] = s.Name()
	}
	return out
}

// Choices lists the names for a message: "aws, gcp, azure or jwt".
func (r Registry) Choices() string {
	n := r.Names()
	if len(n) < 2 {
		return strings.Join(n, "")
	}
	return strings.Join(n[:len(n)-1], ", ") + " or " + n[len(n)-1]
}

// Linter is a Spec with lint rules of its own: risky-but-valid targets,
// given what the mapping's conditions admit. mapping.Lint adds its findings
// after the kind's, as warnings.
type Linter interface {
	LintTarget(m LintMapping) []Finding
}

// LintMapping is what a Linter sees of a mapping: its target and what its
// conditions admit, as the mapping package reads them.
type LintMapping struct {
	Target json.RawMessage
	// AdmitsPullRequests: the mapping has no event_name condition, or one
	// of its patterns matches pull_request or pull_request_target (runs of
	// code that has not been reviewed or merged).
	AdmitsPullRequests bool
	// RepositoryPinned: the mapping has a repository condition without
	// wildcard or a repository_id condition.
	RepositoryPinned bool
}

// Finding is one lint warning of a Linter: a stable code, the field it is
// about ("target.permissions.contents") and a message for the admin.
type Finding struct {
	Code, Field, Message string
}
