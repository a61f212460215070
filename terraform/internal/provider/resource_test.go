package provider_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/bridge/client"
)

const issuerHCL = `
resource "oidcbridge_issuer" "github" {
  name      = "github"
  url       = "https://token.actions.githubusercontent.com"
  audiences = ["https://bridge.example.com"]
  kind      = "github"
}
`

// webHCL is an aws mapping with every field; vars fill name, mode, ref.
func webHCL(name, mode, ref string, perHour int) string {
	return issuerHCL + fmt.Sprintf(`
resource "oidcbridge_mapping" "web" {
  name   = %q
  issuer = oidcbridge_issuer.github.name
  mode   = %q

  conditions {
    repository    = ["acme/web"]
    repository_id = ["123456"]
    ref           = [%q]
    environment   = ["production"]
    event_name    = ["push", "workflow_dispatch"]
    workflow_ref  = ["acme/web/.github/workflows/deploy.yml@refs/heads/main"]
    claims = {
      runner_environment         = ["github-hosted"]
      "/kubernetes.io/namespace" = ["payments"]
    }
    claims_bool = {
      enterprise_managed                    = [false]
      "/https:~1~1sts.amazonaws.com~1/mfa" = [true]
    }
    claims_number = {
      runner_group_id = [7, 8.5]
    }
  }

  aws {
    role_arn       = "arn:aws:iam::123456789012:role/deploy"
    region         = "eu-west-1"
    session_policy = jsonencode({ Version = "2012-10-17", Statement = [] })
    external_id    = "acme-ci"
    mode           = "assume_role"
    session_tags   = { team = "payments", "cost center" = "cc-42" }

    transitive_tag_keys = ["team", "repository"]
  }

  max_duration_seconds = 1800

  quota {
    per_hour = %d
    per_job  = 5
  }
}
`, name, mode, ref, perHour)
}

// checkGone verifies that destroy removed everything from the bridge.
func (e *env) checkGone(*terraform.State) error {
	ctx := context.Background()
	ms, err := e.c.ListMappings(ctx, client.ListMappingsOptions{})
	if err != nil {
		return err
	}
	is, err := e.c.ListIssuers(ctx)
	if err != nil {
		return err
	}
	if len(ms) != 0 || len(is) != 0 {
		return fmt.Errorf("after destroy: %d mappings and %d issuers remain", len(ms), len(is))
	}
	return nil
}

