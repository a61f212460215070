// Package pgtest is the shared PostgreSQL helper of oidc-bridge's tests.
//
// Each test binary gets one throwaway cluster (internal/pgcluster, with
// durability off), started on first use in a fresh folder under /dev/shm
// (memory; several times faster than a disk) or else os.TempDir(), with the
// schema migrated once into a template database. Every test then gets its own
// database, copied from that template in milliseconds and dropped when the
// test ends, so tests may run in parallel and never see each other's rows.
//
// A package whose tests use it must stop the cluster from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
// and then calls [NewPool] (or [NewDatabase] for a URL, or
// [NewEmptyDatabase] for a database without the schema).
//
// When the PostgreSQL server binaries are missing the tests fail; they are
// never skipped. A test binary that dies without returning from Main (a
// panic, a -timeout, a kill) leaves its cluster behind; the next test binary
// that uses pgtest stops and removes such leftovers.
//
// What it does not do: it offers no fixtures or fakes of the product's data,
// and it is not for production code.
package pgtest
