// Package provider is the oidc-bridge Terraform provider on
// terraform-plugin-framework: the oidcbridge_issuer and oidcbridge_mapping
// resources and data sources. It knows the service only through its admin
// API (package bridge/client) and reuses package mapping's types and
// validation, so a plan refuses offline what the API would refuse.
//
// It does not manage admin tokens, signing keys or anything else outside
// /v1/admin/issuers and /v1/admin/mappings.
package provider
