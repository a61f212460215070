// Package client is the typed Go client of oidc-bridge's admin API
// (/v1/admin): issuers, mappings (and their dry-run validation), mapping
// usage, GitHub Apps (write-only private keys) and the policy explainer (Explain, whose answer comes back as the
// bridge sent it, for the CLI to print as it is or decode), with the wire types of bridge/api; like bridge/api it links nothing
// of the server. The Terraform provider and the CLI use it.
//
// It retries idempotent calls (GET, PUT, DELETE) on 429 and 5xx answers and
// on transport errors, honouring Retry-After, and retries POST only on 429,
// which the server answers before doing anything. Errors of the API come
// back as *Error. The client never logs, and never puts the admin token in
// an error or a String form.
//
// It sends the admin token only to an https:// endpoint, or plain http:// on a
// loopback host (CheckEndpoint), and follows no redirect (RefuseRedirect);
// the CLI's exchange and explain use the same two rules.
//
// Exchange makes the one call of a pipeline, POST /v1/exchange, once, and
// types its errors; the retries with a fresh token, the token sources and the
// output formats are package ciclient's. The admin calls never exchange a
// token.
package client
