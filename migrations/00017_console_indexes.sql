-- +goose Up

-- The console's searches (package console, ledger.Search) read the ledger
-- newest first within a bounded window. Its denials page lists the denied
-- and failed attempts of the last days through issuances_denied (00015:
-- partial on exactly the outcome filter ledger.Search writes), reading
-- LIMIT rows backwards instead of sorting a window's every attempt.
--
-- issuances_requested_at_btree serves the unfiltered issuances search
-- (ORDER BY requested_at DESC LIMIT n): the BRIN index of 00001 finds a
-- window's blocks but gives no order, so every row of the window would be
-- sorted. It is created on each partition (an index on a partitioned
-- table cannot be built CONCURRENTLY; on a large ledger, build it on each
-- partition with CREATE INDEX CONCURRENTLY first and attach it:
-- docs/runbooks/console.md).
CREATE INDEX issuances_requested_at_btree ON issuances (requested_at);

-- +goose Down
DROP INDEX issuances_requested_at_btree;
