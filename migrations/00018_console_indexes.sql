-- +goose Up

-- The console's searches (package console, ledger.Search) read the ledger
-- newest first within a bounded window. Its denials page lists the denied
-- and failed attempts of the last days: this partial index holds only
-- those rows (a small share of the ledger), in time order, so that the
-- page reads LIMIT rows backwards instead of sorting a window's every
-- attempt. The predicate is written exactly as ledger.Search writes its
-- outcome filter, or the planner could not use it.
--
-- issuances_requested_at_btree serves the unfiltered issuances search
-- (ORDER BY requested_at DESC LIMIT n): the BRIN index of 00001 finds a
-- window's blocks but gives no order, so every row of the window would be
-- sorted. Both are created on each partition (an index on a partitioned
-- table cannot be built CONCURRENTLY; on a large ledger, build them on
-- each partition with CREATE INDEX CONCURRENTLY first and attach them:
-- docs/runbooks/console.md).
CREATE INDEX issuances_denials ON issuances (requested_at) WHERE outcome IN ('denied', 'failed');
CREATE INDEX issuances_requested_at_btree ON issuances (requested_at);

-- +goose Down
DROP INDEX issuances_requested_at_btree;
DROP INDEX issuances_denials;
