// Package providers defines what the bridge asks of a provider: the rules
// of its mappings (Spec: the target's strict decode and rules, the range of
// max_duration_seconds, the rules that join the target to the mapping's
// name and duration) and the minting of a short-lived credential for a
// mapping's target (Provider). Each provider is a sibling subpackage
// (providers/aws, providers/gcp, providers/azure, providers/jwt) that owns
// its target type, its decoding, its rules with their sources, its limits
// and its minting, and alone imports its SDK.
//
// This package holds the interfaces, the Registry of specs, the shared
// strict decoder (DecodeTarget, with the admin API's messages) and the
// shared types (credential bodies, Error); it does not call any cloud. It
// may import identity and signing, never mapping: mapping asks it.
//
// # One decode, at write and at mint
//
// A provider's target is read by one function of its package (each calls
// it decodeTarget): DecodeTarget with the table of its keys, then the
// target's rules. Spec.CheckTarget runs it when the admin API writes a
// mapping; Mint runs it again on the stored target, so that mint refuses
// what write refuses (fail closed), with no second copy of a rule. Outside
// providers/<cloud> the target is raw JSON: `make lint` (internal/targetlint)
// fails when other code names a target's field.
//
// # Adding a provider
//
//  1. Write providers/<name>: a decodeTarget over a []providers.Field table
//     and the target's rules (errors from Invalid, fields as the admin
//     writes them: "target.<key>"), a Spec (Name, DurationBounds,
//     CheckTarget, CheckMapping) and a Provider whose Mint decodes with the
//     same decodeTarget; test it against a wire-compatible fake in test/.
//  2. Add its Spec to the registry, one line in mapping/providers.go; the
//     admin API then accepts its mappings and lists it in its messages.
//  3. Build its Provider in cmd/oidc-bridge (serve.go, newProviders) from
//     its configuration, and document its target in docs/api.md and its
//     limits in docs/clouds.md.
package providers