// TestAccMappingLifecycle: create, plan empty, update in place, rename in
// place, import (verified, then an empty plan with the same config), destroy.
func TestAccMappingLifecycle(t *testing.T) {
	e := newEnv(t)
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: factories(),
		CheckDestroy:             e.checkGone,
		Steps: []resource.TestStep{
			{
				Config: e.config(webHCL("web-prod-deploy", "enforce", "refs/heads/main", 100)),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("oidcbridge_issuer.github", "id", "github"),
					resource.TestCheckResourceAttr("oidcbridge_issuer.github", "enabled", "true"),
					resource.TestCheckResourceAttr("oidcbridge_mapping.web", "id", "web-prod-deploy"),
					resource.TestCheckResourceAttr("oidcbridge_mapping.web", "enabled", "true"),
					resource.TestCheckResourceAttr("oidcbridge_mapping.web", "conditions.event_name.#", "2"),
					resource.TestCheckResourceAttr("oidcbridge_mapping.web", "conditions.claims.runner_environment.0", "github-hosted"),
					resource.TestCheckResourceAttr("oidcbridge_mapping.web", "aws.region", "eu-west-1"),
					resource.TestCheckResourceAttr("oidcbridge_mapping.web", "max_duration_seconds", "1800"),
					resource.TestCheckResourceAttr("oidcbridge_mapping.web", "quota.per_hour", "100"),
					resource.TestCheckNoResourceAttr("oidcbridge_mapping.web", "gcp"),
					resource.TestCheckResourceAttr("oidcbridge_mapping.web", "conditions.claims_bool.enterprise_managed.0", "false"),
					resource.TestCheckResourceAttr("oidcbridge_mapping.web", "conditions.claims_number.runner_group_id.1", "8.5"),
					e.checkAPI("web-prod-deploy", func(m api.Mapping) error {
						if m.Provider != "aws" || m.Mode != "enforce" || m.Quota == nil || m.Quota.PerJob != 5 {
							return fmt.Errorf("API has %+v", m)
						}
						// Typed claims conditions reach the API with their JSON types.
						b, n, s := m.Conditions.Claims["enterprise_managed"], m.Conditions.Claims["runner_group_id"], m.Conditions.Claims["runner_environment"]
						if b.Type != api.TypeBoolean || fmt.Sprint(b.Patterns) != "[false]" ||
							n.Type != api.TypeNumber || fmt.Sprint(n.Patterns) != "[7 8.5]" || s.Type != "" {
							return fmt.Errorf("API has claims %+v", m.Conditions.Claims)
						}
						// JSON Pointer keys pass through as written.
						ns, mfa := m.Conditions.Claims["/kubernetes.io/namespace"], m.Conditions.Claims["/https:~1~1sts.amazonaws.com~1/mfa"]
						if fmt.Sprint(ns.Patterns) != "[payments]" || ns.Type != "" || mfa.Type != api.TypeBoolean || fmt.Sprint(mfa.Patterns) != "[true]" {
							return fmt.Errorf("API has pointer claims %+v", m.Conditions.Claims)
						}
						return nil
					}),
				),
			},
			{
				Config: e.config(webHCL("web-prod-deploy", "audit", "refs/tags/v*", 50)),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("oidcbridge_mapping.web", plancheck.ResourceActionUpdate)},
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("oidcbridge_mapping.web", "mode", "audit"),
					resource.TestCheckResourceAttr("oidcbridge_mapping.web", "quota.per_hour", "50"),
					e.checkAPI("web-prod-deploy", func(m api.Mapping) error {
						if m.Mode != "audit" || m.Conditions.Ref.Patterns[0] != "refs/tags/v*" {
							return fmt.Errorf("API has mode %q ref %v", m.Mode, m.Conditions.Ref)
						}
						return nil
					}),
				),
			},
			{
				// A rename is an update in place (PUT under the old name).
				Config: e.config(webHCL("web-deploy", "audit", "refs/tags/v*", 50)),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("oidcbridge_mapping.web", plancheck.ResourceActionUpdate)},
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("oidcbridge_mapping.web", "id", "web-deploy"),
					e.checkMissing("web-prod-deploy"),
				),
			},
			{
				ResourceName:                         "oidcbridge_mapping.web",
				ImportState:                          true,
				ImportStateId:                        "web-deploy",
				ImportStateVerify:                    true,
				ImportStateVerifyIdentifierAttribute: "name",
			},
			{
				ResourceName:                         "oidcbridge_issuer.github",
				ImportState:                          true,
				ImportStateId:                        "github",
				ImportStateVerify:                    true,
				ImportStateVerifyIdentifierAttribute: "name",
			},
			{
				// Forget the mapping (it stays in the bridge), as if it had
				// been made outside Terraform...
				Config: e.config(issuerHCL + "\nremoved {\n  from = oidcbridge_mapping.web\n}\n"),
				Check:  e.checkAPI("web-deploy", func(api.Mapping) error { return nil }),
			},
			{
				// ...import it by name as an admin would...
				Config:             e.config(webHCL("web-deploy", "audit", "refs/tags/v*", 50)),
				ResourceName:       "oidcbridge_mapping.web",
				ImportState:        true,
				ImportStateId:      "web-deploy",
				ImportStatePersist: true,
			},
			{
				// ...and the same configuration plans no change.
				Config: e.config(webHCL("web-deploy", "audit", "refs/tags/v*", 50)),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
		},
	})
}

func (e *env) checkAPI(name string, f func(api.Mapping) error) resource.TestCheckFunc {
	return func(*terraform.State) error {
		m, err := e.c.GetMapping(context.Background(), name)
		if err != nil {
			return err
		}
		return f(m)
	}
}

func (e *env) checkMissing(name string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		if _, err := e.c.GetMapping(context.Background(), name); !client.IsNotFound(err) {
			return fmt.Errorf("mapping %q: %v, want not found", name, err)
		}
		return nil
	}
}

const singleHCL = issuerHCL + `
resource "oidcbridge_mapping" "single" {
  name   = "single"
  issuer = oidcbridge_issuer.github.name
  conditions {
    repository    = ["acme/api"]
    repository_id = ["42"]
    ref           = ["refs/heads/main"]
    claims = {
      runner_environment = ["github-hosted"]
    }
    claims_bool   = { enterprise_managed = [true] }
    claims_number = { runner_group_id = [7] }
  }
  jwt {
    audience = "https://internal.example.com"
    claims   = { team = "platform" }
  }
}
`

