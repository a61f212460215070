// Package ciclient is the client that a CI job runs to turn its OIDC token
// into credentials: the logic of `oidc-bridge exchange`, for every CI.
//
// It finds the job's token (one file per source: a token file, a variable,
// and each CI's own way, tried in the order of cis or chosen with --ci:
// GitHub Actions' token request, the GitLab template's id_tokens variable,
// buildkite-agent, CircleCI, Bitbucket, HCP Terraform, Azure DevOps'
// token request, Jenkins' credential binding, Kubernetes' projected token,
// AWS STS GetWebIdentityToken; see Source for how a CI is added), exchanges it through
// bridge/client.Exchange with retries (a fresh token per attempt where the
// source gives one), keeps the answer in a per-job cache that only the job's
// user can read, and renders it in an output format (env, dotenv, json,
// aws-credential-process, gcp-executable).
//
// It does not parse flags, read the process environment or write to stdout:
// cmd/oidc-bridge does, and hands it an Options, the environment as a map,
// an HTTP client and stderr. It never verifies a token (the bridge does) and
// never logs or caches one: the cache holds credentials and a token's hash.
// It is on the client side: it must not link the server's code (pgx,
// go-oidc). deps_test.go checks it, for the Terraform provider, bridge/api
// and bridge/client too; `make lint` runs it.
package ciclient
