package aws

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/identity"
	"github.com/oidc-bridge/oidc-bridge/providers"
)

// FuzzRoleARNTemplate: whatever a pipeline's claims hold, a resolved role
// ARN keeps the template's partition, account, resource type and path: the
// value lands whole in the role name, or the exchange is refused. Nothing is
// escaped or dropped.
func FuzzRoleARNTemplate(f *testing.F) {
	for _, s := range []string{"web", "a/b", "../admin", "a:b", "x,y", "role/admin", "", "a b", "😀", strings.Repeat("w", 70),
		"web@acme", "a=b+c", "${repository_name}", "arn:aws:iam::999999999999:role/admin"} {
		f.Add(s, "prod")
	}
	const prefix = "arn:aws:iam::123456789012:role/ci/"
	tmpl, _ := json.Marshal(map[string]string{"role_arn": prefix + "${environment}/gh-${repository_name}", "region": "eu-west-1"})
	f.Fuzz(func(t *testing.T, name, env string) {
		c := &identity.Claims{Kind: identity.KindGitHub, Repository: "acme/" + name, Environment: env}
		got, err := providers.ResolveTarget(Spec{}, tmpl, c)
		if err != nil {
			return
		}
		tg, err := decodeTarget(got)
		if err != nil {
			t.Fatalf("a resolved target fails its own rules: %v", err)
		}
		rest, ok := strings.CutPrefix(tg.RoleARN, prefix)
		if !ok {
			t.Fatalf("the ARN's structure changed: %q", tg.RoleARN)
		}
		wantName := name
		if i := strings.LastIndexByte(name, '/'); i >= 0 {
			wantName = name[i+1:]
		}
		if rest != env+"/gh-"+wantName || strings.ContainsAny(env+wantName, ":/,") {
			t.Fatalf("environment %q and repository %q became %q", env, name, rest)
		}
		if tg.Region != "eu-west-1" || tg.Mode != modeAssumeRole {
			t.Fatalf("another field changed: %+v", tg)
		}
	})
}
