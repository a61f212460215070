package mapping

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/oidc-bridge/oidc-bridge/identity"
)

// wantField checks err against the field a test expects: "" for no error,
// otherwise a *ValidationError on that field that matches ErrInvalid.
func wantField(t *testing.T, err error, field string) {
	t.Helper()
	if field == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error, want one on field %q", field)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("errors.Is(%v, ErrInvalid) = false", err)
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T) is not a *ValidationError", err, err)
	}
	if ve.Field != field {
		t.Errorf("error on field %q (%v), want field %q", ve.Field, err, field)
	}
	if ve.Message == "" {
		t.Errorf("error on field %q has no message", ve.Field)
	}
}

func TestValidationError(t *testing.T) {
	t.Parallel()
	err := error(&ValidationError{Field: "conditions.ref", Message: "must start with refs/"})
	if got, want := err.Error(), "conditions.ref: must start with refs/"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	wrapped := fmt.Errorf("mapping: create %q: %w", "x", err)
	if !errors.Is(wrapped, ErrInvalid) {
		t.Error("wrapped ValidationError does not match ErrInvalid")
	}
	var ve *ValidationError
	if !errors.As(wrapped, &ve) || ve.Field != "conditions.ref" {
		t.Errorf("errors.As = %v, field %q", ve, ve.Field)
	}
	if errors.Is(errors.New("other"), ErrInvalid) {
		t.Error("unrelated error matches ErrInvalid")
	}
	if got := (&ValidationError{Message: "a mapping object is required"}).Error(); got != "a mapping object is required" {
		t.Errorf("Error() without field = %q", got)
	}
}