func singleStringMapping() api.Mapping {
	return api.Mapping{
		Name: "single", Issuer: "github", Enabled: true,
		Conditions: api.Conditions{
			Repository:   &api.Values{Patterns: []string{"acme/api"}},
			RepositoryID: &api.Values{Patterns: []string{"42"}},
			Ref:          &api.Values{Patterns: []string{"refs/heads/main"}},
			Claims: map[string]api.Values{
				"runner_environment": {Patterns: []string{"github-hosted"}},
				"enterprise_managed": {Patterns: []string{"true"}, Type: api.TypeBoolean},
				"runner_group_id":    {Patterns: []string{"7.0"}, Type: api.TypeNumber},
			},
		},
		Provider: "jwt",
		Target:   json.RawMessage(`{"audience":"https://internal.example.com","claims":{"team":"platform"}}`),
	}
}

// TestAccSingleStringConditions: conditions the API holds as single strings
// (written so through the API) read as one-element lists: no diff, neither
// for a mapping imported after being made through the API nor for one
// rewritten through the API with the same values as single strings.
func TestAccSingleStringConditions(t *testing.T) {
	e := newEnv(t)
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: factories(),
		CheckDestroy:             e.checkGone,
		Steps: []resource.TestStep{
			{Config: e.config(issuerHCL)},
			{
				PreConfig: func() {
					if _, err := e.c.CreateMapping(context.Background(), singleStringMapping()); err != nil {
						t.Fatal(err)
					}
				},
				Config:             e.config(singleHCL),
				ResourceName:       "oidcbridge_mapping.single",
				ImportState:        true,
				ImportStateId:      "single",
				ImportStatePersist: true,
			},
			{
				Config: e.config(singleHCL),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: e.checkAPI("single", func(m api.Mapping) error {
					if m.Conditions.Repository.List {
						return fmt.Errorf("an empty plan rewrote the mapping: %+v", m.Conditions.Repository)
					}
					return nil
				}),
			},
			{
				// Rewritten through the API with lists (the provider's form)
				// and back to single strings: never a diff.
				PreConfig: func() {
					m := singleStringMapping()
					m.Conditions.Repository = &api.Values{Patterns: []string{"acme/api"}, List: true}
					if _, err := e.c.UpdateMapping(context.Background(), "single", m); err != nil {
						t.Fatal(err)
					}
				},
				Config:   e.config(singleHCL),
				PlanOnly: true,
			},
		},
	})
}

// TestAccDrift: a mapping changed through the API shows in the plan and
// converges on apply; one deleted through the API is planned for creation.
func TestAccDrift(t *testing.T) {
	e := newEnv(t)
	cfg := e.config(webHCL("web-prod-deploy", "enforce", "refs/heads/main", 100))
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: factories(),
		CheckDestroy:             e.checkGone,
		Steps: []resource.TestStep{
			{Config: cfg},
			{
				PreConfig: func() {
					ctx := context.Background()
					m, err := e.c.GetMapping(ctx, "web-prod-deploy")
					if err != nil {
						t.Fatal(err)
					}
					m.Enabled = false
					m.Conditions.Ref = &api.Values{Patterns: []string{"refs/heads/**"}}
					m.Quota = nil
					if _, err := e.c.UpdateMapping(ctx, m.Name, m); err != nil {
						t.Fatal(err)
					}
				},
				Config: cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectNonEmptyPlan(),
						plancheck.ExpectResourceAction("oidcbridge_mapping.web", plancheck.ResourceActionUpdate),
					},
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: e.checkAPI("web-prod-deploy", func(m api.Mapping) error {
					if !m.Enabled || m.Conditions.Ref.Patterns[0] != "refs/heads/main" || m.Quota == nil || m.Quota.PerHour != 100 {
						return fmt.Errorf("not converged: %+v", m)
					}
					return nil
				}),
			},
			{
				PreConfig: func() {
					if err := e.c.DeleteMapping(context.Background(), "web-prod-deploy"); err != nil {
						t.Fatal(err)
					}
				},
				Config: cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("oidcbridge_mapping.web", plancheck.ResourceActionCreate)},
				},
				Check: e.checkAPI("web-prod-deploy", func(api.Mapping) error { return nil }),
			},
		},
	})
}

