// Package oidctest runs a local OpenID Connect issuer for tests: a real HTTP
// server on 127.0.0.1 (plain HTTP by default, TLS on request) that serves a
// discovery document and a JWKS, and mints tokens shaped like GitHub Actions
// and GitLab CI id_tokens, signed with its keys or deliberately not.
//
// Unit tests of the identity package and end-to-end tests that run the
// bridge binary (with BRIDGE_ALLOW_INSECURE_ISSUERS=true) both use it. Its
// endpoints can be made to fail, and its discovery document and routes
// overridden, to test outages and SSRF defences.
//
// Programs that are not tests, such as the local demo (test/demo), start one
// with Start and sign with Sign.
//
// It is for tests and the programs under test/ only: production code must
// never import it. Its keys are
// RSA 2048 keys generated once per process and shared between issuers (each
// issuer publishes them under its own kids), which keeps tests fast; tests
// that need a key no issuer publishes use WithUnpublishedKey.
package oidctest
