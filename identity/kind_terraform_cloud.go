package identity

// KindTerraformCloud is HCP Terraform's (and Terraform Enterprise's)
// workload identity tokens, one per plan or apply phase of a run, which the
// run reads from $TFC_WORKLOAD_IDENTITY_TOKEN when the workspace sets
// TFC_WORKLOAD_IDENTITY_AUDIENCE. One issuer, https://app.terraform.io
// (https://app.eu.terraform.io in Europe, a Terraform Enterprise's own
// URL), serves every organization. The claims are documented at
// https://developer.hashicorp.com/terraform/cloud-docs/workspaces/dynamic-provider-credentials/workload-identity-tokens.
// test/oidctest/claimsets/terraform_cloud-run.json is a token's claim set.
const KindTerraformCloud Kind = "terraform_cloud"

// HCP Terraform's own claims.
const (
	claimTFOrganizationID = "terraform_organization_id"
	claimTFWorkspaceID    = "terraform_workspace_id"
)

type terraformCloud struct{}

func (terraformCloud) Kind() Kind { return KindTerraformCloud }

// Defaults: 6 hours of age and lifetime, the cap. A token is made when the
// phase starts and expires at the end of the phase's timeout (plans time
// out after 2 hours; applies may run longer, and a token that lives
// longer than the cap is refused as too long-lived). One token serves
// every provider of the phase, so an issuer of the kind defaults to the
// replay scope token_mapping (once per mapping); a token without jti is
// keyed on its SHA-256.
func (terraformCloud) Defaults() Defaults {
	return Defaults{TokenAge: MaxTokenLimit, TokenLifetime: MaxTokenLimit, ReplayScope: ReplayScopeTokenMapping}
}

// Conditions: none of the first-class ones; HCP Terraform's claims
// (terraform_workspace_id, terraform_run_phase, ...) are claims conditions.
func (terraformCloud) Conditions() []Condition { return nil }

func (terraformCloud) Breadth() Breadth {
	return Breadth{
		AnyOf: []string{"claims." + claimTFWorkspaceID, "claims.terraform_workspace_name", "claims.terraform_project_id", "claims." + claimTFOrganizationID},
		Message: "a mapping of a terraform_cloud issuer must constrain the workspace, project or organization: " +
			"set claims.terraform_workspace_id, claims.terraform_workspace_name, claims.terraform_project_id or claims.terraform_organization_id",
		Detail: "the mapping constrains neither workspace, project nor organization: it admits nothing",
	}
}

func (terraformCloud) Guards(*Claims) []Guard { return nil }

// Lint: every organization's runs get tokens from the one issuer, so a
// mapping must pin the organization by its id (names can be reused).
func (terraformCloud) Lint() LintRules {
	return LintRules{
		TenantPin: []string{"claims." + claimTFOrganizationID},
		TenantPinMessage: "every HCP Terraform organization's runs get tokens from the same issuer: without the organization id pinned, " +
			"another organization with a workspace of the same name obtains this mapping; set claims.terraform_organization_id (org-...), literally",
		RefProtectedCaveat: "HCP Terraform tokens name no ref",
	}
}

func (terraformCloud) Issuer() IssuerRules {
	return IssuerRules{Shared: true,
		AudienceHint: "the workspace variable TFC_WORKLOAD_IDENTITY_AUDIENCE (or TFC_<TAG>_WORKLOAD_IDENTITY_AUDIENCE for a second token)"}
}

func (terraformCloud) read(r *claimReader, c *Claims) {
	c.RepositoryOwnerID = r.required(claimTFOrganizationID)
	c.RepositoryOwner = r.str("terraform_organization_name")
	c.RepositoryID = r.required(claimTFWorkspaceID)
	workspace := r.str("terraform_workspace_name")
	c.RunID = r.str("terraform_run_id")
	if r.err == nil && c.RepositoryOwner != "" && workspace != "" {
		c.Repository = c.RepositoryOwner + "/" + workspace
	}
}