const cloudsHCL = `
resource "oidcbridge_issuer" "gitlab" {
  name      = "gitlab"
  url       = "https://gitlab.example.com"
  audiences = ["https://bridge.example.com"]
  kind      = "gitlab"
}

resource "oidcbridge_issuer" "ci" {
  name      = "ci"
  url       = "https://ci.example.com"
  audiences = ["bridge"]
  kind      = "generic"
  enabled   = false
}

resource "oidcbridge_mapping" "gcp" {
  name   = "infra-gcp"
  issuer = oidcbridge_issuer.gitlab.name
  conditions {
    repository    = ["acme/infra/**"]
    repository_id = ["1001"]
    ref           = ["refs/heads/main"]
  }
  gcp {
    service_account            = "deployer@acme-prod.iam.gserviceaccount.com"
    scopes                     = ["https://www.googleapis.com/auth/cloud-platform"]
    mode                       = "workload_identity"
    workload_identity_provider = "//iam.googleapis.com/projects/123456/locations/global/workloadIdentityPools/gitlab/providers/bridge"
    allow_lifetime_extension   = true
  }
  max_duration_seconds = 7200
}

resource "oidcbridge_mapping" "azure" {
  name    = "ci-azure"
  issuer  = oidcbridge_issuer.ci.name
  enabled = false
  conditions {
    claims = { pipeline = ["release"] }
  }
  azure {
    tenant_id = "11111111-2222-3333-4444-555555555555"
    client_id = "66666666-7777-8888-9999-000000000000"
    scope     = "https://management.azure.com/.default"
  }
  max_duration_seconds = 600
}
`

// TestAccClouds: gcp and azure targets and a generic issuer, with import
// verification; then a target switched to another provider in place.
func TestAccClouds(t *testing.T) {
	e := newEnv(t)
	switched := regexp.MustCompile(`(?s)azure \{.*?\n  \}`).ReplaceAllString(cloudsHCL, `jwt {
    audience = "https://internal.example.com"
  }`)
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: factories(),
		CheckDestroy:             e.checkGone,
		Steps: []resource.TestStep{
			{
				Config: e.config(cloudsHCL),
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("oidcbridge_mapping.gcp", "gcp.mode", "workload_identity"),
					resource.TestCheckResourceAttr("oidcbridge_mapping.gcp", "max_duration_seconds", "7200"),
					resource.TestCheckResourceAttr("oidcbridge_mapping.gcp", "gcp.allow_lifetime_extension", "true"),
					resource.TestCheckResourceAttr("oidcbridge_mapping.gcp", "mode", "enforce"),
					resource.TestCheckResourceAttr("oidcbridge_mapping.azure", "enabled", "false"),
					resource.TestCheckResourceAttr("oidcbridge_issuer.ci", "enabled", "false"),
				),
			},
			{
				ResourceName: "oidcbridge_mapping.gcp", ImportState: true, ImportStateId: "infra-gcp",
				ImportStateVerify: true, ImportStateVerifyIdentifierAttribute: "name",
			},
			{
				ResourceName: "oidcbridge_mapping.azure", ImportState: true, ImportStateId: "ci-azure",
				ImportStateVerify: true, ImportStateVerifyIdentifierAttribute: "name",
			},
			{
				Config: e.config(switched),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("oidcbridge_mapping.azure", plancheck.ResourceActionUpdate)},
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckNoResourceAttr("oidcbridge_mapping.azure", "azure"),
					resource.TestCheckResourceAttr("oidcbridge_mapping.azure", "jwt.audience", "https://internal.example.com"),
				),
			},
		},
	})
}

