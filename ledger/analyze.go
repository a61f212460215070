package ledger

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	// AnalyzeInterval is how often the ledger's partitioned table is
	// analyzed (ledger_analyze, migration 00020): autovacuum analyzes each
	// partition, never the partitioned table, whose statistics the planner
	// uses for queries over several months, the audit cookbook's
	// aggregates among them.
	AnalyzeInterval = 24 * time.Hour
	// analyzeTimeout bounds one ANALYZE: about 10 s for 20 million rows
	// on a small machine.
	analyzeTimeout = 10 * time.Minute
)

// Analyze runs ANALYZE on issuances (the partitioned table and its
// partitions) unless another replica is running it or it ran less than
// AnalyzeInterval ago, and reports whether it ran. Every replica may call
// it; it takes a lock that lets exchanges write.
func (l *Ledger) Analyze(ctx context.Context) (ran bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, analyzeTimeout)
	defer cancel()
	err = pgx.BeginFunc(ctx, l.pool, func(tx pgx.Tx) error {
		// The pool's statement timeout is a backstop for the exchange's
		// statements; this one reads a sample of every partition.
		if _, err := tx.Exec(ctx, `SET LOCAL statement_timeout = 0`); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT ledger_analyze(make_interval(secs => $1::float8))`,
			(AnalyzeInterval - time.Hour).Seconds()).Scan(&ran)
	})
	if err != nil {
		return false, dbError("analyze", err)
	}
	return ran, nil
}
