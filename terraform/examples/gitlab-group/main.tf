# A GitLab group (self-managed or gitlab.com): the projects of the group's
# platform subgroup deploy to Google Cloud through workload identity
# federation; the bridge holds no Google key.

terraform {
  required_providers {
    oidcbridge = {
      source = "oidc-bridge/oidcbridge"
    }
  }
}

provider "oidcbridge" {}

variable "gitlab_url" {
  type    = string
  default = "https://gitlab.com"
}

variable "workload_identity_provider" {
  description = "The pool provider that trusts the bridge's own issuer."
  type        = string
  default     = "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/oidc-bridge/providers/bridge"
}

variable "projects" {
  description = "Projects by path under the group, with their numeric ids and service accounts."
  type = map(object({
    id              = string
    service_account = string
  }))
  default = {
    "platform/network" = { id = "4001", service_account = "ci-network@acme-prod.iam.gserviceaccount.com" }
    "platform/gke"     = { id = "4002", service_account = "ci-gke@acme-prod.iam.gserviceaccount.com" }
  }
}

resource "oidcbridge_issuer" "gitlab" {
  name      = "gitlab"
  url       = var.gitlab_url
  audiences = ["https://bridge.example.com"]
  kind      = "gitlab"
}

resource "oidcbridge_mapping" "gcp" {
  for_each = var.projects

  name   = "gl-${replace(each.key, "/", "-")}"
  issuer = oidcbridge_issuer.gitlab.name

  conditions {
    repository    = ["acme-group/${each.key}"]
    repository_id = [each.value.id]
    # Protected branches only; GitLab's ref becomes refs/heads/...
    ref         = ["refs/heads/main"]
    environment = ["production"]
    event_name  = ["push", "web"]
  }

  gcp {
    service_account            = each.value.service_account
    scopes                     = ["https://www.googleapis.com/auth/cloud-platform"]
    mode                       = "workload_identity"
    workload_identity_provider = var.workload_identity_provider
  }

  max_duration_seconds = 1800

  quota {
    per_job = 3
  }
}