func TestAccDataSources(t *testing.T) {
	e := newEnv(t)
	cfg := e.config(webHCL("web-prod-deploy", "enforce", "refs/heads/main", 100) + `
data "oidcbridge_issuer" "github" {
  name = oidcbridge_issuer.github.name
}

data "oidcbridge_mapping" "web" {
  name = oidcbridge_mapping.web.name
}
`)
	pair := func(attr string) resource.TestCheckFunc {
		return resource.TestCheckResourceAttrPair("data.oidcbridge_mapping.web", attr, "oidcbridge_mapping.web", attr)
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: factories(),
		CheckDestroy:             e.checkGone,
		Steps: []resource.TestStep{{
			Config: cfg,
			Check: resource.ComposeAggregateTestCheckFunc(
				resource.TestCheckResourceAttr("data.oidcbridge_issuer.github", "kind", "github"),
				resource.TestCheckResourceAttr("data.oidcbridge_issuer.github", "audiences.0", "https://bridge.example.com"),
				pair("issuer"), pair("mode"), pair("enabled"), pair("max_duration_seconds"),
				pair("conditions.repository.0"), pair("conditions.event_name.1"),
				pair("conditions.claims.runner_environment.0"),
				pair("aws.role_arn"), pair("aws.session_policy"), pair("aws.external_id"),
				pair("aws.session_tags.team"), pair("aws.session_tags.cost center"), pair("aws.transitive_tag_keys.1"),
				pair("quota.per_hour"), pair("quota.per_job"), pair("warnings.#"),
				resource.TestCheckNoResourceAttr("data.oidcbridge_mapping.web", "gcp.service_account"),
			),
		}},
	})
}

// TestAccValidation: what package mapping refuses is refused at plan time,
// on the attribute at fault, before anything reaches the API.
// TestAccStrictLint: with strict_lint, a risky mapping is a plan error,
// one per finding; without it, the same mapping plans (with warnings) and
// applies.
func TestAccStrictLint(t *testing.T) {
	e := newEnv(t)
	risky := issuerHCL + `
resource "oidcbridge_mapping" "risky" {
  name   = "risky"
  issuer = oidcbridge_issuer.github.name
  conditions {
    repository = ["acme/*", "acme-labs/*"]
    ref        = ["refs/tags/*"]
    event_name = ["pull_request_target"]
  }
  aws {
    role_arn = "arn:aws:iam::123456789012:role/deploy"
    region   = "eu-west-1"
  }
}
`
	strict := strings.Replace(e.config(risky), "provider \"oidcbridge\" {", "provider \"oidcbridge\" {\n  strict_lint = true", 1)
	resource.ParallelTest(t, resource.TestCase{ProtoV6ProviderFactories: factories(), Steps: []resource.TestStep{
		// Every finding is its own error diagnostic, in lint order, with its
		// field: not only the first.
		// (The issuer does not exist yet when planning: the generic kind's
		// rules apply.)
		{Config: strict, PlanOnly: true, ExpectError: regexp.MustCompile(`(?s)` +
			`risky: wildcard_repository \(strict_lint\).*conditions\.repository\[0\]: .*` +
			`risky: wildcard_repository \(strict_lint\).*conditions\.repository\[1\]: .*` +
			`risky: tag_ref \(strict_lint\).*conditions\.ref`)},
		{Config: e.config(risky), Check: resource.TestCheckResourceAttrSet("oidcbridge_mapping.risky", "warnings.0.code")},
	}})
}

