package ledger_test

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oidc-bridge/oidc-bridge/ledger"
)

// BenchmarkReserveComplete measures the exchange's two ledger writes, with
// both quotas on (the locks and counts taken): 1000 repositories, a job per
// iteration.
func BenchmarkReserveComplete(b *testing.B) {
	ctx := context.Background()
	l, _ := newLedger(b)
	var seq atomic.Int64
	once := func() error {
		i := seq.Add(1)
		c := claims()
		c.Repository = "acme/repo-" + strconv.FormatInt(i%1000, 10)
		c.JobID = strconv.FormatInt(i, 10)
		a := attempt(c)
		a.PerHour, a.PerJob = 1000, 5
		res, err := l.Reserve(ctx, a)
		if err != nil {
			return err
		}
		return l.Complete(ctx, res, "ASIA"+strconv.FormatInt(i, 10), res.ExpiresAt)
	}
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if err := once(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := once(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	// One hot bucket: every exchange of the same mapping and repository
	// queues on its lock, and each counts up to per_hour (1000) rows; past
	// the first 1000, the exchanges are denials (recorded all the same).
	b.Run("parallel-one-bucket", func(b *testing.B) {
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				c := claims()
				c.JobID = strconv.FormatInt(seq.Add(1), 10)
				a := attempt(c)
				a.MappingID, a.PerHour, a.PerJob = 99, 1000, 5
				res, err := l.Reserve(ctx, a)
				if err == nil {
					err = l.Complete(ctx, res, "ASIA", time.Now().Add(time.Hour))
				}
				if err != nil && !errors.Is(err, ledger.ErrQuotaExceeded) {
					b.Error(err)
					return
				}
			}
		})
	})
}
