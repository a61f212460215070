// Package mapping holds the bridge's policy: registered issuers and the
// mappings that say which verified pipeline tokens may obtain which cloud
// target.
//
// It validates issuers and mappings as the admin API receives them
// (ValidateIssuer, Normalize, ValidateMapping: errors are *ValidationError,
// matching ErrInvalid, naming the field at fault), decides whether a mapping
// admits a token's normalised claims (Mapping.Admits, Select) with the
// contract's small pattern language (Match, MatchFold), and stores both in
// Postgres (Store).
//
// A mapping's target stays raw JSON here: each provider owns its target's
// type, decoding and rules (providers.Spec, in providers/<cloud>), and
// ValidateMapping asks the registry of providers (Providers, one line per
// provider in providers.go) to check the target, the range of
// max_duration_seconds and the rules joining the two. No code here names a
// target's field (make lint checks it).
//
// What differs between CI kinds (how a condition compares, what a mapping
// must constrain, the guards, the lint rules) is not written here: each kind
// says it in its file in package identity (identity.Platform), and kinds.go
// applies it. No code here names a kind.
//
// Validation and matching are pure functions: no I/O, no clock, no
// configuration (ValidateOptions carries what the server knows of the
// deployment). The package does not verify tokens (identity does), count
// quotas or record issuances (ledger does), or call clouds (providers do);
// it never imports net/http or echo.
package mapping