func TestAccValidation(t *testing.T) {
	e := newEnv(t)
	mappingWith := func(body string) string {
		return e.config(`
resource "oidcbridge_mapping" "bad" {
  name   = "bad"
  issuer = "github"
` + body + "\n}\n")
	}
	cond := `conditions {
    repository = ["acme/web"]
  }
`
	aws := `aws {
    role_arn = "arn:aws:iam::123456789012:role/deploy"
    region   = "eu-west-1"
  }
`
	tests := []struct {
		name, hcl string
		want      string
	}{
		{"role arn", cond + `aws {
    role_arn = "arn:aws:iam::1234:role/deploy"
    region   = "eu-west-1"
  }`, `target.role_arn: must be an IAM role ARN`},
		{"two targets", cond + aws + `jwt {
    audience = "x"
  }`, `(?s)Exactly one of these attributes must be configured|Invalid Attribute Combination`},
		{"no target", cond, `Exactly one of these attributes must be configured`},
		{"service account", cond + `gcp {
    service_account = "deployer@gmail.com"
  }`, `target.service_account: must be a service account email`},
		{"duration", cond + aws + `max_duration_seconds = 60`, `max_duration_seconds: must be between 900 and 43200`},
		{"gcp lifetime", cond + `gcp {
    service_account = "deployer@acme-prod.iam.gserviceaccount.com"
  }
  max_duration_seconds = 7200`, `(?s)max_duration_seconds: must be at most 3600 for a gcp target.*allowServiceAccountCredentialLifetimeExtension`},
		{"gcp lifetime extension off", cond + `gcp {
    service_account          = "deployer@acme-prod.iam.gserviceaccount.com"
    allow_lifetime_extension = false
  }
  max_duration_seconds = 7200`, `max_duration_seconds: must be at most 3600 for a gcp target`},
		{"gcp delegate is the target", cond + `gcp {
    service_account = "deployer@acme-prod.iam.gserviceaccount.com"
    delegates       = ["deployer@acme-prod.iam.gserviceaccount.com"]
  }`, `target.delegates\[0\]: is the target service account itself`},
		{"repository wildcard owner", `conditions {
    repository = ["*/web"]
  }
` + aws, `(?s)conditions.repository\[0\]: must name the owner`},
		{"sub claim", `conditions {
    repository = ["acme/web"]
    claims     = { sub = ["repo:acme/web:ref:refs/heads/main"] }
  }
` + aws, `conditions.claims.sub: cannot be matched`},
		{"claim pointer", `conditions {
    repository = ["acme/web"]
    claims     = { "/kubernetes.io/bad~2" = ["x"] }
  }
` + aws, `conditions.claims./kubernetes.io/bad~2: '~' must be followed by 0`},
		{"ref", `conditions {
    ref = ["main"]
  }
` + aws, `conditions.ref\[0\]: must be a full ref`},
		{"claim in two types", `conditions {
    repository  = ["acme/web"]
    claims      = { ref_protected = ["true"] }
    claims_bool = { ref_protected = [true] }
  }
` + aws, `(?s)Claim condition given twice.*ref_protected`},
		{"typed sub claim", `conditions {
    repository    = ["acme/web"]
    claims_number = { sub = [1] }
  }
` + aws, `conditions.claims.sub: cannot be matched`},
		{"session tag of the bridge", cond + `aws {
    role_arn     = "arn:aws:iam::123456789012:role/deploy"
    region       = "eu-west-1"
    session_tags = { environment = "production" }
  }`, `target.session_tags.environment: is a tag the bridge sets`},
		{"transitive key not carried", cond + `aws {
    role_arn            = "arn:aws:iam::123456789012:role/deploy"
    region              = "eu-west-1"
    session_tags        = { team = "payments" }
    transitive_tag_keys = ["team", "owner"]
  }`, `target.transitive_tag_keys\[1\]: must be a key the session carries`},
		{"session policy too long", cond + `aws {
    role_arn       = "arn:aws:iam::123456789012:role/deploy"
    region         = "eu-west-1"
    session_policy = jsonencode({ Version = "2012-10-17", Statement = [{ Effect = "Allow", Action = "s3:*", Resource = "arn:aws:s3:::` + strings.Repeat("b", 2000) + `" }] })
  }`, `target.session_policy: must be at most 2048 characters`},
		{"empty quota", cond + aws + `quota {}`, `Empty quota block`},
		{"mode", cond + aws + `mode = "dry-run"`, `(?s)value must be one of`},
		{"name", "", `(?s)name: must be 1-64 characters|Invalid Attribute Combination`},
	}
	var steps []resource.TestStep
	for _, tc := range tests {
		hcl := mappingWith(tc.hcl)
		if tc.name == "name" {
			hcl = e.config(`
resource "oidcbridge_mapping" "bad" {
  name   = "Bad Name"
  issuer = "github"
  ` + cond + aws + "\n}\n")
		}
		steps = append(steps, resource.TestStep{Config: hcl, PlanOnly: true, ExpectError: regexp.MustCompile(tc.want)})
	}
	steps = append(steps, resource.TestStep{
		Config: e.config(`
resource "oidcbridge_issuer" "bad" {
  name      = "bad"
  url       = "https://issuer.example.com?x=1"
  audiences = ["a"]
  kind      = "generic"
}
`),
		PlanOnly:    true,
		ExpectError: regexp.MustCompile(`url: must not have a query`),
	})
	// The provider lists no kinds of its own: the bridge's dry run refuses
	// one it does not know, at plan.
	steps = append(steps, resource.TestStep{
		Config: e.config(`
resource "oidcbridge_issuer" "bad" {
  name      = "bad"
  url       = "https://issuer.example.com"
  audiences = ["a"]
  kind      = "teamcity"
}
`),
		PlanOnly:    true,
		ExpectError: regexp.MustCompile(`(?s)kind: must be github, gitlab`),
	})
	resource.ParallelTest(t, resource.TestCase{ProtoV6ProviderFactories: factories(), Steps: steps})
}