func TestValidName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		want bool
	}{
		{"github", true},
		{"web-prod-deploy", true},
		{"a", true},
		{"0", true},
		{"a.b_c-d", true},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
		{"", false},
		{"-a", false},
		{".a", false},
		{"_a", false},
		{"Web", false},
		{"a b", false},
		{"a/b", false},
		{"a\x00", false},
		{"a\n", false},
		{"café", false},
		{"ａ", false},
	}
	for _, tt := range tests {
		if got := ValidName(tt.name); got != tt.want {
			t.Errorf("ValidName(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func validIssuer(edit func(*Issuer)) *Issuer {
	is := &Issuer{
		Name:      "github",
		URL:       "https://token.actions.githubusercontent.com",
		Audiences: []string{"https://bridge.example.com"},
		Kind:      "github",
		Enabled:   true,
	}
	if edit != nil {
		edit(is)
	}
	return is
}

func TestValidateIssuer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		issuer    *Issuer
		wantField string
	}{
		{"valid", validIssuer(nil), ""},
		{"nil", nil, ""},
		{"gitlab", validIssuer(func(is *Issuer) { is.Name, is.URL, is.Kind = "gitlab", "https://gitlab.com", "gitlab" }), ""},
		{"generic", validIssuer(func(is *Issuer) { is.Kind = "generic" }), ""},
		{"enterprise path", validIssuer(func(is *Issuer) { is.URL = "https://token.actions.githubusercontent.com/acme" }), ""},
		{"ghes", validIssuer(func(is *Issuer) { is.URL = "https://ghe.example.com/_services/token" }), ""},
		{"loopback http left to caller", validIssuer(func(is *Issuer) { is.URL = "http://127.0.0.1:8081" }), ""},
		{"several audiences", validIssuer(func(is *Issuer) { is.Audiences = []string{"a", "b", "sts.amazonaws.com"} }), ""},
		{"audience max length", validIssuer(func(is *Issuer) { is.Audiences = []string{strings.Repeat("a", 512)} }), ""},
		{"disabled", validIssuer(func(is *Issuer) { is.Enabled = false }), ""},

		{"empty name", validIssuer(func(is *Issuer) { is.Name = "" }), "name"},
		{"upper name", validIssuer(func(is *Issuer) { is.Name = "GitHub" }), "name"},
		{"long name", validIssuer(func(is *Issuer) { is.Name = strings.Repeat("a", 65) }), "name"},
		{"name leading dash", validIssuer(func(is *Issuer) { is.Name = "-github" }), "name"},
		{"name slash", validIssuer(func(is *Issuer) { is.Name = "git/hub" }), "name"},
		{"empty kind", validIssuer(func(is *Issuer) { is.Kind = "" }), "kind"},
		{"unknown kind", validIssuer(func(is *Issuer) { is.Kind = "teamcity" }), "kind"},
		{"upper kind", validIssuer(func(is *Issuer) { is.Kind = "GitHub" }), "kind"},
		{"no audiences", validIssuer(func(is *Issuer) { is.Audiences = nil }), "audiences"},
		{"empty audiences", validIssuer(func(is *Issuer) { is.Audiences = []string{} }), "audiences"},
		{"empty audience", validIssuer(func(is *Issuer) { is.Audiences = []string{"a", ""} }), "audiences[1]"},
		{"duplicate audience", validIssuer(func(is *Issuer) { is.Audiences = []string{"a", "b", "a"} }), "audiences[2]"},
		{"audience space", validIssuer(func(is *Issuer) { is.Audiences = []string{"a b"} }), "audiences[0]"},
		{"audience trailing space", validIssuer(func(is *Issuer) { is.Audiences = []string{"a "} }), "audiences[0]"},
		{"audience tab", validIssuer(func(is *Issuer) { is.Audiences = []string{"a\tb"} }), "audiences[0]"},
		{"audience NUL", validIssuer(func(is *Issuer) { is.Audiences = []string{"a\x00"} }), "audiences[0]"},
		{"audience newline", validIssuer(func(is *Issuer) { is.Audiences = []string{"a\n"} }), "audiences[0]"},
		{"audience DEL", validIssuer(func(is *Issuer) { is.Audiences = []string{"a\x7f"} }), "audiences[0]"},
		{"audience NBSP", validIssuer(func(is *Issuer) { is.Audiences = []string{"a\u00a0b"} }), "audiences[0]"},
		{"audience invalid UTF-8", validIssuer(func(is *Issuer) { is.Audiences = []string{"a\xff"} }), "audiences[0]"},
		{"audience too long", validIssuer(func(is *Issuer) { is.Audiences = []string{strings.Repeat("a", 513)} }), "audiences[0]"},
		{"empty url", validIssuer(func(is *Issuer) { is.URL = "" }), "url"},
		{"relative url", validIssuer(func(is *Issuer) { is.URL = "/token" }), "url"},
		{"host only", validIssuer(func(is *Issuer) { is.URL = "token.actions.githubusercontent.com" }), "url"},
		{"no host", validIssuer(func(is *Issuer) { is.URL = "https://" }), "url"},
		{"port only", validIssuer(func(is *Issuer) { is.URL = "https://:443" }), "url"},
		{"opaque", validIssuer(func(is *Issuer) { is.URL = "https:token.actions.githubusercontent.com" }), "url"},
		{"query", validIssuer(func(is *Issuer) { is.URL = "https://gitlab.com?x=1" }), "url"},
		{"empty query", validIssuer(func(is *Issuer) { is.URL = "https://gitlab.com?" }), "url"},
		{"fragment", validIssuer(func(is *Issuer) { is.URL = "https://gitlab.com#x" }), "url"},
		{"empty fragment", validIssuer(func(is *Issuer) { is.URL = "https://gitlab.com#" }), "url"},
		{"userinfo", validIssuer(func(is *Issuer) { is.URL = "https://user:pw@gitlab.com" }), "url"},
		{"user only", validIssuer(func(is *Issuer) { is.URL = "https://user@gitlab.com" }), "url"},
		{"space", validIssuer(func(is *Issuer) { is.URL = "https://gitlab.com /x" }), "url"},
		{"newline", validIssuer(func(is *Issuer) { is.URL = "https://gitlab.com\n" }), "url"},
		{"NUL", validIssuer(func(is *Issuer) { is.URL = "https://gitlab.com\x00" }), "url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := ValidateIssuer(tt.issuer)
			if tt.issuer == nil {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("ValidateIssuer(nil) = %v, want ErrInvalid", err)
				}
				return
			}
			wantField(t, err, tt.wantField)
		})
	}
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   *Mapping
		want *Mapping
	}{
		{"zero gets default", &Mapping{Name: "x"}, &Mapping{Name: "x", MaxDurationSeconds: DefaultMaxDuration, Mode: ModeEnforce}},
		{"set kept", &Mapping{MaxDurationSeconds: 900, Mode: ModeAudit}, &Mapping{MaxDurationSeconds: 900, Mode: ModeAudit}},
		{"negative kept for validation", &Mapping{MaxDurationSeconds: -1, Mode: "x"}, &Mapping{MaxDurationSeconds: -1, Mode: "x"}},
		{"quota untouched", &Mapping{Quota: &Quota{}}, &Mapping{MaxDurationSeconds: DefaultMaxDuration, Quota: &Quota{}, Mode: ModeEnforce}},
		{"warnings dropped", &Mapping{Mode: ModeEnforce, MaxDurationSeconds: 900, Warnings: []Warning{{Code: "x"}}}, &Mapping{Mode: ModeEnforce, MaxDurationSeconds: 900}},
		{"nil", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			Normalize(tt.in)
			if diff := cmp.Diff(tt.want, tt.in); diff != "" {
				t.Errorf("Normalize (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDurationBounds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		provider string
		lo, hi   int
		ok       bool
	}{
		{"aws", 900, 43200, true},
		{"gcp", 60, 43200, true},
		{"azure", 60, 86400, true},
		{"jwt", 60, 86400, true},
		{"", 0, 0, false},
		{"AWS", 0, 0, false},
	}
	for _, tt := range tests {
		lo, hi, ok := DurationBounds(tt.provider)
		if lo != tt.lo || hi != tt.hi || ok != tt.ok {
			t.Errorf("DurationBounds(%q) = %d, %d, %v; want %d, %d, %v", tt.provider, lo, hi, ok, tt.lo, tt.hi, tt.ok)
		}
		if ok && (DefaultMaxDuration < lo || DefaultMaxDuration > hi) {
			t.Errorf("DefaultMaxDuration %d is outside %s's bounds", DefaultMaxDuration, tt.provider)
		}
	}
}

func withTarget(provider, target string) func(*Mapping) {
	return func(m *Mapping) {
		m.Provider = provider
		m.Target = json.RawMessage(target)
	}
}

func withConditions(c Conditions) func(*Mapping) {
	return func(m *Mapping) { m.Conditions = c }
}

func withClaims(name string, v *Values) func(*Mapping) {
	return func(m *Mapping) { m.Conditions.Claims = map[string]Values{name: *v} }
}

const (
	guid  = "0b6c3a52-4c1f-4e8a-9d1e-3f2a7b6c5d4e"
	guid2 = "F1E2D3C4-B5A6-4978-8695-A4B3C2D1E0F9"
)

func TestValidateMapping(t *testing.T) {
	t.Parallel()
	gh, gl, gen := identity.KindGitHub, identity.KindGitLab, identity.KindGeneric
	tests := []struct {
		name      string
		edit      func(*Mapping)
		kind      identity.Kind
		wantField string
	}{
		{"valid github", nil, gh, ""},
		{"valid gitlab", nil, gl, ""},
		{"valid generic", nil, gen, ""},
		{"nil fields of contract example", func(m *Mapping) {
			m.Conditions = Conditions{
				Repository:   One("acme/web"),
				RepositoryID: One("123456"),
				Ref:          One("refs/heads/main"),
				Environment:  One("production"),
				EventName:    Any("push", "workflow_dispatch"),
				WorkflowRef:  One("acme/web/.github/workflows/deploy.yml@refs/heads/main"),
				Claims:       map[string]Values{"runner_environment": *One("github-hosted")},
			}
			m.Quota = &Quota{PerHour: 100, PerJob: 5}
		}, gh, ""},
		{"disabled is still validated", func(m *Mapping) { m.Enabled = false; m.Name = "" }, gh, "name"},

		// names
		{"empty name", func(m *Mapping) { m.Name = "" }, gh, "name"},
		{"name upper", func(m *Mapping) { m.Name = "Web" }, gh, "name"},
		{"name too long", func(m *Mapping) { m.Name = strings.Repeat("x", 65) }, gh, "name"},
		{"name max", func(m *Mapping) { m.Name = strings.Repeat("x", 64) }, gh, ""},
		{"name non-ASCII", func(m *Mapping) { m.Name = "wéb" }, gh, "name"},
		{"empty issuer", func(m *Mapping) { m.Issuer = "" }, gh, "issuer"},
		{"issuer not a name", func(m *Mapping) { m.Issuer = "GitHub Actions" }, gh, "issuer"},

		// provider and duration
		{"no provider", func(m *Mapping) { m.Provider = "" }, gh, "provider"},
		{"unknown provider", func(m *Mapping) { m.Provider = "oci" }, gh, "provider"},
		{"upper provider", func(m *Mapping) { m.Provider = "AWS" }, gh, "provider"},
		{"aws min", func(m *Mapping) { m.MaxDurationSeconds = 900 }, gh, ""},
		{"aws max", func(m *Mapping) { m.MaxDurationSeconds = 43200 }, gh, ""},
		{"aws too short", func(m *Mapping) { m.MaxDurationSeconds = 899 }, gh, "max_duration_seconds"},
		{"aws too long", func(m *Mapping) { m.MaxDurationSeconds = 43201 }, gh, "max_duration_seconds"},
		{"zero without normalize", func(m *Mapping) { m.MaxDurationSeconds = 0 }, gh, "max_duration_seconds"},
		{"negative", func(m *Mapping) { m.MaxDurationSeconds = -1 }, gh, "max_duration_seconds"},
		{"gcp 60", func(m *Mapping) {
			withTarget("gcp", `{"service_account":"deploy@acme-prod.iam.gserviceaccount.com"}`)(m)
			m.MaxDurationSeconds = 60
		}, gh, ""},
		{"gcp 59", func(m *Mapping) {
			withTarget("gcp", `{"service_account":"deploy@acme-prod.iam.gserviceaccount.com"}`)(m)
			m.MaxDurationSeconds = 59
		}, gh, "max_duration_seconds"},
		{"gcp 43201", func(m *Mapping) {
			withTarget("gcp", `{"service_account":"deploy@acme-prod.iam.gserviceaccount.com"}`)(m)
			m.MaxDurationSeconds = 43201
		}, gh, "max_duration_seconds"},
		{"azure day", func(m *Mapping) {
			withTarget("azure", `{"tenant_id":"`+guid+`","client_id":"`+guid+`"}`)(m)
			m.MaxDurationSeconds = 86400
		}, gh, ""},
		{"azure over a day", func(m *Mapping) {
			withTarget("azure", `{"tenant_id":"`+guid+`","client_id":"`+guid+`"}`)(m)
			m.MaxDurationSeconds = 86401
		}, gh, "max_duration_seconds"},
		{"jwt 60", func(m *Mapping) { withTarget("jwt", `{"audience":"x"}`)(m); m.MaxDurationSeconds = 60 }, gh, ""},
		{"jwt 86401", func(m *Mapping) { withTarget("jwt", `{"audience":"x"}`)(m); m.MaxDurationSeconds = 86401 }, gh, "max_duration_seconds"},

		// quota
		{"nil quota", func(m *Mapping) { m.Quota = nil }, gh, ""},
		{"zero quota", func(m *Mapping) { m.Quota = &Quota{} }, gh, ""},
		{"negative per_hour", func(m *Mapping) { m.Quota = &Quota{PerHour: -1} }, gh, "quota.per_hour"},
		{"negative per_job", func(m *Mapping) { m.Quota = &Quota{PerJob: -5} }, gh, "quota.per_job"},

		// breadth (attack catalogue 25)
		{"github no conditions", withConditions(Conditions{}), gh, "conditions.repository"},
		{"gitlab no conditions", withConditions(Conditions{}), gl, "conditions.repository"},
		{"generic no conditions", withConditions(Conditions{}), gen, "conditions"},
		{"unknown kind no repository", withConditions(Conditions{Ref: One("refs/heads/main")}), "", "conditions.repository"},
		{"github ref only", withConditions(Conditions{Ref: One("refs/heads/main"), Environment: One("production")}), gh, "conditions.repository"},
		{"github claims only", withConditions(Conditions{Claims: map[string]Values{"repository_owner_id": *One("1")}}), gh, "conditions.repository"},
		{"github repository_id only", withConditions(Conditions{RepositoryID: One("1339936803")}), gh, ""},
		{"gitlab repository only", withConditions(Conditions{Repository: One("group/sub/project")}), gl, ""},
		{"generic ref only", withConditions(Conditions{Ref: One("refs/heads/main")}), gen, ""},
		{"generic claims only", withConditions(Conditions{Claims: map[string]Values{"pipeline_slug": *One("deploy")}}), gen, ""},
		{"generic empty claims map", withConditions(Conditions{Claims: map[string]Values{}}), gen, "conditions"},

		// repository patterns
		{"repository owner star", withConditions(Conditions{Repository: One("acme/*")}), gh, ""},
		{"repository owner dstar", withConditions(Conditions{Repository: One("acme/**")}), gh, ""},
		{"repository upper", withConditions(Conditions{Repository: One("Acme/Web")}), gh, ""},
		{"repository dots", withConditions(Conditions{Repository: One("acme/web.github.io")}), gh, ""},
		{"repository prefix", withConditions(Conditions{Repository: One("acme/app*")}), gh, ""},
		{"repository question", withConditions(Conditions{Repository: One("acme/ap?")}), gh, ""},
		{"repository nested", withConditions(Conditions{Repository: One("acme/sub/**/x")}), gl, ""},
		{"repository star", withConditions(Conditions{Repository: One("*")}), gh, "conditions.repository"},
		{"repository dstar", withConditions(Conditions{Repository: One("**")}), gh, "conditions.repository"},
		{"repository dstar web", withConditions(Conditions{Repository: One("**/web")}), gh, "conditions.repository"},
		{"repository star web", withConditions(Conditions{Repository: One("*/web")}), gh, "conditions.repository"},
		{"repository owner prefix", withConditions(Conditions{Repository: One("ac*/web")}), gh, "conditions.repository"},
		{"repository owner question", withConditions(Conditions{Repository: One("acm?/web")}), gh, "conditions.repository"},
		{"repository no slash", withConditions(Conditions{Repository: One("acme")}), gh, "conditions.repository"},
		{"repository empty owner", withConditions(Conditions{Repository: One("/web")}), gh, "conditions.repository"},
		{"repository trailing slash", withConditions(Conditions{Repository: One("acme/")}), gh, "conditions.repository"},
		{"repository double slash", withConditions(Conditions{Repository: One("acme//web")}), gh, "conditions.repository"},
		{"repository dot dot", withConditions(Conditions{Repository: One("acme/../web")}), gh, "conditions.repository"},
		{"repository space", withConditions(Conditions{Repository: One("acme/my web")}), gh, "conditions.repository"},
		{"repository colon", withConditions(Conditions{Repository: One("acme/web:ref")}), gh, "conditions.repository"},
		{"repository non-ASCII", withConditions(Conditions{Repository: One("\u0430cme/web")}), gh, "conditions.repository"},
		{"repository list index", withConditions(Conditions{Repository: Any("acme/web", "*")}), gh, "conditions.repository[1]"},
		{"repository list of one", withConditions(Conditions{Repository: Any("*")}), gh, "conditions.repository[0]"},
		{"repository triple star", withConditions(Conditions{Repository: One("acme/***")}), gh, "conditions.repository"},

		// repository_id
		{"repository_id list", withConditions(Conditions{RepositoryID: Any("1", "1339936803")}), gh, ""},
		{"repository_id star", withConditions(Conditions{RepositoryID: One("*")}), gh, "conditions.repository_id"},
		{"repository_id pattern", withConditions(Conditions{RepositoryID: One("13*")}), gh, "conditions.repository_id"},
		{"repository_id negative", withConditions(Conditions{RepositoryID: One("-1")}), gh, "conditions.repository_id"},
		{"repository_id hex", withConditions(Conditions{RepositoryID: One("0x1f")}), gh, "conditions.repository_id"},
		{"repository_id space", withConditions(Conditions{RepositoryID: One(" 123")}), gh, "conditions.repository_id"},
		{"repository_id leading zero", withConditions(Conditions{RepositoryID: One("0123")}), gh, "conditions.repository_id"},
		{"repository_id zero", withConditions(Conditions{RepositoryID: One("0")}), gh, ""},
		{"repository_id too long", withConditions(Conditions{RepositoryID: One(strings.Repeat("9", 21))}), gh, "conditions.repository_id"},
		{"repository_id unicode digits", withConditions(Conditions{RepositoryID: One("١٢٣")}), gh, "conditions.repository_id"},
		{"repository_id second bad", withConditions(Conditions{RepositoryID: Any("1", "x")}), gh, "conditions.repository_id[1]"},

		// ref
		{"ref tags", func(m *Mapping) { m.Conditions.Ref = Any("refs/heads/main", "refs/tags/v*") }, gh, ""},
		{"ref any", func(m *Mapping) { m.Conditions.Ref = One("refs/**") }, gh, ""},
		{"ref bare", func(m *Mapping) { m.Conditions.Ref = One("main") }, gh, "conditions.ref"},
		{"ref heads without refs", func(m *Mapping) { m.Conditions.Ref = One("heads/main") }, gh, "conditions.ref"},
		{"ref star", func(m *Mapping) { m.Conditions.Ref = One("*") }, gh, "conditions.ref"},
		{"ref upper", func(m *Mapping) { m.Conditions.Ref = One("Refs/heads/main") }, gh, "conditions.ref"},
		{"ref second", func(m *Mapping) { m.Conditions.Ref = Any("refs/heads/main", "main") }, gh, "conditions.ref[1]"},
		{"ref NUL", func(m *Mapping) { m.Conditions.Ref = One("refs/heads/main\x00") }, gh, "conditions.ref"},
		{"ref newline", func(m *Mapping) { m.Conditions.Ref = One("refs/heads/main\n") }, gh, "conditions.ref"},
		{"ref triple star", func(m *Mapping) { m.Conditions.Ref = One("refs/***") }, gh, "conditions.ref"},

		// shared pattern rules
		{"empty values", func(m *Mapping) { m.Conditions.Environment = Any() }, gh, "conditions.environment"},
		{"nil patterns", func(m *Mapping) { m.Conditions.Environment = &Values{} }, gh, "conditions.environment"},
		{"empty pattern", func(m *Mapping) { m.Conditions.Environment = One("") }, gh, "conditions.environment"},
		{"empty pattern in list", func(m *Mapping) { m.Conditions.Environment = Any("production", "") }, gh, "conditions.environment[1]"},
		{"environment with space", func(m *Mapping) { m.Conditions.Environment = One("prod eu") }, gh, ""},
		{"environment tab", func(m *Mapping) { m.Conditions.Environment = One("prod\teu") }, gh, "conditions.environment"},
		{"environment NUL", func(m *Mapping) { m.Conditions.Environment = One("production\x00") }, gh, "conditions.environment"},
		{"environment DEL", func(m *Mapping) { m.Conditions.Environment = One("production\x7f") }, gh, "conditions.environment"},
		{"environment non-ASCII", func(m *Mapping) { m.Conditions.Environment = One("prödüction") }, gh, "conditions.environment"},
		{"environment invalid UTF-8", func(m *Mapping) { m.Conditions.Environment = One("prod\xff") }, gh, "conditions.environment"},
		{"environment triple star", func(m *Mapping) { m.Conditions.Environment = One("***") }, gh, "conditions.environment"},
		{"environment dstar", func(m *Mapping) { m.Conditions.Environment = One("**") }, gh, ""},
		{"pattern max length", func(m *Mapping) { m.Conditions.Environment = One(strings.Repeat("e", 256)) }, gh, ""},
		{"pattern too long", func(m *Mapping) { m.Conditions.Environment = One(strings.Repeat("e", 257)) }, gh, "conditions.environment"},
		{"pattern too long in list", func(m *Mapping) { m.Conditions.EventName = Any("push", strings.Repeat("e", 257)) }, gh, "conditions.event_name[1]"},
		{"max patterns", func(m *Mapping) { m.Conditions.EventName = Any(numbered("e", 32)...) }, gh, ""},
		{"too many patterns", func(m *Mapping) { m.Conditions.EventName = Any(numbered("e", 33)...) }, gh, "conditions.event_name"},
		{"event_name newline", func(m *Mapping) { m.Conditions.EventName = Any("push", "push\n") }, gh, "conditions.event_name[1]"},
		{"workflow_ref ok", func(m *Mapping) { m.Conditions.WorkflowRef = One("acme/web/.github/workflows/*.yml@refs/heads/main") }, gh, ""},
		{"workflow_ref NUL", func(m *Mapping) { m.Conditions.WorkflowRef = One("acme/web/x.yml\x00") }, gh, "conditions.workflow_ref"},

		// claims
		{"claims ok", withClaims("runner_environment", One("github-hosted")), gh, ""},
		{"claims job_project_path", withClaims("job_project_path", One("platform/app")), gl, ""},
		{"claims namespaced", withClaims("https://example.com/claims/team", One("ops")), gh, ""},
		{"claims sub", withClaims("sub", One("repo:acme/web:ref:refs/heads/main")), gh, "conditions.claims.sub"},
		{"claims iss", withClaims("iss", One("x")), gh, "conditions.claims.iss"},
		{"claims aud", withClaims("aud", One("x")), gh, "conditions.claims.aud"},
		{"claims exp", withClaims("exp", One("1")), gh, "conditions.claims.exp"},
		{"claims iat", withClaims("iat", One("1")), gh, "conditions.claims.iat"},
		{"claims nbf", withClaims("nbf", One("1")), gh, "conditions.claims.nbf"},
		{"claims jti", withClaims("jti", One("x")), gh, "conditions.claims.jti"},
		{"claims repository", withClaims("repository", One("acme/web")), gh, "conditions.claims.repository"},
		{"claims project_path", withClaims("project_path", One("acme/web")), gl, "conditions.claims.project_path"},
		{"claims repository_id", withClaims("repository_id", One("1")), gh, "conditions.claims.repository_id"},
		{"claims project_id", withClaims("project_id", One("1")), gl, "conditions.claims.project_id"},
		{"claims ref", withClaims("ref", One("main")), gl, "conditions.claims.ref"},
		{"claims ref_path", withClaims("ref_path", One("refs/heads/main")), gl, "conditions.claims.ref_path"},
		{"claims environment", withClaims("environment", One("production")), gh, "conditions.claims.environment"},
		{"claims event_name", withClaims("event_name", One("push")), gh, "conditions.claims.event_name"},
		{"claims pipeline_source", withClaims("pipeline_source", One("push")), gl, "conditions.claims.pipeline_source"},
		{"claims workflow_ref", withClaims("workflow_ref", One("x")), gh, "conditions.claims.workflow_ref"},
		{"claims job_workflow_ref", withClaims("job_workflow_ref", One("x")), gh, "conditions.claims.job_workflow_ref"},
		{"claims ci_config_ref_uri", withClaims("ci_config_ref_uri", One("x")), gl, "conditions.claims.ci_config_ref_uri"},
		{"claims empty name", withClaims("", One("x")), gh, "conditions.claims"},
		{"claims name space", withClaims("runner environment", One("x")), gh, "conditions.claims"},
		{"claims name NUL", withClaims("runner\x00", One("x")), gh, "conditions.claims"},
		{"claims name non-ASCII", withClaims("rünner", One("x")), gh, "conditions.claims"},
		{"claims name too long", withClaims(strings.Repeat("c", 129), One("x")), gh, "conditions.claims"},
		{"claims empty values", withClaims("runner_environment", Any()), gh, "conditions.claims.runner_environment"},
		{"claims empty pattern", withClaims("runner_environment", One("")), gh, "conditions.claims.runner_environment"},
		{"claims NUL pattern", withClaims("runner_environment", Any("a", "b\x00")), gh, "conditions.claims.runner_environment[1]"},
		{"claims newline pattern", withClaims("runner_environment", One("a\nb")), gh, "conditions.claims.runner_environment"},
		{"claims triple star", withClaims("runner_environment", One("***")), gh, "conditions.claims.runner_environment"},
		{"claims too many", func(m *Mapping) {
			m.Conditions.Claims = map[string]Values{}
			for _, n := range numbered("c", 33) {
				m.Conditions.Claims[n] = *One("x")
			}
		}, gh, "conditions.claims"},
		{"claims first error by name", func(m *Mapping) {
			m.Conditions.Claims = map[string]Values{"zeta": *One(""), "alpha": *One(""), "sub": *One("x")}
		}, gh, "conditions.claims.alpha"},

		// aws target
		{"aws full", withTarget("aws", `{"role_arn":"arn:aws:iam::123456789012:role/deploy","region":"eu-west-1",
			"session_policy":"{\"Version\":\"2012-10-17\",\"Statement\":[]}","external_id":"acme:web/prod@x=1,y+z-_."}`), gh, ""},
		{"aws path", withTarget("aws", `{"role_arn":"arn:aws:iam::123456789012:role/ci/deploy/web+prod@x","region":"eu-west-1"}`), gh, ""},
		{"aws gov", withTarget("aws", `{"role_arn":"arn:aws-us-gov:iam::123456789012:role/deploy","region":"us-gov-west-1"}`), gh, ""},
		{"aws china", withTarget("aws", `{"role_arn":"arn:aws-cn:iam::123456789012:role/deploy","region":"cn-north-1"}`), gh, ""},
		{"aws eusc", withTarget("aws", `{"role_arn":"arn:aws-eusc:iam::123456789012:role/deploy","region":"eusc-de-east-1"}`), gh, ""},
		{"aws gov role, public region", withTarget("aws", `{"role_arn":"arn:aws-us-gov:iam::123456789012:role/deploy","region":"us-east-1"}`), gh, "target.region"},
		{"aws public role, gov region", withTarget("aws", `{"role_arn":"arn:aws:iam::123456789012:role/deploy","region":"us-gov-west-1"}`), gh, "target.region"},
		{"aws china role, public region", withTarget("aws", `{"role_arn":"arn:aws-cn:iam::123456789012:role/deploy","region":"ap-east-1"}`), gh, "target.region"},
		{"aws public role, china region", withTarget("aws", `{"role_arn":"arn:aws:iam::123456789012:role/deploy","region":"cn-northwest-1"}`), gh, "target.region"},
		{"aws iso-b", withTarget("aws", `{"role_arn":"arn:aws-iso-b:iam::123456789012:role/deploy","region":"us-isob-east-1"}`), gh, ""},
		{"aws iso role, iso-b region", withTarget("aws", `{"role_arn":"arn:aws-iso:iam::123456789012:role/deploy","region":"us-isob-east-1"}`), gh, "target.region"},
		{"aws china audience", withTarget("aws", `{"role_arn":"arn:aws-cn:iam::123456789012:role/deploy","region":"cn-north-1","mode":"web_identity","audience":"sts.amazonaws.com"}`), gh, ""},
		{"aws audience with assume_role", withTarget("aws", `{"role_arn":"arn:aws:iam::123456789012:role/deploy","region":"eu-west-1","audience":"sts.amazonaws.com"}`), gh, "target.audience"},
		{"aws audience with space", withTarget("aws", `{"role_arn":"arn:aws:iam::123456789012:role/deploy","region":"eu-west-1","mode":"web_identity","audience":"sts amazonaws"}`), gh, "target.audience"},
		{"aws spacing", withTarget("aws", " {\n \"role_arn\" : \"arn:aws:iam::123456789012:role/deploy\", \"region\":\"eu-west-1\" }\n"), gh, ""},
		{"aws no role", withTarget("aws", `{"region":"eu-west-1"}`), gh, "target.role_arn"},
		{"aws no region", withTarget("aws", `{"role_arn":"arn:aws:iam::123456789012:role/deploy"}`), gh, "target.region"},
		{"aws user arn", withTarget("aws", `{"role_arn":"arn:aws:iam::123456789012:user/deploy","region":"eu-west-1"}`), gh, "target.role_arn"},
		{"aws short account", withTarget("aws", `{"role_arn":"arn:aws:iam::12345678901:role/deploy","region":"eu-west-1"}`), gh, "target.role_arn"},
		{"aws account letters", withTarget("aws", `{"role_arn":"arn:aws:iam::12345678901x:role/deploy","region":"eu-west-1"}`), gh, "target.role_arn"},
		{"aws region in arn", withTarget("aws", `{"role_arn":"arn:aws:iam:eu-west-1:123456789012:role/deploy","region":"eu-west-1"}`), gh, "target.role_arn"},
		{"aws sts arn", withTarget("aws", `{"role_arn":"arn:aws:sts::123456789012:assumed-role/deploy/x","region":"eu-west-1"}`), gh, "target.role_arn"},
		{"aws unknown partition", withTarget("aws", `{"role_arn":"arn:evil:iam::123456789012:role/deploy","region":"eu-west-1"}`), gh, "target.role_arn"},
		{"aws empty role name", withTarget("aws", `{"role_arn":"arn:aws:iam::123456789012:role/","region":"eu-west-1"}`), gh, "target.role_arn"},
		{"aws role name wildcard", withTarget("aws", `{"role_arn":"arn:aws:iam::123456789012:role/*","region":"eu-west-1"}`), gh, "target.role_arn"},
		{"aws role name space", withTarget("aws", `{"role_arn":"arn:aws:iam::123456789012:role/de ploy","region":"eu-west-1"}`), gh, "target.role_arn"},
		{"aws role name too long", withTarget("aws", `{"role_arn":"arn:aws:iam::123456789012:role/`+strings.Repeat("r", 65)+`","region":"eu-west-1"}`), gh, "target.role_arn"},
		{"aws role name max", withTarget("aws", `{"role_arn":"arn:aws:iam::123456789012:role/`+strings.Repeat("r", 64)+`","region":"eu-west-1"}`), gh, ""},
		{"aws empty path segment", withTarget("aws", `{"role_arn":"arn:aws:iam::123456789012:role//deploy","region":"eu-west-1"}`), gh, "target.role_arn"},
		{"aws upper arn", withTarget("aws", `{"role_arn":"ARN:aws:iam::123456789012:role/deploy","region":"eu-west-1"}`), gh, "target.role_arn"},
		{"aws region upper", withTarget("aws", `{"role_arn":"arn:aws:iam::123456789012:role/deploy","region":"EU-WEST-1"}`), gh, "target.region"},
		{"aws region no number", withTarget("aws", `{"role_arn":"arn:aws:iam::123456789012:role/deploy","region":"eu-west"}`), gh, "target.region"},
		{"aws region junk", withTarget("aws", `{"role_arn":"arn:aws:iam::123456789012:role/deploy","region":"eu-west-1.evil.com"}`), gh, "target.region"},
		{"aws region url", withTarget("aws", `{"role_arn":"arn:aws:iam::123456789012:role/deploy","region":"https://x"}`), gh, "target.region"},
		{"aws policy not json", withTarget("aws", `{"role_arn":"arn:aws:iam::123456789012:role/deploy","region":"eu-west-1","session_policy":"allow all"}`), gh, "target.session_policy"},
		{"aws policy array", withTarget("aws", `{"role_arn":"arn:aws:iam::123456789012:role/deploy","region":"eu-west-1","session_policy":"[]"}`), gh, "target.session_policy"},
		{"aws policy null", withTarget("aws", `{"role_arn":"arn:aws:iam::123456789012:role/deploy","region":"eu-west-1","session_policy":"null"}`), gh, "target.session_policy"},
		{"aws policy object not string", withTarget("aws", `{"role_arn":"arn:aws:iam::123456789012:role/deploy","region":"eu-west-1","session_policy":{"Version":"2012-10-17"}}`), gh, "target.session_policy"},
		{"aws policy too long", withTarget("aws", `{"role_arn":"arn:aws:iam::123456789012:role/deploy","region":"eu-west-1","session_policy":"{\"x\":\"`+strings.Repeat("p", 2048)+`\"}"}`), gh, "target.session_policy"},
		{"aws external id short", withTarget("aws", `{"role_arn":"arn:aws:iam::123456789012:role/deploy","region":"eu-west-1","external_id":"x"}`), gh, "target.external_id"},
		{"aws external id space", withTarget("aws", `{"role_arn":"arn:aws:iam::123456789012:role/deploy","region":"eu-west-1","external_id":"a b"}`), gh, "target.external_id"},
		{"aws external id long", withTarget("aws", `{"role_arn":"arn:aws:iam::123456789012:role/deploy","region":"eu-west-1","external_id":"`+strings.Repeat("x", 1225)+`"}`), gh, "target.external_id"},
		{"aws external id max", withTarget("aws", `{"role_arn":"arn:aws:iam::123456789012:role/deploy","region":"eu-west-1","external_id":"`+strings.Repeat("x", 1224)+`"}`), gh, ""},
		{"aws unknown field", withTarget("aws", `{"role_arn":"arn:aws:iam::123456789012:role/deploy","region":"eu-west-1","duration":3600}`), gh, "target"},
		{"aws gcp field", withTarget("aws", `{"role_arn":"arn:aws:iam::123456789012:role/deploy","region":"eu-west-1","service_account":"x"}`), gh, "target"},
		{"aws key case", withTarget("aws", `{"Role_ARN":"arn:aws:iam::123456789012:role/deploy","region":"eu-west-1"}`), gh, "target"},
		{"aws duplicate key", withTarget("aws", `{"role_arn":"arn:aws:iam::123456789012:role/deploy","region":"eu-west-1","role_arn":"arn:aws:iam::222222222222:role/admin"}`), gh, "target.role_arn"},
		{"aws wrong type", withTarget("aws", `{"role_arn":123,"region":"eu-west-1"}`), gh, "target.role_arn"},
		{"aws trailing data", withTarget("aws", `{"role_arn":"arn:aws:iam::123456789012:role/deploy","region":"eu-west-1"} {}`), gh, "target"},
		{"aws trailing junk", withTarget("aws", `{"role_arn":"arn:aws:iam::123456789012:role/deploy","region":"eu-west-1"}x`), gh, "target"},
		{"aws array", withTarget("aws", `[{"role_arn":"arn:aws:iam::123456789012:role/deploy","region":"eu-west-1"}]`), gh, "target"},
		{"aws string", withTarget("aws", `"arn:aws:iam::123456789012:role/deploy"`), gh, "target"},
		{"missing target", withTarget("aws", ``), gh, "target"},
		{"null target", withTarget("aws", `null`), gh, "target"},
		{"empty target", withTarget("aws", `{}`), gh, "target.role_arn"},
		{"huge target", withTarget("jwt", `{"audience":"x","claims":{"a":"`+strings.Repeat("x", 17000)+`"}}`), gh, "target"},

		// gcp target
		{"gcp email", withTarget("gcp", `{"service_account":"deploy@acme-prod.iam.gserviceaccount.com"}`), gh, ""},
		{"gcp domain-scoped project", withTarget("gcp", `{"service_account":"deploy@my-project.example.com.iam.gserviceaccount.com"}`), gh, ""},
		{"gcp unique id", withTarget("gcp", `{"service_account":"108234567890123456789"}`), gh, ""},
		{"gcp full", withTarget("gcp", `{"service_account":"deploy@acme-prod.iam.gserviceaccount.com",
			"scopes":["https://www.googleapis.com/auth/cloud-platform"],"delegates":["hop-account@acme-prod.iam.gserviceaccount.com","108234567890123456789"]}`), gh, ""},
		{"gcp none", withTarget("gcp", `{}`), gh, "target.service_account"},
		{"gcp gmail", withTarget("gcp", `{"service_account":"deploy@gmail.com"}`), gh, "target.service_account"},
		{"gcp suffix trick", withTarget("gcp", `{"service_account":"deploy@iam.gserviceaccount.com.evil.com"}`), gh, "target.service_account"},
		{"gcp no project", withTarget("gcp", `{"service_account":"deploy@.iam.gserviceaccount.com"}`), gh, "target.service_account"},
		{"gcp no local", withTarget("gcp", `{"service_account":"@acme.iam.gserviceaccount.com"}`), gh, "target.service_account"},
		{"gcp two at", withTarget("gcp", `{"service_account":"a@b@acme.iam.gserviceaccount.com"}`), gh, "target.service_account"},
		{"gcp upper", withTarget("gcp", `{"service_account":"Deploy@acme.iam.gserviceaccount.com"}`), gh, "target.service_account"},
		{"gcp resource name", withTarget("gcp", `{"service_account":"projects/-/serviceAccounts/deploy@acme.iam.gserviceaccount.com"}`), gh, "target.service_account"},
		{"gcp id leading zero", withTarget("gcp", `{"service_account":"0108234567890123456789"}`), gh, "target.service_account"},
		{"gcp http scope", withTarget("gcp", `{"service_account":"108234567890123456789","scopes":["http://www.googleapis.com/auth/cloud-platform"]}`), gh, "target.scopes[0]"},
		{"gcp bare scope", withTarget("gcp", `{"service_account":"108234567890123456789","scopes":["https://www.googleapis.com/auth/x","cloud-platform"]}`), gh, "target.scopes[1]"},
		{"gcp empty scope", withTarget("gcp", `{"service_account":"108234567890123456789","scopes":[""]}`), gh, "target.scopes[0]"},
		{"gcp scope space", withTarget("gcp", `{"service_account":"108234567890123456789","scopes":["https://x/a b"]}`), gh, "target.scopes[0]"},
		{"gcp bad delegate", withTarget("gcp", `{"service_account":"108234567890123456789","delegates":["bob@example.com"]}`), gh, "target.delegates[0]"},
		{"gcp scopes string", withTarget("gcp", `{"service_account":"108234567890123456789","scopes":"https://www.googleapis.com/auth/cloud-platform"}`), gh, "target.scopes"},
		{"gcp unknown field", withTarget("gcp", `{"service_account":"108234567890123456789","lifetime":"3600s"}`), gh, "target"},

		// azure target
		{"azure", withTarget("azure", `{"tenant_id":"`+guid+`","client_id":"`+guid2+`"}`), gh, ""},
		{"azure scope", withTarget("azure", `{"tenant_id":"`+guid+`","client_id":"`+guid+`","scope":"https://management.azure.com/.default"}`), gh, ""},
		{"azure api scope", withTarget("azure", `{"tenant_id":"`+guid+`","client_id":"`+guid+`","scope":"api://`+guid+`/.default"}`), gh, ""},
		{"azure no tenant", withTarget("azure", `{"client_id":"`+guid+`"}`), gh, "target.tenant_id"},
		{"azure tenant domain", withTarget("azure", `{"tenant_id":"contoso.onmicrosoft.com","client_id":"`+guid+`"}`), gh, "target.tenant_id"},
		{"azure tenant braces", withTarget("azure", `{"tenant_id":"{`+guid+`}","client_id":"`+guid+`"}`), gh, "target.tenant_id"},
		{"azure no client", withTarget("azure", `{"tenant_id":"`+guid+`"}`), gh, "target.client_id"},
		{"azure client not hex", withTarget("azure", `{"tenant_id":"`+guid+`","client_id":"`+strings.Replace(guid, "0", "g", 1)+`"}`), gh, "target.client_id"},
		{"azure client no dashes", withTarget("azure", `{"tenant_id":"`+guid+`","client_id":"0b6c3a524c1f4e8a9d1e3f2a7b6c5d4e0000"}`), gh, "target.client_id"},
		{"azure scope not default", withTarget("azure", `{"tenant_id":"`+guid+`","client_id":"`+guid+`","scope":"https://management.azure.com/user_impersonation"}`), gh, "target.scope"},
		{"azure scope http", withTarget("azure", `{"tenant_id":"`+guid+`","client_id":"`+guid+`","scope":"http://management.azure.com/.default"}`), gh, "target.scope"},
		{"azure scope bare", withTarget("azure", `{"tenant_id":"`+guid+`","client_id":"`+guid+`","scope":".default"}`), gh, "target.scope"},
		{"azure scope query", withTarget("azure", `{"tenant_id":"`+guid+`","client_id":"`+guid+`","scope":"https://x/?a=1/.default"}`), gh, "target.scope"},
		{"azure override field", withTarget("azure", `{"tenant_id":"`+guid+`","client_id":"`+guid+`","client_secret":"x"}`), gh, "target"},

		// jwt target
		{"jwt", withTarget("jwt", `{"audience":"https://vault.example.com"}`), gh, ""},
		{"jwt claims", withTarget("jwt", `{"audience":"x","claims":{"team":"ops","n":1,"nested":{"a":[1,2]}}}`), gh, ""},
		{"jwt no audience", withTarget("jwt", `{}`), gh, "target.audience"},
		{"jwt empty audience", withTarget("jwt", `{"audience":""}`), gh, "target.audience"},
		{"jwt audience space", withTarget("jwt", `{"audience":"a b"}`), gh, "target.audience"},
		{"jwt audience list", withTarget("jwt", `{"audience":["a","b"]}`), gh, "target.audience"},
		{"jwt reserved claim sub", withTarget("jwt", `{"audience":"x","claims":{"sub":"admin"}}`), gh, "target.claims.sub"},
		{"jwt reserved claim exp", withTarget("jwt", `{"audience":"x","claims":{"exp":99999999999}}`), gh, "target.claims.exp"},
		{"jwt empty claim name", withTarget("jwt", `{"audience":"x","claims":{"":1}}`), gh, "target.claims"},
		{"jwt claims array", withTarget("jwt", `{"audience":"x","claims":[1]}`), gh, "target.claims"},
		{"aws target for jwt", withTarget("jwt", `{"role_arn":"arn:aws:iam::123456789012:role/deploy","region":"eu-west-1"}`), gh, "target"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := ghMapping(tt.edit)
			wantField(t, ValidateMapping(m, tt.kind), tt.wantField)
		})
	}
}

func TestValidateMappingNil(t *testing.T) {
	t.Parallel()
	if err := ValidateMapping(nil, identity.KindGitHub); !errors.Is(err, ErrInvalid) {
		t.Fatalf("ValidateMapping(nil) = %v, want ErrInvalid", err)
	}
}

// TestValidateMappingMessages pins the messages that tell an admin what to do.
func TestValidateMappingMessages(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(*Mapping)
		kind identity.Kind
		want string
	}{
		{"sub", withClaims("sub", One("repo:acme/web:*")), identity.KindGitHub, "format varies"},
		{"name", func(m *Mapping) { m.Name = "X" }, identity.KindGitHub, "1-64 characters of a-z, 0-9"},
		{"breadth", withConditions(Conditions{Ref: One("refs/heads/main")}), identity.KindGitLab, "repository_id"},
		{"owner literal", withConditions(Conditions{Repository: One("*/web")}), identity.KindGitHub, "literally"},
		{"triple star", func(m *Mapping) { m.Conditions.Ref = One("refs/***") }, identity.KindGitHub, "'**'"},
		{"duration", func(m *Mapping) { m.MaxDurationSeconds = 60 }, identity.KindGitHub, "between 900 and 43200"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := ValidateMapping(ghMapping(tt.edit), tt.kind)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v does not mention %q", err, tt.want)
			}
		})
	}
}

