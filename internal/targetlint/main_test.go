package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// write makes a tree of files under a temporary root.
func write(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, text := range files {
		path := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const cloudTarget = `package foo

import "example.com/providers"

type target struct{ RoleARN, Mode, TenantID, ClientID string }

func decode(raw []byte) (target, error) {
	var t target
	return t, providers.DecodeTarget("foo", raw, []providers.Field{
		{Key: "role_arn", Dst: &t.RoleARN},
		{Key: "mode", Dst: &t.Mode},
		{Key: "tenant_id", Dst: &t.TenantID},
		{Key: "client_id", Dst: &t.ClientID},
	})
}

func use(t target) string { return t.RoleARN }
`

func TestCheck(t *testing.T) {
	t.Parallel()
	root := write(t, map[string]string{
		"providers/foo/target.go": cloudTarget,
		// The providers package itself is not a cloud's.
		"providers/shared.go": "package providers\n\ntype Copy struct {\n\tRoleARN string\n}\n",
		"mapping/bad.go": "package mapping\n\ntype target struct {\n\tARN string `json:\"role_arn\"`\n}\n\n" +
			"func f(x struct{ RoleARN string }) string { return x.RoleARN }\n",
		"mapping/literal.go": "package mapping\n\ntype t struct{ RoleARN string }\n\nvar v = t{\n\tRoleARN: \"arn\",\n}\n",
		// A copy of a target made of generic names only.
		"bridge/copy.go": "package bridge\n\ntype azureish struct {\n\tTenant string `json:\"tenant_id\"`\n\tMode   string `json:\"mode\"`\n}\n",
		// Generic names among others: an API type of its own.
		"bridge/ok.go": "package bridge\n\ntype creds struct {\n\tTenantID string `json:\"tenant_id\"`\n\tMode     string `json:\"mode\"`\n\tToken    string `json:\"token\"`\n}\n\n" +
			"var raw = `{\"role_arn\": \"arn\"}`\n\nvar key = \"role_arn\"\n",
		// An allowed field, and its uses in its package.
		"bridge/api.go": "package bridge\n\ntype revoked struct {\n\tRoleARN string `json:\"role_arn\"` // targetlint:allow the API's own\n\tResult  string `json:\"result\"`\n}\n\n" +
			"func g(r revoked) revoked { return revoked{RoleARN: r.RoleARN} }\n",
		// ... but not in another package.
		"ledger/use.go": "package ledger\n\nfunc h(r struct{ X string }) { _ = r.RoleARN }\n",
		// Clients of the wire form.
		"test/fake/fake.go":     "package fake\n\ntype t struct {\n\tRoleARN string `json:\"role_arn\"`\n}\n",
		"terraform/tf/tf.go":    "package tf\n\ntype t struct {\n\tRoleARN string `json:\"role_arn\"`\n}\n",
		"providers/foo/x.go":    "package foo\n\ntype y struct {\n\tRoleARN string `json:\"role_arn\"`\n}\n",
		".git/hooks/x.go":       "package x\n\ntype t struct{ RoleARN string }\n",
		"mapping/testdata/a.go": "package a\n\ntype t struct{ RoleARN string }\n",
	})
	got, err := check(root)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"bridge/copy.go:3: a struct of 2 keys of the foo target: a copy of its type",
		"ledger/use.go:3: r.RoleARN names the foo target's field RoleARN",
		`mapping/bad.go:4: the tag json:"role_arn" names the foo target's key`,
		"mapping/bad.go:7: the struct field RoleARN names the foo target's field",
		"mapping/bad.go:7: x.RoleARN names the foo target's field RoleARN",
		"mapping/literal.go:3: the struct field RoleARN names the foo target's field",
		"mapping/literal.go:6: the key RoleARN names the foo target's field",
		"providers/shared.go:4: the struct field RoleARN names the foo target's field",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
}

// TestCheckNeedsVocabulary: a tree without any providers.Field table is an
// error, not a clean result, so that the check cannot pass by finding no
// targets to look for.
func TestCheckNeedsVocabulary(t *testing.T) {
	t.Parallel()
	root := write(t, map[string]string{"providers/foo/target.go": "package foo\n", "mapping/bad.go": "package mapping\n\ntype t struct{ RoleARN string }\n"})
	if _, err := check(root); err == nil || !strings.Contains(err.Error(), "no []providers.Field table") {
		t.Fatalf("error %v", err)
	}
}

// TestTree runs the check on this repository: its own vocabulary is every
// cloud's, and no code outside providers/<cloud> names a target's field.
func TestTree(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..")
	targets, err := vocabulary(root)
	if err != nil {
		t.Fatal(err)
	}
	for cloud, key := range map[string]string{"aws": "role_arn", "gcp": "workload_identity_provider", "azure": "tenant_id", "jwt": "audience"} {
		if !slices.ContainsFunc(targets[cloud], func(f field) bool { return f.key == key }) {
			t.Errorf("the %s target's fields %v lack %s", cloud, targets[cloud], key)
		}
	}
	findings, err := check(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(findings) > 0 {
		t.Errorf("findings:\n%s", strings.Join(findings, "\n"))
	}
}
