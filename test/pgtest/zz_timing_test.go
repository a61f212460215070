package pgtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/oidc-bridge/oidc-bridge/internal/database"
)

func TestZZTiming(t *testing.T) {
	s := get(t)
	ctx := context.Background()
	for i := range 6 {
		name := fmt.Sprintf("zz%d", i)
		t0 := time.Now()
		if _, err := s.admin.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE "+templateName+s.strategy); err != nil {
			t.Fatal(err)
		}
		t1 := time.Now()
		var t2 time.Time
		if i%2 == 0 {
			pool, err := database.Open(ctx, s.cluster.URL(name))
			if err != nil {
				t.Fatal(err)
			}
			pool.Exec(ctx, "INSERT INTO admin_tokens (id, name, token_hash) VALUES (gen_random_uuid(), 'n', sha256('x'))")
			pool.Close()
		}
		t2 = time.Now()
		if _, err := s.admin.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Fatal(err)
		}
		t.Logf("%d create %v use %v drop %v", i, t1.Sub(t0), t2.Sub(t1), time.Since(t2))
	}
}
