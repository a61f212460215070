# Many repositories, one mapping each: the list lives in repositories.json
# (kept by hand, by a script or exported from the GitHub API), and for_each
# turns every entry into a mapping of its own. Adding a repository is a line
# in the file and an apply; removing one destroys its mapping, and only its.
#
#   export OIDC_BRIDGE_ENDPOINT=https://bridge.example.com
#   export OIDC_BRIDGE_TOKEN=...   # an admin token
#   tofu apply                      # or terraform apply

terraform {
  required_providers {
    oidcbridge = {
      source = "oidc-bridge/oidcbridge"
    }
  }
}

provider "oidcbridge" {}

variable "owner" {
  description = "The GitHub organisation that owns the repositories."
  type        = string
  default     = "acme"
}

locals {
  # name => { id, account, region }: the numeric id is pinned because a
  # deleted repository's name can be registered again by anyone.
  repositories = {
    for r in jsondecode(file("${path.module}/repositories.json")) : r.name => r
  }
}

data "oidcbridge_issuer" "github" {
  # Registered elsewhere (see ../github-org); read here by name.
  name = "github"
}

resource "oidcbridge_mapping" "ci" {
  for_each = local.repositories

  name   = "${each.key}-main"
  issuer = data.oidcbridge_issuer.github.name

  conditions {
    repository    = ["${var.owner}/${each.key}"]
    repository_id = [each.value.id]
    ref           = ["refs/heads/main"]
    event_name    = ["push", "workflow_dispatch"]
    claims = {
      runner_environment = ["github-hosted"]
    }
  }

  aws {
    role_arn = "arn:aws:iam::${each.value.account}:role/ci-${each.key}"
    region   = lookup(each.value, "region", "eu-west-1")
  }

  max_duration_seconds = 900
}

output "mappings" {
  description = "The mapping of each repository: the name a pipeline passes to oidc-bridge exchange --mapping."
  value       = { for k, m in oidcbridge_mapping.ci : k => m.name }
}
