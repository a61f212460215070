package mapping

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func intp(n int) *int { return &n }

// An issuer's replay_scope and token limits: defaults, bounds, the field
// named at fault, and the lint warning of token_mapping.
func TestValidateIssuerReplayAndLimits(t *testing.T) {
	t.Parallel()
	is := validIssuer(nil)
	if err := ValidateIssuer(is); err != nil || is.ReplayScope != ReplayScopeToken {
		t.Fatalf("default: %v, replay_scope %q; want nil, token", err, is.ReplayScope)
	}
	if w := LintIssuer(is); len(w) != 0 {
		t.Errorf("LintIssuer(token) = %v; want none", w)
	}
	ok := validIssuer(func(is *Issuer) {
		is.ReplayScope = ReplayScopeTokenMapping
		is.MaxTokenAgeSeconds, is.MaxTokenLifetimeSeconds = intp(60), intp(21600)
	})
	if err := ValidateIssuer(ok); err != nil {
		t.Fatalf("bounds: %v", err)
	}
	if diff := cmp.Diff([]string{"replay_scope_token_mapping"}, codes(LintIssuer(ok))); diff != "" {
		t.Errorf("LintIssuer(token_mapping) (-want +got):\n%s", diff)
	}
	tests := []struct {
		name, field string
		edit        func(*Issuer)
	}{
		{"replay_scope unknown", "replay_scope", func(is *Issuer) { is.ReplayScope = "mapping" }},
		{"replay_scope case", "replay_scope", func(is *Issuer) { is.ReplayScope = "Token" }},
		{"age 59", "max_token_age_seconds", func(is *Issuer) { is.MaxTokenAgeSeconds = intp(59) }},
		{"age 0", "max_token_age_seconds", func(is *Issuer) { is.MaxTokenAgeSeconds = intp(0) }},
		{"age 6h1s", "max_token_age_seconds", func(is *Issuer) { is.MaxTokenAgeSeconds = intp(21601) }},
		{"lifetime negative", "max_token_lifetime_seconds", func(is *Issuer) { is.MaxTokenLifetimeSeconds = intp(-1) }},
		{"lifetime a day", "max_token_lifetime_seconds", func(is *Issuer) { is.MaxTokenLifetimeSeconds = intp(86400) }},
	}
	for _, tt := range tests {
		err := ValidateIssuer(validIssuer(tt.edit))
		ve, isVE := err.(*ValidationError)
		if !isVE || ve.Field != tt.field {
			t.Errorf("%s: %v; want a ValidationError on %s", tt.name, err, tt.field)
		}
	}
}

func codes(ws []Warning) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.Code)
	}
	return out
}
