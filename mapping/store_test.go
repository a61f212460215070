package mapping_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/oidc-bridge/oidc-bridge/identity"
	"github.com/oidc-bridge/oidc-bridge/mapping"
	"github.com/oidc-bridge/oidc-bridge/test/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// testActor makes the writes of tests that are not about the history.
var testActor = mapping.Actor{Name: "test"}

func TestStoreIssuerByURL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := mapping.NewPGStore(runtimePool(t), 0)
	if _, err := s.CreateIssuer(ctx, testActor, mapping.Issuer{Name: "github", URL: "https://token.actions.githubusercontent.com",
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
	s := mapping.NewPGStore(runtimePool(t), 0)
	if _, err := s.CreateIssuer(ctx, testActor, mapping.Issuer{Name: "gl", URL: "https://gitlab.com", Kind: "gitlab",
		Audiences: []string{"x"}, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	in := mapping.Mapping{
		Name: "m", Issuer: "gl", Enabled: true, Provider: "gcp",
		Conditions: mapping.Conditions{
			Repository:  mapping.One("platform/*"),
			Ref:         mapping.Any("refs/heads/main"),
			Environment: mapping.Any("prod", "staging"),
			Claims: map[string]mapping.Values{"job_project_path": *mapping.One("platform/app"),
				"ref_protected": *mapping.Any("true"), "team_verified": *mapping.OneBool(true),
				"runner_group_id": *mapping.AnyOf(mapping.TypeNumber, "7.0", "1000")},
		},
		Target:             json.RawMessage(`{"service_account": "deploy@acme-prod.iam.gserviceaccount.com", "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}`),
		MaxDurationSeconds: 600,
		Quota:              &mapping.Quota{PerJob: 2},
		Mode:               mapping.ModeAudit,
	}
	checked := identity.Kind("")
	out, err := s.CreateMapping(ctx, testActor, in, func(k identity.Kind) error { checked = k; return nil })
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
	if _, err := s.CreateMapping(ctx, testActor, in, func(identity.Kind) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("create with failing check: %v", err)
	}
	if _, err := s.GetMapping(ctx, "m2"); !errors.Is(err, mapping.ErrNotFound) {
		t.Fatalf("m2 was written: %v", err)
	}
	// An unknown issuer is a validation error on the issuer field.
	in.Issuer = "nope"
	_, err = s.CreateMapping(ctx, testActor, in, nil)
	var ve *mapping.ValidationError
	if !errors.As(err, &ve) || ve.Field != "issuer" {
		t.Fatalf("unknown issuer: %v", err)
	}
}

// TestStoreMode: the mode is stored and read back; a mapping written
// without one (not normalised) is enforce.
func TestStoreMode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := mapping.NewPGStore(runtimePool(t), 0)
	if _, err := s.CreateIssuer(ctx, testActor, mapping.Issuer{Name: "gh", URL: "https://gh.example", Kind: "github",
		Audiences: []string{"x"}, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	m := mapping.Mapping{Name: "m", Issuer: "gh", Enabled: true, Provider: "jwt", Target: json.RawMessage(`{"audience": "a"}`),
		Conditions: mapping.Conditions{Repository: mapping.One("acme/web")}, MaxDurationSeconds: 60}
	out, err := s.CreateMapping(ctx, testActor, m, nil)
	if err != nil || out.Mode != mapping.ModeEnforce {
		t.Fatalf("create without mode: %q %v", out.Mode, err)
	}
	m.Mode = mapping.ModeAudit
	if out, err = s.UpdateMapping(ctx, testActor, "m", m, nil); err != nil || out.Mode != mapping.ModeAudit {
		t.Fatalf("update to audit: %q %v", out.Mode, err)
	}
	ms, err := s.ListMappings(ctx, mapping.Filter{})
	if err != nil || len(ms) != 1 || ms[0].Mode != mapping.ModeAudit {
		t.Fatalf("list: %+v %v", ms, err)
	}
	// The database refuses another mode.
	m.Mode = "shadow"
	if _, err := s.UpdateMapping(ctx, testActor, "m", m, nil); err == nil {
		t.Fatal("mode shadow stored")
	}
}

// change is a row of audit.admin_changes.
type change struct {
	Actor, Action, Kind, Name string
	Before, After             map[string]any
	RequestID                 *string
}

func changes(t *testing.T, pool *pgxpool.Pool) []change {
	t.Helper()
	rows, err := pool.Query(context.Background(),
		`SELECT actor, action, kind, name, before, after, request_id FROM audit.admin_changes`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (change, error) {
		var c change
		err := r.Scan(&c.Actor, &c.Action, &c.Kind, &c.Name, &c.Before, &c.After, &c.RequestID)
		return c, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// asJSON is v as the admin API writes it, decoded into generic JSON.
func asJSON(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestStoreRecordsChanges: each write records one row with its actor and
// the API objects before and after, in the same transaction; failed and
// refused writes record nothing.
func TestStoreRecordsChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	runtime, pool := pgtest.NewRuntimePool(t)
	s := mapping.NewPGStore(runtime, 0)
	alice := mapping.Actor{Name: "alice", RequestID: "req-1"}
	bob := mapping.Actor{Name: "bob"}
	rid := func(s string) *string { return &s }

	var want []change
	check := func(step string) {
		t.Helper()
		if diff := cmp.Diff(want, changes(t, pool)); diff != "" {
			t.Fatalf("%s: changes (-want +got):\n%s", step, diff)
		}
	}

	is := mapping.Issuer{Name: "gh", URL: "https://gh.example", Kind: "github", Audiences: []string{"x"}, Enabled: true}
	gh, err := s.CreateIssuer(ctx, alice, is)
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, change{"alice", "create", "issuer", "gh", nil, asJSON(t, gh), rid("req-1")})
	check("create issuer")

	m := mapping.Mapping{Name: "m", Issuer: "gh", Enabled: true, Provider: "jwt", Target: json.RawMessage(`{"audience": "a"}`),
		Conditions: mapping.Conditions{Repository: mapping.One("acme/web")}, MaxDurationSeconds: 60, Mode: mapping.ModeEnforce}
	m1, err := s.CreateMapping(ctx, bob, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, change{"bob", "create", "mapping", "m", nil, asJSON(t, m1), nil})
	check("create mapping")

	// A rename is recorded under the old name; after carries the new one.
	m.Name, m.Mode = "m-renamed", mapping.ModeAudit
	m2, err := s.UpdateMapping(ctx, alice, "m", m, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a := asJSON(t, m2); a["name"] != "m-renamed" || a["mode"] != "audit" {
		t.Fatalf("after %v", a)
	}
	want = append(want, change{"alice", "update", "mapping", "m", asJSON(t, m1), asJSON(t, m2), rid("req-1")})
	check("rename mapping")

	is.Enabled = false
	gh2, err := s.UpdateIssuer(ctx, bob, "gh", is, nil)
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, change{"bob", "update", "issuer", "gh", asJSON(t, gh), asJSON(t, gh2), nil})
	check("update issuer")

	// Refused and failed writes record nothing.
	boom := errors.New("boom")
	type attempt struct {
		name string
		err  error
	}
	var refused []attempt
	try := func(name string, err error) { refused = append(refused, attempt{name, err}) }
	_, err = s.CreateIssuer(ctx, alice, is) // duplicate name
	try("duplicate issuer", err)
	_, err = s.UpdateIssuer(ctx, alice, "nope", is, nil)
	try("update unknown issuer", err)
	_, err = s.UpdateIssuer(ctx, alice, "gh", is, func(mapping.Mapping) error { return boom })
	try("issuer update refused by check", err)
	try("delete issuer in use", s.DeleteIssuer(ctx, alice, "gh"))
	try("delete unknown issuer", s.DeleteIssuer(ctx, alice, "nope"))
	_, err = s.CreateMapping(ctx, alice, m, nil) // duplicate
	try("duplicate mapping", err)
	_, err = s.CreateMapping(ctx, alice, mapping.Mapping{Name: "x", Issuer: "gh", Enabled: true, Provider: "jwt",
		Target: json.RawMessage(`{}`), MaxDurationSeconds: 60}, func(identity.Kind) error { return boom })
	try("mapping refused by check", err)
	_, err = s.UpdateMapping(ctx, alice, "nope", m, nil)
	try("update unknown mapping", err)
	try("delete unknown mapping", s.DeleteMapping(ctx, alice, "nope"))
	_, err = s.CreateMapping(ctx, mapping.Actor{}, mapping.Mapping{Name: "y", Issuer: "gh", Enabled: true, Provider: "jwt",
		Target: json.RawMessage(`{}`), MaxDurationSeconds: 60}, nil)
	try("no actor", err)
	for _, r := range refused {
		if r.err == nil {
			t.Errorf("%s: succeeded", r.name)
		}
	}
	if !errors.Is(refused[len(refused)-1].err, mapping.ErrNoActor) {
		t.Errorf("no actor: %v", refused[len(refused)-1].err)
	}
	if _, err := s.GetMapping(ctx, "y"); !errors.Is(err, mapping.ErrNotFound) {
		t.Errorf("a write without an actor was made: %v", err)
	}
	check("refused writes")

	if err := s.DeleteMapping(ctx, alice, "m-renamed"); err != nil {
		t.Fatal(err)
	}
	want = append(want, change{"alice", "delete", "mapping", "m-renamed", asJSON(t, m2), nil, rid("req-1")})
	if err := s.DeleteIssuer(ctx, bob, "gh"); err != nil {
		t.Fatal(err)
	}
	want = append(want, change{"bob", "delete", "issuer", "gh", asJSON(t, gh2), nil, nil})
	check("deletes")
}

// TestAuditorReadsChanges: the auditor role reads audit.admin_changes but
// neither the table behind it nor the admin tokens.
func TestAuditorReadsChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	runtime, pool := pgtest.NewRuntimePool(t)
	s := mapping.NewPGStore(runtime, 0)
	if _, err := s.CreateIssuer(ctx, testActor, mapping.Issuer{Name: "gh", URL: "https://gh.example", Kind: "github",
		Audiences: []string{"x"}, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SELECT set_config('role', oidc_bridge_auditor_role(), true)`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM audit.admin_changes WHERE actor = 'test' AND kind = 'issuer'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("auditor reads audit.admin_changes: %d %v", n, err)
	}
	for _, table := range []string{"admin_tokens", "admin_changes", "issuers"} {
		if _, err := tx.Exec(ctx, `SAVEPOINT s`); err != nil {
			t.Fatal(err)
		}
		_, err := tx.Exec(ctx, `SELECT count(*) FROM public.`+table)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
			t.Errorf("auditor reading %s: %v, want permission denied", table, err)
		}
		if _, err := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT s`); err != nil {
			t.Fatal(err)
		}
	}
}

// The issuer's replay_scope and token limits are stored, read back and
// reach verification (IssuerByURL, the catalog cache).
func TestStoreIssuerReplayAndLimits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := mapping.NewPGStore(runtimePool(t), 0)
	age, life := 120, 900
	in := mapping.Issuer{Name: "gl", URL: "https://gitlab.example.com", Kind: "gitlab", Audiences: []string{"a"}, Enabled: true,
		ReplayScope: mapping.ReplayScopeTokenMapping, MaxTokenAgeSeconds: &age, MaxTokenLifetimeSeconds: &life}
	out, err := s.CreateIssuer(ctx, testActor, in)
	if err != nil {
		t.Fatal(err)
	}
	if out.ReplayScope != "token_mapping" || out.MaxTokenAgeSeconds == nil || *out.MaxTokenAgeSeconds != 120 ||
		out.MaxTokenLifetimeSeconds == nil || *out.MaxTokenLifetimeSeconds != 900 {
		t.Errorf("created: %+v", out)
	}
	got, err := s.IssuerByURL(ctx, in.URL)
	if err != nil {
		t.Fatal(err)
	}
	if got.MaxTokenAge != 2*time.Minute || got.MaxTokenLifetime != 15*time.Minute {
		t.Errorf("IssuerByURL limits: %v, %v; want 2m, 15m", got.MaxTokenAge, got.MaxTokenLifetime)
	}
	// A PUT without them takes the defaults back.
	in.ReplayScope, in.MaxTokenAgeSeconds, in.MaxTokenLifetimeSeconds = "", nil, nil
	out, err = s.UpdateIssuer(ctx, testActor, "gl", in, nil)
	if err != nil {
		t.Fatal(err)
	}
	if out.ReplayScope != "token" || out.MaxTokenAgeSeconds != nil || out.MaxTokenLifetimeSeconds != nil {
		t.Errorf("updated: %+v; want token and no limits", out)
	}
	if got, err := s.IssuerByURL(ctx, in.URL); err != nil || got.MaxTokenAge != 0 || got.MaxTokenLifetime != 0 {
		t.Errorf("IssuerByURL after update: %+v, %v; want the kind's defaults (zero)", got, err)
	}
}

// runtimePool returns a pool on a fresh database that connects as the
// service's runtime role (no ownership; migrations/00007_roles.sql).
func runtimePool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	runtime, _ := pgtest.NewRuntimePool(t)
	return runtime
}
