// Package ledger keeps the issuance ledger: one row per exchange attempt
// whose token verified, the replay guard, the quota counts and the auditors'
// view (schema audit). It never stores a token or a secret, only identifiers
// (the token's jti, a credential's id).
//
// The exchange's reserve and record steps arrive with the exchange itself;
// this package so far maintains the ledger's partitions and reports a
// mapping's usage for the admin API.
package ledger
