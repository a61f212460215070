-- +goose Up

-- Indexes for docs/audit.md's cookbook at 20 million rows (the measured
-- plans are in docs/audit-scale.md):
--
--   issuances_denials  the denied rows (a few per cent of the ledger) by
--                      time and reason, with the columns the cookbook's
--                      denial queries read and the view's order needs (id)
--                      included: "denials by reason per day over 30 days"
--                      becomes an index-only scan instead of 100,000 reads
--                      of scattered rows (518 ms p50 before, 108 ms after,
--                      at 20 million rows). issuances_denied (00015, denied
--                      and failed rows, the console's) stays: it serves the
--                      console's newest-first pages without the included
--                      columns.
--   issuances_unknown  the unknown outcomes (a tenth of a per cent): the
--                      daily review read a whole day of the ledger (300 ms
--                      p50 through the BRIN index before, 0.2 ms after).
--
-- Like 00015's, each CREATE INDEX builds on every partition in this
-- migration's transaction and holds inserts until it commits (17 s on 20
-- million rows); docs/operations.md ("Upgrading a large ledger") gives the
-- statements that build them beforehand without blocking.
CREATE INDEX IF NOT EXISTS issuances_denials ON issuances (requested_at, error_code)
    INCLUDE (id, mapping, requested_mapping, issuer, repository) WHERE outcome = 'denied';
CREATE INDEX IF NOT EXISTS issuances_unknown ON issuances (requested_at) WHERE outcome = 'unknown';

-- +goose Down
DROP INDEX issuances_unknown;
DROP INDEX issuances_denials;
