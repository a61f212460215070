# A monorepo: one repository, several deployables, each allowed only from
# its own reusable workflow pinned to main (workflow_ref is GitHub's
# job_workflow_ref), so that a job of another path cannot borrow it.

terraform {
  required_providers {
    oidcbridge = {
      source = "oidc-bridge/oidcbridge"
    }
  }
}

provider "oidcbridge" {}

locals {
  repo    = "acme/monorepo"
  repo_id = "987654"
}

data "oidcbridge_issuer" "github" {
  # Registered elsewhere (see ../github-org); read here by name.
  name = "github"
}

# services/payments calls an internal API with a bridge-signed JWT.
resource "oidcbridge_mapping" "payments_jwt" {
  name   = "monorepo-payments-jwt"
  issuer = data.oidcbridge_issuer.github.name

  conditions {
    repository    = [local.repo]
    repository_id = [local.repo_id]
    ref           = ["refs/heads/main"]
    event_name    = ["push", "workflow_dispatch"]
    workflow_ref  = ["${local.repo}/.github/workflows/payments-deploy.yml@refs/heads/main"]
    claims = {
      runner_environment = ["github-hosted"]
    }
  }

  jwt {
    audience = "https://ledger.internal.example.com"
    claims = {
      service = "payments"
      tier    = "prod"
    }
  }

  max_duration_seconds = 600
}

# infra/azure applies its Bicep templates with an Entra ID application.
resource "oidcbridge_mapping" "infra_azure" {
  name   = "monorepo-infra-azure"
  issuer = data.oidcbridge_issuer.github.name

  conditions {
    repository    = [local.repo]
    repository_id = [local.repo_id]
    ref           = ["refs/heads/main"]
    environment   = ["azure-prod"]
    event_name    = ["push", "workflow_dispatch"]
    workflow_ref  = ["${local.repo}/.github/workflows/infra-azure.yml@refs/heads/main"]
    claims = {
      runner_environment = ["github-hosted"]
    }
  }

  azure {
    tenant_id = "11111111-2222-3333-4444-555555555555"
    client_id = "66666666-7777-8888-9999-000000000000"
    scope     = "https://management.azure.com/.default"
  }
}

output "mappings" {
  value = [oidcbridge_mapping.payments_jwt.name, oidcbridge_mapping.infra_azure.name]
}
