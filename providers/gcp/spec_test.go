package gcp

import (
	"errors"
	"strings"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/providers"
)

// TestSubjectLimit checks the subject rule itself (a mapping name that
// passes the admin API's name rule cannot break it) and that the longest
// mapping name fits google.subject.
func TestSubjectLimit(t *testing.T) {
	t.Parallel()
	longest := strings.Repeat("x", 64)
	if !providers.ValidMappingName(longest) {
		t.Fatal("the longest name is not valid")
	}
	if err := checkSubject(longest); err != nil {
		t.Errorf("the longest mapping name breaks google.subject: %v", err)
	}
	fits := strings.Repeat("x", maxSubject-len(Subject("")))
	if err := checkSubject(fits); err != nil {
		t.Errorf("a 127-byte subject refused: %v", err)
	}
	var fe *providers.FieldError
	if err := checkSubject(fits + "x"); !errors.As(err, &fe) || fe.Field != "name" {
		t.Errorf("a 128-byte subject: %v, want a refusal of name", err)
	}
}

// TestIDTokenDuration: an id_token mapping may not promise more than
// Google's one hour, nor issuesIDToken misread a target.
func TestIDTokenDuration(t *testing.T) {
	t.Parallel()
	tgt := []byte(`{"service_account":"deploy@acme-prod.iam.gserviceaccount.com","token_format":"id_token","id_token_audience":"https://x.a.run.app"}`)
	if err := (Spec{}).CheckMapping(providers.Mapping{Name: "m", Target: tgt, MaxDurationSeconds: 3600}); err != nil {
		t.Errorf("an hour: %v", err)
	}
	var fe *providers.FieldError
	if err := (Spec{}).CheckMapping(providers.Mapping{Name: "m", Target: tgt, MaxDurationSeconds: 3601}); !errors.As(err, &fe) ||
		fe.Field != "max_duration_seconds" || !strings.Contains(err.Error(), "generateIdToken") {
		t.Errorf("over an hour: %v", err)
	}
	if !IssuesIDToken(tgt) || IssuesIDToken([]byte(`{"service_account":"deploy@acme-prod.iam.gserviceaccount.com"}`)) || IssuesIDToken([]byte(`{`)) {
		t.Error("IssuesIDToken")
	}
}
