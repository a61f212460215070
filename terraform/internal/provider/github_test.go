package provider_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
)

// These acceptance tests need the bridge's GitHub App routes
// (/v1/admin/github-apps) and its github provider.

// appKey is a fresh App private key (GitHub's PKCS#1 PEM) and its
// fingerprint in GitHub's form.
func appKey(t *testing.T) (string, string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})),
		"SHA256:" + base64.StdEncoding.EncodeToString(sum[:])
}

func appHCL(key string, retire bool) string {
	return fmt.Sprintf(`
resource "oidcbridge_github_app" "acme" {
  name                = "acme"
  app_id              = 123456
  base_url            = "https://ghe.example.com/api/v3/"
  private_key         = %q
  retire_previous_key = %t
}
`, key, retire)
}

func (e *env) checkApp(check func(api.GitHubApp) error) resource.TestCheckFunc {
	return func(*terraform.State) error {
		app, err := e.c.GetGitHubApp(context.Background(), "acme")
		if err != nil {
			return err
		}
		if app.PrivateKey != "" {
			return fmt.Errorf("the API returned a private key")
		}
		return check(app)
	}
}

func (e *env) checkAppsGone(*terraform.State) error {
	apps, err := e.c.ListGitHubApps(context.Background())
	if err != nil {
		return err
	}
	if len(apps) != 0 {
		return fmt.Errorf("after destroy: %d GitHub Apps remain", len(apps))
	}
	return nil
}

// TestAccGitHubApp: create, empty plan, import by name (the key is not
// readable), rotation by a new private_key (both keys held, the new one
// signing), retire_previous_key, a key changed outside Terraform shown as a
// change and put back, plan-time validation of the key and base_url.
func TestAccGitHubApp(t *testing.T) {
	e := newEnv(t)
	key1, fp1 := appKey(t)
	key2, fp2 := appKey(t)
	key3, fp3 := appKey(t)
	empty := resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}}
	update := resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("oidcbridge_github_app.acme", plancheck.ResourceActionUpdate)}}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: factories(),
		CheckDestroy:             e.checkAppsGone,
		Steps: []resource.TestStep{
			{
				Config: e.config(appHCL("not a key", false)), PlanOnly: true,
				ExpectError: regexp.MustCompile(`(?s)Invalid private_key.*not PEM`),
			},
			{
				Config: e.config(`resource "oidcbridge_github_app" "acme" {
  name        = "acme"
  app_id      = 1
  base_url    = "http://ghe.example.com/api/v3/"
  private_key = "x"
}`), PlanOnly: true,
				ExpectError: regexp.MustCompile(`Invalid base_url`),
			},
			{
				Config: e.config(appHCL(key1, false)), ConfigPlanChecks: empty,
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("oidcbridge_github_app.acme", "id", "acme"),
					resource.TestCheckResourceAttr("oidcbridge_github_app.acme", "private_key_fingerprint", fp1),
					resource.TestCheckResourceAttr("oidcbridge_github_app.acme", "keys.#", "1"),
					resource.TestCheckResourceAttr("oidcbridge_github_app.acme", "keys.0.signing", "true"),
					e.checkApp(func(a api.GitHubApp) error {
						if a.AppID != 123456 || len(a.Keys) != 1 || a.Keys[0].Fingerprint != fp1 {
							return fmt.Errorf("API has %+v", a)
						}
						return nil
					}),
				),
			},
			{
				ResourceName: "oidcbridge_github_app.acme", ImportState: true, ImportStateId: "acme",
				ImportStateVerify: true, ImportStateVerifyIdentifierAttribute: "name",
				ImportStateVerifyIgnore: []string{"private_key"},
			},
			{
				// Rotation: the new key signs, the previous stays valid.
				Config: e.config(appHCL(key2, false)), ConfigPlanChecks: update,
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("oidcbridge_github_app.acme", "private_key_fingerprint", fp2),
					resource.TestCheckResourceAttr("oidcbridge_github_app.acme", "keys.#", "2"),
					resource.TestCheckResourceAttr("oidcbridge_github_app.acme", "keys.0.fingerprint", fp2),
					resource.TestCheckResourceAttr("oidcbridge_github_app.acme", "keys.1.fingerprint", fp1),
				),
			},
			{
				Config: e.config(appHCL(key2, true)), ConfigPlanChecks: update,
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("oidcbridge_github_app.acme", "keys.#", "1"),
					resource.TestCheckResourceAttr("oidcbridge_github_app.acme", "keys.0.fingerprint", fp2),
				),
			},
			{
				// Someone rotates the key behind Terraform's back: the plan
				// shows it, and applying puts the configured key back.
				PreConfig: func() {
					if _, err := e.c.UpdateGitHubApp(context.Background(), "acme", api.GitHubApp{Name: "acme", AppID: 123456,
						BaseURL: "https://ghe.example.com/api/v3/", PrivateKey: key3, RetirePreviousKey: true}); err != nil {
						t.Fatal(err)
					}
				},
				Config: e.config(appHCL(key2, true)), ConfigPlanChecks: update,
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("oidcbridge_github_app.acme", "private_key_fingerprint", fp2),
					e.checkApp(func(a api.GitHubApp) error {
						if len(a.Keys) != 1 || a.Keys[0].Fingerprint != fp2 || a.Keys[0].Fingerprint == fp3 {
							return fmt.Errorf("API has keys %+v", a.Keys)
						}
						return nil
					}),
				),
			},
		},
	})
}

// TestAccGitHubMapping: a mapping of provider github (the github block)
// naming a registered App; an empty plan after apply, an import, the data
// source; a block that names neither repositories nor all_repositories is
// refused at plan.
func TestAccGitHubMapping(t *testing.T) {
	e := newEnv(t)
	key, _ := appKey(t)
	hcl := issuerHCL + fmt.Sprintf(`
resource "oidcbridge_github_app" "acme" {
  name        = "acme"
  app_id      = 123456
  private_key = %q
}

resource "oidcbridge_mapping" "push" {
  name   = "web-pushes-infra"
  issuer = oidcbridge_issuer.github.name
  conditions {
    repository    = ["acme/web"]
    repository_id = ["123456"]
    ref           = ["refs/heads/main"]
  }
  github {
    app          = oidcbridge_github_app.acme.name
    owner        = "acme"
    repositories = ["infra", "docs"]
    permissions  = { contents = "write", pull_requests = "write" }
  }
}

data "oidcbridge_mapping" "push" {
  name = oidcbridge_mapping.push.name
}
`, key)
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: factories(),
		Steps: []resource.TestStep{
			{
				Config: e.config(issuerHCL + `
resource "oidcbridge_mapping" "push" {
  name   = "p"
  issuer = "github"
  github {
    app   = "acme"
    owner = "acme"
  }
}`), PlanOnly: true,
				ExpectError: regexp.MustCompile(`Set exactly one of repositories`),
			},
			{
				Config: e.config(hcl),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("oidcbridge_mapping.push", "github.repositories.#", "2"),
					resource.TestCheckResourceAttr("oidcbridge_mapping.push", "github.all_repositories", "false"),
					resource.TestCheckResourceAttr("data.oidcbridge_mapping.push", "github.permissions.contents", "write"),
					e.checkAPI("web-pushes-infra", func(m api.Mapping) error {
						if m.Provider != "github" {
							return fmt.Errorf("API has provider %q", m.Provider)
						}
						return nil
					}),
				),
			},
			{
				ResourceName: "oidcbridge_mapping.push", ImportState: true, ImportStateId: "web-pushes-infra",
				ImportStateVerify: true, ImportStateVerifyIdentifierAttribute: "name",
			},
		},
	})
}
