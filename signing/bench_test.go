package signing_test

import (
	"context"
	"testing"

	"github.com/oidc-bridge/oidc-bridge/signing"
)

func BenchmarkSign(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	claims := e.claims()
	for _, alg := range []string{signing.RS256, signing.ES256} {
		b.Run(alg, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.m.Sign(ctx, claims, alg); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(alg+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := e.m.Sign(ctx, claims, alg); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
