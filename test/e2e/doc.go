// Package e2e holds oidc-bridge's end-to-end tests: they build the real
// binary, run it against real PostgreSQL (a throwaway cluster, or the
// embedded default it creates itself) and talk to it over HTTP and its
// command line, as operators and admins do. Nothing in them is faked.
package e2e
