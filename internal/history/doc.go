// Package history writes rows of the admin-change history (table
// admin_changes, the auditors' view audit.admin_changes) for the bridge's
// own writes: the admin API's changes to issuers and mappings, the CLI's
// admin-token and key commands, and the key schedule. Each row is inserted
// in the transaction of the change it describes, so a change that fails
// records nothing and a recorded change cannot be missing its row. Rows are
// only ever inserted.
//
// Writes made directly in SQL are recorded by triggers of migration 00008,
// not here; the database stamps every row with the login (db_user), the
// transaction and the time, whoever inserts it.
//
// It does not read the history: auditors query the view.
package history
