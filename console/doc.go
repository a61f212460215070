// Package console is the bridge's read-only web console, served under
// /console/ when BRIDGE_CONSOLE=true (bridge.Server.MountConsole): the
// denials and what each mapping said of them, a search of the issuance
// ledger with its CSV export, the mappings with their lint warnings, quota
// use and last day of outcomes, and the policy explainer for a pasted token
// or claims.
//
// Pages are rendered on the server with html/template from embedded files;
// there is no script at all, and the Content-Security-Policy allows only
// the console's own stylesheet and images. A person signs in with an admin
// token of the read scope; the console keeps a random session id's digest
// and the token's fingerprint in this replica's memory (never the token,
// never in the cookie) and checks on every request that the token is still
// neither revoked nor expired.
//
// Nothing in the console changes the bridge's state: it reads the ledger
// and the catalog through the query functions of packages ledger and
// mapping, and explains through the bridge's explainer. It does not import
// echo: the bridge mounts it as an http.Handler.
package console
