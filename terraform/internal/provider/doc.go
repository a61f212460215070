// Package provider is the oidc-bridge Terraform provider on
// terraform-plugin-framework: the oidcbridge_issuer and oidcbridge_mapping
// resources and data sources. It knows the service only through its admin
// API, as users do: the wire types of bridge/api and the client of
// bridge/client, nothing of the server (`make lint` checks it links neither
// pgx nor go-oidc). A plan is validated and linted by the bridge itself
// (POST ...?dry_run=true) when the provider is configured; `terraform
// validate` checks offline only what needs no bridge.
//
// It does not manage admin tokens, signing keys or anything else outside
// /v1/admin/issuers and /v1/admin/mappings.
package provider
