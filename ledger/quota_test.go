package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/oidc-bridge/oidc-bridge/identity"
	"github.com/oidc-bridge/oidc-bridge/internal/database"
	"github.com/oidc-bridge/oidc-bridge/ledger"
	"github.com/oidc-bridge/oidc-bridge/test/pgtest"
)

// tally sorts concurrent results into reservations and quota errors,
// failing on anything else.
func tally(t *testing.T, results []result, quota string, limit int, window time.Duration) (ok, denied int) {
	t.Helper()
	for _, r := range results {
		var qe *ledger.QuotaError
		switch {
		case r.err == nil:
			ok++
		case errors.As(r.err, &qe):
			denied++
			if !errors.Is(r.err, ledger.ErrQuotaExceeded) || qe.Quota != quota || qe.Limit != limit ||
				qe.RetryAfter <= 0 || qe.RetryAfter > window || qe.IssuanceID == "" {
				t.Errorf("quota error %+v", qe)
			}
		default:
			t.Errorf("Reserve: %v", r.err)
		}
	}
	return ok, denied
}

func TestQuotaPerHourConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)
	results := concurrently(50, func(int) (ledger.Reservation, error) {
		a := attempt(claims())
		a.PerHour = 10
		return l.Reserve(ctx, a)
	})
	ok, denied := tally(t, results, ledger.QuotaPerHour, 10, time.Hour)
	if ok != 10 || denied != 40 {
		t.Errorf("%d reserved, %d denied; want 10, 40", ok, denied)
	}
	if diff := cmp.Diff(map[string]int{"pending": 10, "denied/quota_exceeded": 40}, outcomes(t, pool)); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	// A quota denial does not spend the token: the replay guard holds
	// exactly the ten reserved tokens.
	var guards int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM replay_guard WHERE mapping_id = 0`).Scan(&guards); err != nil || guards != 10 {
		t.Errorf("replay_guard: %d rows, %v; want 10", guards, err)
	}
}

// Two pools on one database stand for two replicas: the quota holds across
// them because it is enforced by the database, not by process memory.
func TestQuotaAcrossReplicas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	var replicas [2]*ledger.Ledger
	for i := range replicas {
		pool, err := database.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		if i == 0 {
			seedCatalog(t, pool)
		}
		replicas[i] = ledger.New(pool)
	}
	results := concurrently(60, func(i int) (ledger.Reservation, error) {
		a := attempt(claims())
		a.PerHour, a.PerJob = 10, 100
		return replicas[i%2].Reserve(ctx, a)
	})
	ok, denied := tally(t, results, ledger.QuotaPerHour, 10, time.Hour)
	if ok != 10 || denied != 50 {
		t.Errorf("%d reserved, %d denied across two replicas; want 10, 50", ok, denied)
	}
}

func TestQuotaPerHourBuckets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, _ := newLedger(t)
	reserve := func(repo string, mappingID int64) error {
		t.Helper()
		c := claims()
		c.Repository = repo
		a := attempt(c)
		a.MappingID, a.PerHour = mappingID, 3
		_, err := l.Reserve(ctx, a)
		return err
	}
	// Case variants of one repository share its bucket.
	for _, repo := range []string{"acme/web", "Acme/Web", "ACME/WEB"} {
		if err := reserve(repo, 1); err != nil {
			t.Fatalf("%s: %v", repo, err)
		}
	}
	if err := reserve("AcMe/wEb", 1); !errors.Is(err, ledger.ErrQuotaExceeded) {
		t.Errorf("fourth of acme/web: %v; want ErrQuotaExceeded", err)
	}
	// Other repositories and other mappings have their own buckets.
	for _, tt := range []struct {
		repo    string
		mapping int64
	}{{"acme/api", 1}, {"acme/web", 2}, {"", 1}} {
		if err := reserve(tt.repo, tt.mapping); err != nil {
			t.Errorf("%q on mapping %d: %v", tt.repo, tt.mapping, err)
		}
	}
	// A token without a repository has a bucket of its own too.
	for range 2 {
		if err := reserve("", 1); err != nil {
			t.Errorf("no repository: %v", err)
		}
	}
	if err := reserve("", 1); !errors.Is(err, ledger.ErrQuotaExceeded) {
		t.Errorf("fourth without repository: %v; want ErrQuotaExceeded", err)
	}
	// Usage counts what the quota counts.
	u, err := l.Usage(ctx, 1, "web-prod-deploy", 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []ledger.RepositoryUsage{
		{Repository: "", Issued: 3, Remaining: ptr(0)},
		{Repository: "acme/web", Issued: 3, Remaining: ptr(0)},
		{Repository: "acme/api", Issued: 1, Remaining: ptr(2)},
	}
	if diff := cmp.Diff(want, u.Repositories); diff != "" {
		t.Errorf("usage (-want +got):\n%s", diff)
	}
}

func TestQuotaPerHourWindow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)
	// Outside the window, or outcomes that issued nothing: not counted.
	backdate(t, pool, 61*time.Minute, "issued", "acme/web", 1, "r", "1", "j")
	backdate(t, pool, 2*time.Hour, "unknown", "acme/web", 1, "r", "1", "j")
	backdate(t, pool, time.Minute, "failed", "acme/web", 1, "r", "1", "j")
	backdate(t, pool, time.Minute, "denied", "acme/web", 1, "r", "1", "j")
	// Counted: issued, pending and unknown in the hour. The oldest, 50
	// minutes ago, frees the bucket in 10 minutes.
	backdate(t, pool, 50*time.Minute, "unknown", "Acme/Web", 1, "r", "1", "j")
	backdate(t, pool, 20*time.Minute, "pending", "acme/web", 1, "r", "1", "j")
	backdate(t, pool, 10*time.Minute, "issued", "acme/web", 1, "r", "1", "j")

	a := attempt(claims())
	a.PerHour = 4
	if _, err := l.Reserve(ctx, a); err != nil {
		t.Fatalf("fourth in the hour: %v", err)
	}
	a = attempt(claims())
	a.PerHour = 4
	_, err := l.Reserve(ctx, a)
	var qe *ledger.QuotaError
	if !errors.As(err, &qe) {
		t.Fatalf("fifth in the hour: %v; want a QuotaError", err)
	}
	if qe.Quota != ledger.QuotaPerHour || qe.RetryAfter < 9*time.Minute || qe.RetryAfter > 10*time.Minute {
		t.Errorf("QuotaError %+v; want per_hour, retry after about 10 minutes", qe)
	}
	u, err := l.Usage(ctx, 1, "web-prod-deploy", 4, 0)
	if err != nil {
		t.Fatal(err)
	}
	if u.Issued != 4 {
		t.Errorf("Usage counts %d, the quota 4", u.Issued)
	}
}

func TestQuotaFreedByFail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, _ := newLedger(t)
	a := attempt(claims())
	a.PerHour = 1
	res, err := l.Reserve(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	b := attempt(claims())
	b.PerHour = 1
	if _, err := l.Reserve(ctx, b); !errors.Is(err, ledger.ErrQuotaExceeded) {
		t.Fatalf("second: %v; want ErrQuotaExceeded", err)
	}
	if err := l.Fail(ctx, res, "provider_error"); err != nil {
		t.Fatal(err)
	}
	// The failed mint no longer counts, and the denied token was not
	// spent: the same token now passes.
	if _, err := l.Reserve(ctx, b); err != nil {
		t.Errorf("same token after the quota freed: %v", err)
	}
}

func TestQuotaPerJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)
	job := func(run, runAttempt, jobID string) *identity.Claims {
		c := claims()
		c.RunID, c.RunAttempt, c.JobID = run, runAttempt, jobID
		return c
	}
	reserve := func(c *identity.Claims) error {
		t.Helper()
		a := attempt(c)
		a.PerJob, a.PerHour = 2, 1000
		_, err := l.Reserve(ctx, a)
		return err
	}
	// The job's lifetime counts, not only the last hour; older than
	// JobWindow, failed and denied rows do not.
	backdate(t, pool, 3*time.Hour, "issued", "acme/web", 1, "100", "1", "7")
	backdate(t, pool, ledger.JobWindow+time.Hour, "issued", "acme/web", 1, "100", "1", "7")
	backdate(t, pool, time.Minute, "failed", "acme/web", 1, "100", "1", "7")
	backdate(t, pool, time.Minute, "denied", "acme/web", 1, "100", "1", "7")
	if err := reserve(job("100", "1", "7")); err != nil {
		t.Fatalf("second of the job: %v", err)
	}
	err := reserve(job("100", "1", "7"))
	var qe *ledger.QuotaError
	if !errors.As(err, &qe) || qe.Quota != ledger.QuotaPerJob || qe.Limit != 2 {
		t.Fatalf("third of the job: %v; want a per_job QuotaError", err)
	}
	// It frees when the oldest counted row (3 hours old) leaves the window.
	if want := ledger.JobWindow - 3*time.Hour; qe.RetryAfter < want-time.Minute || qe.RetryAfter > want {
		t.Errorf("RetryAfter %v, want about %v", qe.RetryAfter, want)
	}
	// Another job, another attempt of the run, another run, another
	// mapping or another issuer: separate counts.
	for _, c := range []*identity.Claims{job("100", "1", "8"), job("100", "2", "7"), job("101", "1", "7"), job("100", "", "7")} {
		if err := reserve(c); err != nil {
			t.Errorf("run %s attempt %s job %s: %v", c.RunID, c.RunAttempt, c.JobID, err)
		}
	}
	gitlab := job("100", "1", "7")
	gitlab.Issuer = "https://gitlab.example.com"
	if err := reserve(gitlab); err != nil {
		t.Errorf("other issuer: %v", err)
	}
	// A GitLab job has no run attempt; a token without run id shares one
	// bucket per issuer and mapping (a limit is never skipped).
	for _, c := range []*identity.Claims{job("200", "", "9"), job("", "", ""), job("", "", "")} {
		if err := reserve(c); err != nil {
			t.Errorf("run %q job %q: %v", c.RunID, c.JobID, err)
		}
	}
	if err := reserve(job("", "", "")); !errors.Is(err, ledger.ErrQuotaExceeded) {
		t.Errorf("third without run id: %v; want ErrQuotaExceeded", err)
	}

	// Usage reports the job as the quota counts it.
	u, err := l.Usage(ctx, 1, "web-prod-deploy", 1000, 2)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, j := range u.Jobs {
		if j.Issuer == ghIssuer && j.RunID == "100" && j.RunAttempt == "1" && j.JobID == "7" {
			found = true
			if j.Issued != 2 || *j.Remaining != 0 {
				t.Errorf("usage of the job: %+v; want 2 issued, 0 remaining", j)
			}
		}
	}
	if !found || u.JobWindowSeconds != int(ledger.JobWindow/time.Second) {
		t.Errorf("usage: %+v", u)
	}
}

func TestQuotaPerJobConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, _ := newLedger(t)
	// Two jobs race: each gets exactly its three.
	results := concurrently(40, func(i int) (ledger.Reservation, error) {
		c := claims()
		c.JobID = fmt.Sprint("job-", i%2)
		a := attempt(c)
		a.PerJob, a.PerHour = 3, 100
		return l.Reserve(ctx, a)
	})
	ok, denied := tally(t, results, ledger.QuotaPerJob, 3, ledger.JobWindow)
	if ok != 6 || denied != 34 {
		t.Errorf("%d reserved, %d denied; want 6, 34", ok, denied)
	}
}

// When both quotas are spent, RetryAfter is when both have freed.
func TestQuotaBothSpent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, pool := newLedger(t)
	c := claims()
	backdate(t, pool, 30*time.Minute, "issued", c.Repository, 1, c.RunID, c.RunAttempt, c.JobID)
	a := attempt(c)
	a.PerHour, a.PerJob = 1, 1
	_, err := l.Reserve(ctx, a)
	var qe *ledger.QuotaError
	if !errors.As(err, &qe) || qe.Quota != ledger.QuotaPerJob || qe.RetryAfter < time.Hour {
		t.Errorf("%v; want per_job with the longer RetryAfter", err)
	}
}
