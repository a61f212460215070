# A GitHub organisation: several repositories, each deploying from main
# (production environment) to its own AWS role.
#
#   export OIDC_BRIDGE_URL=https://bridge.example.com
#   export OIDC_BRIDGE_ADMIN_TOKEN=...   # an admin token
#   tofu apply                            # or terraform apply

terraform {
  required_providers {
    oidcbridge = {
      source = "oidc-bridge/oidcbridge"
    }
  }
}

provider "oidcbridge" {}

variable "bridge_audience" {
  description = "The audience the pipelines request their OIDC token for."
  type        = string
  default     = "https://bridge.example.com"
}

variable "repositories" {
  description = "Repositories of the organisation: numeric id (never reused, unlike names) and target role."
  type = map(object({
    id       = string
    role_arn = string
    region   = optional(string, "eu-west-1")
  }))
  default = {
    web = { id = "100001", role_arn = "arn:aws:iam::111111111111:role/ci-web-deploy" }
    api = { id = "100002", role_arn = "arn:aws:iam::111111111111:role/ci-api-deploy" }
    etl = { id = "100003", role_arn = "arn:aws:iam::222222222222:role/ci-etl-deploy", region = "us-east-1" }
  }
}

resource "oidcbridge_issuer" "github" {
  name      = "github"
  url       = "https://token.actions.githubusercontent.com"
  audiences = [var.bridge_audience]
  kind      = "github"
}

resource "oidcbridge_mapping" "deploy" {
  for_each = var.repositories

  name   = "${each.key}-prod-deploy"
  issuer = oidcbridge_issuer.github.name

  conditions {
    repository    = ["acme/${each.key}"]
    repository_id = [each.value.id]
    ref           = ["refs/heads/main"]
    environment   = ["production"]
    event_name    = ["push", "workflow_dispatch"]
    claims = {
      runner_environment = ["github-hosted"]
    }
  }

  aws {
    role_arn = each.value.role_arn
    region   = each.value.region
  }

  max_duration_seconds = 3600

  quota {
    per_hour = 60
    per_job  = 5
  }
}

# Read-only access for every repository's pull requests, tried in audit
# mode first: the bridge records what it would have decided, issues nothing.
resource "oidcbridge_mapping" "plan" {
  name   = "org-terraform-plan"
  issuer = oidcbridge_issuer.github.name
  mode   = "audit"

  conditions {
    repository    = [for k, _ in var.repositories : "acme/${k}"]
    repository_id = [for _, r in var.repositories : r.id]
    ref           = ["refs/heads/main", "refs/pull/*/merge"]
  }

  aws {
    role_arn = "arn:aws:iam::111111111111:role/ci-readonly"
    region   = "eu-west-1"
    session_policy = jsonencode({
      Version   = "2012-10-17"
      Statement = [{ Effect = "Allow", Action = ["s3:GetObject", "s3:ListBucket"], Resource = "*" }]
    })
  }

  max_duration_seconds = 900
}

output "deploy_mappings" {
  value = { for k, m in oidcbridge_mapping.deploy : k => m.name }
}

output "warnings" {
  description = "The bridge's lint findings, by mapping."
  value       = { for k, m in oidcbridge_mapping.deploy : k => m.warnings }
}