// TestValidateMappingJSON runs the contract's example through the JSON path
// the handler uses: decode, Normalize, validate.
func TestValidateMappingJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		body      string
		wantField string
	}{
		{"contract example", `{
			"name": "web-prod-deploy", "issuer": "github", "enabled": true,
			"conditions": {
				"repository": "acme/web", "repository_id": "123456", "ref": "refs/heads/main",
				"environment": "production", "event_name": ["push", "workflow_dispatch"],
				"workflow_ref": "acme/web/.github/workflows/deploy.yml@refs/heads/main",
				"claims": {"runner_environment": "github-hosted"}
			},
			"provider": "aws",
			"target": {"role_arn": "arn:aws:iam::123456789012:role/deploy", "region": "eu-west-1"},
			"max_duration_seconds": 3600,
			"quota": {"per_hour": 100, "per_job": 5}
		}`, ""},
		{"defaults", `{"name":"m","issuer":"github","conditions":{"repository_id":"1"},"provider":"jwt","target":{"audience":"x"}}`, ""},
		{"list of one names index", `{"name":"m","issuer":"github","conditions":{"repository":["*"]},"provider":"jwt","target":{"audience":"x"}}`, "conditions.repository[0]"},
		{"empty list", `{"name":"m","issuer":"github","conditions":{"repository_id":"1","ref":[]},"provider":"jwt","target":{"audience":"x"}}`, "conditions.ref"},
		{"escaped NUL", `{"name":"m","issuer":"github","conditions":{"repository":"acme/web\u0000"},"provider":"jwt","target":{"audience":"x"}}`, "conditions.repository"},
		{"escaped newline in claims", `{"name":"m","issuer":"github","conditions":{"repository":"acme/web","claims":{"x":["a","b\n"]}},"provider":"jwt","target":{"audience":"x"}}`, "conditions.claims.x[1]"},
		{"claims boolean", `{"name":"m","issuer":"github","conditions":{"repository":"acme/web","claims":{"x":true}},"provider":"jwt","target":{"audience":"x"}}`, ""},
		{"claims number", `{"name":"m","issuer":"github","conditions":{"repository":"acme/web","claims":{"x":7}},"provider":"jwt","target":{"audience":"x"}}`, ""},
		{"claims number list", `{"name":"m","issuer":"github","conditions":{"repository":"acme/web","claims":{"x":[1,2.5,-3e2]}},"provider":"jwt","target":{"audience":"x"}}`, ""},
		{"claims boolean list", `{"name":"m","issuer":"github","conditions":{"repository":"acme/web","claims":{"x":[true,false]}},"provider":"jwt","target":{"audience":"x"}}`, ""},
		{"claims mixed list string bool", `{"name":"m","issuer":"github","conditions":{"repository":"acme/web","claims":{"x":["true",true]}},"provider":"jwt","target":{"audience":"x"}}`, "conditions.claims.x"},
		{"claims mixed list number string", `{"name":"m","issuer":"github","conditions":{"repository":"acme/web","claims":{"x":[7,"7"]}},"provider":"jwt","target":{"audience":"x"}}`, "conditions.claims.x"},
		{"claims mixed list bool number", `{"name":"m","issuer":"github","conditions":{"repository":"acme/web","claims":{"x":[true,1]}},"provider":"jwt","target":{"audience":"x"}}`, "conditions.claims.x"},
		{"claims null", `{"name":"m","issuer":"github","conditions":{"repository":"acme/web","claims":{"x":null}},"provider":"jwt","target":{"audience":"x"}}`, "conditions.claims.x"},
		{"claims object", `{"name":"m","issuer":"github","conditions":{"repository":"acme/web","claims":{"x":{"a":"b"}}},"provider":"jwt","target":{"audience":"x"}}`, "conditions.claims.x"},
		{"claims list of lists", `{"name":"m","issuer":"github","conditions":{"repository":"acme/web","claims":{"x":[["a"]]}},"provider":"jwt","target":{"audience":"x"}}`, "conditions.claims.x[0]"},
		{"claims null in list", `{"name":"m","issuer":"github","conditions":{"repository":"acme/web","claims":{"x":["a",null]}},"provider":"jwt","target":{"audience":"x"}}`, "conditions.claims.x[1]"},
		{"claims object in list", `{"name":"m","issuer":"github","conditions":{"repository":"acme/web","claims":{"x":[1,{}]}},"provider":"jwt","target":{"audience":"x"}}`, "conditions.claims.x[1]"},
		{"claims empty list", `{"name":"m","issuer":"github","conditions":{"repository":"acme/web","claims":{"x":[]}},"provider":"jwt","target":{"audience":"x"}}`, "conditions.claims.x"},
		{"claims huge exponent", `{"name":"m","issuer":"github","conditions":{"repository":"acme/web","claims":{"x":1e99999999}},"provider":"jwt","target":{"audience":"x"}}`, "conditions.claims.x"},
		{"claims tiny exponent", `{"name":"m","issuer":"github","conditions":{"repository":"acme/web","claims":{"x":[1,1e-99999]}},"provider":"jwt","target":{"audience":"x"}}`, "conditions.claims.x[1]"},
		{"claims large exponent within range", `{"name":"m","issuer":"github","conditions":{"repository":"acme/web","claims":{"x":1e1000}},"provider":"jwt","target":{"audience":"x"}}`, ""},
		{"claims long number", `{"name":"m","issuer":"github","conditions":{"repository":"acme/web","claims":{"x":1000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000}},"provider":"jwt","target":{"audience":"x"}}`, "conditions.claims.x"},
		{"repository number", `{"name":"m","issuer":"github","conditions":{"repository":5},"provider":"jwt","target":{"audience":"x"}}`, "conditions.repository"},
		{"ref boolean list", `{"name":"m","issuer":"github","conditions":{"repository":"acme/web","ref":[true]},"provider":"jwt","target":{"audience":"x"}}`, "conditions.ref"},
		{"environment null in list", `{"name":"m","issuer":"github","conditions":{"repository":"acme/web","environment":["a",null]},"provider":"jwt","target":{"audience":"x"}}`, "conditions.environment"},
		{"no target", `{"name":"m","issuer":"github","conditions":{"repository":"acme/web"},"provider":"aws"}`, "target"},
		{"negative duration", `{"name":"m","issuer":"github","conditions":{"repository":"acme/web"},"provider":"jwt","target":{"audience":"x"},"max_duration_seconds":-60}`, "max_duration_seconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var m Mapping
			if err := json.Unmarshal([]byte(tt.body), &m); err != nil {
				t.Fatalf("decode: %v", err)
			}
			Normalize(&m)
			wantField(t, ValidateMapping(&m, identity.KindGitHub), tt.wantField)
		})
	}
}

