# A GitHub App the bridge mints installation tokens with, and a mapping that
# lets acme/web's main branch push to acme/infra and open pull requests there.
terraform {
  required_providers {
    oidcbridge = { source = "oidc-bridge/oidcbridge" }
  }
}

provider "oidcbridge" {} # OIDC_BRIDGE_URL and OIDC_BRIDGE_ADMIN_TOKEN

variable "app_private_key" {
  type      = string
  sensitive = true
}

resource "oidcbridge_issuer" "github" {
  name      = "github"
  url       = "https://token.actions.githubusercontent.com"
  audiences = ["https://bridge.example.com"]
  kind      = "github"
}

resource "oidcbridge_github_app" "acme" {
  name        = "acme"
  app_id      = 123456
  private_key = var.app_private_key
}

resource "oidcbridge_mapping" "web_pushes_infra" {
  name   = "web-pushes-infra"
  issuer = oidcbridge_issuer.github.name

  conditions {
    repository    = ["acme/web"]
    repository_id = ["123456789"]
    ref           = ["refs/heads/main"]
    event_name    = ["push"]
  }

  github {
    app          = oidcbridge_github_app.acme.name
    owner        = "acme"
    repositories = ["infra"]
    permissions  = { contents = "write", pull_requests = "write" }
  }

  max_duration_seconds = 3600
}