// TestAccIssuerReplayScopeAndLimits: replay_scope and the token limits
// round-trip through the bridge; token_mapping is a lint warning (a plan
// error with strict_lint); out-of-range limits fail at plan time.
func TestAccIssuerReplayScopeAndLimits(t *testing.T) {
	e := newEnv(t)
	widened := `
resource "oidcbridge_issuer" "tfc" {
  name                       = "tfc"
  url                        = "https://app.terraform.io"
  audiences                  = ["https://bridge.example.com"]
  kind                       = "generic"
  replay_scope               = "token_mapping"
  max_token_age_seconds      = 300
  max_token_lifetime_seconds = 3600
}
`
	plain := `
resource "oidcbridge_issuer" "tfc" {
  name      = "tfc"
  url       = "https://app.terraform.io"
  audiences = ["https://bridge.example.com"]
  kind      = "generic"
}

data "oidcbridge_issuer" "tfc" {
  name = oidcbridge_issuer.tfc.name
}
`
	strict := strings.Replace(e.config(widened), "provider \"oidcbridge\" {", "provider \"oidcbridge\" {\n  strict_lint = true", 1)
	tooLong := strings.Replace(widened, "3600", "86400", 1)
	fromBridge := func(scope string, age, life *int) resource.TestCheckFunc {
		return func(*terraform.State) error {
			is, err := e.c.GetIssuer(context.Background(), "tfc")
			if err != nil {
				return err
			}
			if is.ReplayScope != scope || fmt.Sprint(deref(is.MaxTokenAgeSeconds)) != fmt.Sprint(deref(age)) ||
				fmt.Sprint(deref(is.MaxTokenLifetimeSeconds)) != fmt.Sprint(deref(life)) {
				return fmt.Errorf("bridge has %s %v %v", is.ReplayScope, deref(is.MaxTokenAgeSeconds), deref(is.MaxTokenLifetimeSeconds))
			}
			return nil
		}
	}
	age, life := 300, 3600
	resource.ParallelTest(t, resource.TestCase{ProtoV6ProviderFactories: factories(), CheckDestroy: e.checkGone, Steps: []resource.TestStep{
		{Config: strict, PlanOnly: true, ExpectError: regexp.MustCompile(`replay_scope_token_mapping \(strict_lint\)`)},
		{Config: e.config(tooLong), PlanOnly: true, ExpectError: regexp.MustCompile(`(?s)max_token_lifetime_seconds.*between 60 and 21600`)},
		{Config: e.config(widened), Check: resource.ComposeAggregateTestCheckFunc(
			resource.TestCheckResourceAttr("oidcbridge_issuer.tfc", "replay_scope", "token_mapping"),
			resource.TestCheckResourceAttr("oidcbridge_issuer.tfc", "max_token_age_seconds", "300"),
			resource.TestCheckResourceAttr("oidcbridge_issuer.tfc", "max_token_lifetime_seconds", "3600"),
			resource.TestCheckResourceAttr("oidcbridge_issuer.tfc", "warnings.0.code", "replay_scope_token_mapping"),
			fromBridge("token_mapping", &age, &life),
		)},
		{Config: e.config(plain), Check: resource.ComposeAggregateTestCheckFunc(
			resource.TestCheckResourceAttr("oidcbridge_issuer.tfc", "replay_scope", "token"),
			resource.TestCheckNoResourceAttr("oidcbridge_issuer.tfc", "max_token_age_seconds"),
			resource.TestCheckNoResourceAttr("oidcbridge_issuer.tfc", "max_token_lifetime_seconds"),
			resource.TestCheckResourceAttr("oidcbridge_issuer.tfc", "warnings.#", "0"),
			resource.TestCheckResourceAttr("data.oidcbridge_issuer.tfc", "replay_scope", "token"),
			resource.TestCheckNoResourceAttr("data.oidcbridge_issuer.tfc", "max_token_age_seconds"),
			fromBridge("token", nil, nil),
		)},
		{Config: e.config(plain), PlanOnly: true},
	}})
}

func deref(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}