func numbered(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

func FuzzValidateMapping(f *testing.F) {
	seeds := []string{
		`{"name":"web-prod-deploy","issuer":"github","enabled":true,"conditions":{"repository":"acme/web","repository_id":"123456","ref":"refs/heads/main","environment":"production","event_name":["push","workflow_dispatch"],"workflow_ref":"acme/web/.github/workflows/deploy.yml@refs/heads/main","claims":{"runner_environment":"github-hosted"}},"provider":"aws","target":{"role_arn":"arn:aws:iam::123456789012:role/deploy","region":"eu-west-1"},"max_duration_seconds":3600,"quota":{"per_hour":100,"per_job":5}}`,
		`{"name":"m","issuer":"gitlab","conditions":{"repository":"platform/**","claims":{"job_project_path":"platform/app"}},"provider":"gcp","target":{"service_account":"deploy@acme.iam.gserviceaccount.com","scopes":["https://www.googleapis.com/auth/cloud-platform"]}}`,
		`{"name":"m","issuer":"ci","conditions":{"claims":{"pipeline_slug":"x"}},"provider":"azure","target":{"tenant_id":"` + guid + `","client_id":"` + guid + `","scope":"api://x/.default"}}`,
		`{"name":"m","issuer":"github","conditions":{"repository":"*"},"provider":"jwt","target":{"audience":"x","claims":{"sub":1}}}`,
		`{"name":"m","issuer":"github","conditions":{"repository":["acme/web","a\u0000"],"claims":{"sub":"x","":"y"}},"provider":"aws","target":{"role_arn":1}}`,
		`{"provider":"aws","target":{"role_arn":"a","role_arn":"b"}}`,
		`{"provider":"aws","target":[1,2]}`,
		`{"provider":"gcp","target":{"scopes":[null]},"max_duration_seconds":-1,"quota":{"per_hour":-1}}`,
		`{}`,
		`{"conditions":{"ref":[]}}`,
	}
	for _, s := range seeds {
		for _, k := range []string{"github", "gitlab", "generic", ""} {
			f.Add([]byte(s), k)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte, kind string) {
		var m Mapping
		if json.Unmarshal(body, &m) != nil {
			return
		}
		Normalize(&m)
		k := identity.Kind(kind)
		err1 := ValidateMapping(&m, k)
		err2 := ValidateMapping(&m, k)
		if fmt.Sprint(err1) != fmt.Sprint(err2) {
			t.Fatalf("not deterministic: %v, then %v", err1, err2)
		}
		if err1 != nil {
			var ve *ValidationError
			if !errors.As(err1, &ve) || !errors.Is(err1, ErrInvalid) {
				t.Fatalf("error %v (%T) is not a ValidationError", err1, err1)
			}
			return
		}
		// A valid mapping survives the API's round trip and stays valid.
		out, err := json.Marshal(&m)
		if err != nil {
			t.Fatalf("marshal valid mapping: %v", err)
		}
		var back Mapping
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("decode re-encoded mapping %s: %v", out, err)
		}
		if err := ValidateMapping(&back, k); err != nil {
			t.Fatalf("re-encoded mapping %s is invalid: %v", out, err)
		}
		// And its conditions are not too broad for its issuer's tokens.
		if !m.Conditions.constrains(rulesOf(k)) {
			t.Fatalf("valid mapping %s does not constrain tokens of kind %q", out, k)
		}
		for _, c := range []*identity.Claims{ghClaims(nil), glClaims(nil), {Kind: k, IssuerName: m.Issuer}} {
			c.IssuerName = m.Issuer
			m.Admits(c)
		}
	})
}
