package mapping_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/oidc-bridge/oidc-bridge/identity"
	"github.com/oidc-bridge/oidc-bridge/mapping"
	"github.com/oidc-bridge/oidc-bridge/test/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func TestStoreIssuerByURL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := mapping.NewPGStore(pgtest.NewPool(t), 0)
	if _, err := s.CreateIssuer(ctx, mapping.Issuer{Name: "github", URL: "https://token.actions.githubusercontent.com",
		Kind: "github", Audiences: []string{"a", "b"}, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	got, err := s.IssuerByURL(ctx, "https://token.actions.githubusercontent.com")
	if err != nil {
		t.Fatal(err)
	}
	want := identity.Issuer{Name: "github", URL: "https://token.actions.githubusercontent.com", Kind: identity.KindGitHub,
		Audiences: []string{"a", "b"}, Enabled: true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	// The lookup is byte-exact: no normalisation of case, slashes or scheme.
	for _, u := range []string{
		"https://token.actions.githubusercontent.com/",
		"https://Token.Actions.GitHubUserContent.com",
		"http://token.actions.githubusercontent.com",
		"https://token.actions.githubusercontent.com/acme",
		"https://token.actions.githubusercontent.com%",
		"",
	} {
		if _, err := s.IssuerByURL(ctx, u); !errors.Is(err, identity.ErrIssuerNotFound) {
			t.Errorf("IssuerByURL(%q): %v, want ErrIssuerNotFound", u, err)
		}
	}
}

func TestStoreMappingRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := mapping.NewPGStore(pgtest.NewPool(t), 0)
	if _, err := s.CreateIssuer(ctx, mapping.Issuer{Name: "gl", URL: "https://gitlab.com", Kind: "gitlab",
		Audiences: []string{"x"}, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	in := mapping.Mapping{
		Name: "m", Issuer: "gl", Enabled: true, Provider: "gcp",
		Conditions: mapping.Conditions{
			Repository:  mapping.One("platform/*"),
			Ref:         mapping.Any("refs/heads/main"),
			Environment: mapping.Any("prod", "staging"),
			Claims:      map[string]mapping.Values{"job_project_path": *mapping.One("platform/app")},
		},
		Target:             json.RawMessage(`{"service_account": "d@p.iam.gserviceaccount.com", "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}`),
		MaxDurationSeconds: 600,
		Quota:              &mapping.Quota{PerJob: 2},
	}
	checked := identity.Kind("")
	out, err := s.CreateMapping(ctx, in, func(k identity.Kind) error { checked = k; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if checked != identity.KindGitLab {
		t.Errorf("check saw kind %q", checked)
	}
	got, err := s.GetMapping(ctx, "m")
	if err != nil {
		t.Fatal(err)
	}
	opts := []cmp.Option{cmpopts.IgnoreFields(mapping.Mapping{}, "ID", "CreatedAt", "UpdatedAt", "Target")}
	if diff := cmp.Diff(in, got, opts...); diff != "" {
		t.Fatalf("(-in +got):\n%s", diff)
	}
	if got.ID == 0 || got.ID != out.ID {
		t.Errorf("ids: %d %d", got.ID, out.ID)
	}
	var a, b any
	_ = json.Unmarshal(in.Target, &a)
	_ = json.Unmarshal(got.Target, &b)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("target (-in +got):\n%s", diff)
	}

	// A failing check writes nothing.
	boom := errors.New("boom")
	in.Name = "m2"
	if _, err := s.CreateMapping(ctx, in, func(identity.Kind) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("create with failing check: %v", err)
	}
	if _, err := s.GetMapping(ctx, "m2"); !errors.Is(err, mapping.ErrNotFound) {
		t.Fatalf("m2 was written: %v", err)
	}
	// An unknown issuer is a validation error on the issuer field.
	in.Issuer = "nope"
	_, err = s.CreateMapping(ctx, in, nil)
	var ve *mapping.ValidationError
	if !errors.As(err, &ve) || ve.Field != "issuer" {
		t.Fatalf("unknown issuer: %v", err)
	}
}
