// Command demo shows one exchange end to end on this machine, with nothing
// from outside: the real oidc-bridge binary (`serve` on the embedded
// PostgreSQL default, in a temporary data folder), a local OIDC issuer shaped
// like GitHub Actions (test/oidctest: real RS256 signatures, discovery and
// JWKS) and the AWS STS fake (test/ststest), which the bridge's AWS SDK
// reaches through AWS_ENDPOINT_URL_STS. It registers the issuer and an AWS
// mapping through the admin API with a token made by `admin-token create`,
// exchanges a job's token with `oidc-bridge exchange`, shows a denial and
// what the policy explainer says about it, and prints the audit rows.
//
//	make demo                        # builds bin/oidc-bridge, then this
//	go run ./test/demo -bin bin/oidc-bridge
//
// Everything it makes (the data folder, the embedded cluster, and the
// cluster's folder under /var/lib/oidc-bridge when, as root, the postgres
// user cannot reach the temporary folder) is removed at the end; the
// user's own ./.oidc-bridge is never touched.
//
// It lives under test/ because it runs the test fakes, which production
// code must not import; its test (TestDemo) runs it in `make test`.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	bin := flag.String("bin", "bin/oidc-bridge", "the oidc-bridge binary to run (make build)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := run(ctx, options{bin: *bin, out: os.Stdout}); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}
