package config

import (
	"log/slog"
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	got, err := Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs("./.oidc-bridge")
	want := Config{
		DataDir:         abs,
		ListenAddr:      "127.0.0.1:8080",
		PublicURL:       "http://127.0.0.1:8080",
		LogLevel:        "info",
		Level:           slog.LevelInfo,
		RateLimit:       50,
		RateBurst:       200,
		IssuerRateLimit: 1000,
		IssuerRateBurst: 2000,

		IssuerOwnerRateLimit: 100,
		IssuerOwnerRateBurst: 200,
		AWSRoleChaining:      true,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("defaults (-want +got):\n%s", diff)
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     []string
		want    Config
		wantErr string // a variable the error must name; "" for none
	}{
		{
			name: "everything set",
			env: []string{"BRIDGE_DATABASE_URL=postgres://u:p@db/bridge", "BRIDGE_MIGRATION_DATABASE_URL=postgres://owner:p@db/bridge",
				"BRIDGE_LISTEN_ADDR=0.0.0.0:9000",
				"BRIDGE_PUBLIC_URL=https://bridge.example.com/", "BRIDGE_ADMIN_TOKEN=" + strings.Repeat("x", 32),
				"BRIDGE_ALLOW_INSECURE_ISSUERS=true", "BRIDGE_LOG_LEVEL=debug"},
			want: Config{DatabaseURL: "postgres://u:p@db/bridge", MigrationDatabaseURL: "postgres://owner:p@db/bridge", ListenAddr: "0.0.0.0:9000",
				PublicURL: "https://bridge.example.com", AdminToken: strings.Repeat("x", 32),
				AllowInsecureIssuers: true, LogLevel: "debug", Level: slog.LevelDebug, RateLimit: 50, RateBurst: 200, IssuerRateLimit: 1000, IssuerRateBurst: 2000, IssuerOwnerRateLimit: 100, IssuerOwnerRateBurst: 200, AWSRoleChaining: true},
		},
		{
			name: "public URL defaults to loopback for a wildcard listen address",
			env:  []string{"BRIDGE_DATABASE_URL=postgres://db/x", "BRIDGE_LISTEN_ADDR=:8443"},
			want: Config{DatabaseURL: "postgres://db/x", ListenAddr: ":8443", PublicURL: "http://127.0.0.1:8443", LogLevel: "info", RateLimit: 50, RateBurst: 200, IssuerRateLimit: 1000, IssuerRateBurst: 2000, IssuerOwnerRateLimit: 100, IssuerOwnerRateBurst: 200, AWSRoleChaining: true},
		},
		{
			name: "aws role chaining off (IAM user keys)",
			env:  []string{"BRIDGE_AWS_ROLE_CHAINING=false"},
			want: Config{ListenAddr: "127.0.0.1:8080", PublicURL: "http://127.0.0.1:8080", LogLevel: "info", RateLimit: 50, RateBurst: 200, IssuerRateLimit: 1000, IssuerRateBurst: 2000, IssuerOwnerRateLimit: 100, IssuerOwnerRateBurst: 200},
		},
		{name: "aws role chaining not a boolean", env: []string{"BRIDGE_AWS_ROLE_CHAINING=maybe"}, wantErr: "BRIDGE_AWS_ROLE_CHAINING"},
		{name: "short admin token", env: []string{"BRIDGE_ADMIN_TOKEN=" + strings.Repeat("x", 31)}, wantErr: "BRIDGE_ADMIN_TOKEN"},
		{name: "admin token with spaces", env: []string{"BRIDGE_ADMIN_TOKEN= " + strings.Repeat("x", 40)}, wantErr: "BRIDGE_ADMIN_TOKEN"},
		{name: "log level", env: []string{"BRIDGE_LOG_LEVEL=verbose"}, wantErr: "BRIDGE_LOG_LEVEL"},
		{name: "log level with offset", env: []string{"BRIDGE_LOG_LEVEL=info+2"}, wantErr: "BRIDGE_LOG_LEVEL"},
		{name: "listen address", env: []string{"BRIDGE_LISTEN_ADDR=localhost"}, wantErr: "BRIDGE_LISTEN_ADDR"},
		{name: "public URL scheme", env: []string{"BRIDGE_PUBLIC_URL=ftp://x"}, wantErr: "BRIDGE_PUBLIC_URL"},
		{name: "public URL query", env: []string{"BRIDGE_PUBLIC_URL=https://x/?a=b"}, wantErr: "BRIDGE_PUBLIC_URL"},
		{name: "trusted proxy", env: []string{"BRIDGE_TRUSTED_PROXIES=10.0.0.0/8,not-an-ip"}, wantErr: "BRIDGE_TRUSTED_PROXIES"},
		{name: "both key-encryption settings", env: []string{"BRIDGE_KEY_ENCRYPTION_KEY=x", "BRIDGE_KEY_ENCRYPTION_KEY_FILE=/k"}, wantErr: "BRIDGE_KEY_ENCRYPTION_KEY_FILE"},
		{name: "gcp endpoint", env: []string{"BRIDGE_GCP_STS_ENDPOINT=sts.local"}, wantErr: "BRIDGE_GCP_STS_ENDPOINT"},
		{name: "negative rate", env: []string{"BRIDGE_RATE_LIMIT=-1"}, wantErr: "BRIDGE_RATE_LIMIT"},
		{name: "rate not a number", env: []string{"BRIDGE_RATE_LIMIT=fast"}, wantErr: "BRIDGE_RATE_LIMIT"},
		{name: "zero burst", env: []string{"BRIDGE_RATE_BURST=0"}, wantErr: "BRIDGE_RATE_BURST"},
		{name: "negative issuer rate", env: []string{"BRIDGE_ISSUER_RATE_LIMIT=-2"}, wantErr: "BRIDGE_ISSUER_RATE_LIMIT"},
		{name: "zero issuer burst", env: []string{"BRIDGE_ISSUER_RATE_BURST=0"}, wantErr: "BRIDGE_ISSUER_RATE_BURST"},
		{name: "negative owner rate", env: []string{"BRIDGE_ISSUER_OWNER_RATE_LIMIT=-1"}, wantErr: "BRIDGE_ISSUER_OWNER_RATE_LIMIT"},
		{name: "owner rate not a number", env: []string{"BRIDGE_ISSUER_OWNER_RATE_LIMIT=NaN"}, wantErr: "BRIDGE_ISSUER_OWNER_RATE_LIMIT"},
		{name: "zero owner burst", env: []string{"BRIDGE_ISSUER_OWNER_RATE_BURST=0"}, wantErr: "BRIDGE_ISSUER_OWNER_RATE_BURST"},
		{name: "metrics address", env: []string{"BRIDGE_METRICS_ADDR=9090"}, wantErr: "BRIDGE_METRICS_ADDR"},
		{name: "metrics on the service's port", env: []string{"BRIDGE_LISTEN_ADDR=0.0.0.0:8080", "BRIDGE_METRICS_ADDR=127.0.0.1:8080"}, wantErr: "BRIDGE_METRICS_ADDR"},
		{name: "metrics on pprof's port", env: []string{"BRIDGE_PPROF_ADDR=127.0.0.1:6060", "BRIDGE_METRICS_ADDR=127.0.0.1:6060"}, wantErr: "BRIDGE_METRICS_ADDR"},
		{name: "insecure flag", env: []string{"BRIDGE_ALLOW_INSECURE_ISSUERS=yes please"}, wantErr: "BRIDGE_ALLOW_INSECURE_ISSUERS"},
		{name: "short breaker cooldown", env: []string{"BRIDGE_BREAKER_COOLDOWN=500ms"}, wantErr: "BRIDGE_BREAKER_COOLDOWN"},
		{name: "long breaker cooldown", env: []string{"BRIDGE_BREAKER_COOLDOWN=2h"}, wantErr: "BRIDGE_BREAKER_COOLDOWN"},
		{name: "breaker cooldown not a duration", env: []string{"BRIDGE_BREAKER_COOLDOWN=30"}, wantErr: "BRIDGE_BREAKER_COOLDOWN"},
		{name: "negative ledger retention", env: []string{"BRIDGE_LEDGER_RETENTION=-744h"}, wantErr: "BRIDGE_LEDGER_RETENTION"},
		{name: "short ledger retention", env: []string{"BRIDGE_LEDGER_RETENTION=743h59m"}, wantErr: "BRIDGE_LEDGER_RETENTION"},
		{name: "ledger retention not a duration", env: []string{"BRIDGE_LEDGER_RETENTION=13 months"}, wantErr: "BRIDGE_LEDGER_RETENTION"},
		{name: "ledger retention without unit", env: []string{"BRIDGE_LEDGER_RETENTION=400"}, wantErr: "BRIDGE_LEDGER_RETENTION"},
		{
			name: "ledger retention of 31 days",
			env:  []string{"BRIDGE_LEDGER_RETENTION=744h"},
			want: Config{ListenAddr: "127.0.0.1:8080", PublicURL: "http://127.0.0.1:8080", LogLevel: "info", RateLimit: 50, RateBurst: 200, IssuerRateLimit: 1000, IssuerRateBurst: 2000, IssuerOwnerRateLimit: 100, IssuerOwnerRateBurst: 200, AWSRoleChaining: true, LedgerRetention: 744 * time.Hour},
		},
		{
			name: "ledger retention 0 keeps forever",
			env:  []string{"BRIDGE_LEDGER_RETENTION=0"},
			want: Config{ListenAddr: "127.0.0.1:8080", PublicURL: "http://127.0.0.1:8080", LogLevel: "info", RateLimit: 50, RateBurst: 200, IssuerRateLimit: 1000, IssuerRateBurst: 2000, IssuerOwnerRateLimit: 100, IssuerOwnerRateBurst: 200, AWSRoleChaining: true},
		},
		{
			name: "pprof on loopback",
			env:  []string{"BRIDGE_PPROF_ADDR=127.0.0.1:6060"},
			want: Config{ListenAddr: "127.0.0.1:8080", PublicURL: "http://127.0.0.1:8080", LogLevel: "info", RateLimit: 50, RateBurst: 200, IssuerRateLimit: 1000, IssuerRateBurst: 2000, IssuerOwnerRateLimit: 100, IssuerOwnerRateBurst: 200, AWSRoleChaining: true, PprofAddr: "127.0.0.1:6060"},
		},
		{
			name: "metrics on their own port",
			env:  []string{"BRIDGE_LISTEN_ADDR=0.0.0.0:8080", "BRIDGE_METRICS_ADDR=0.0.0.0:9090"},
			want: Config{ListenAddr: "0.0.0.0:8080", PublicURL: "http://127.0.0.1:8080", LogLevel: "info", RateLimit: 50, RateBurst: 200, IssuerRateLimit: 1000, IssuerRateBurst: 2000, IssuerOwnerRateLimit: 100, IssuerOwnerRateBurst: 200, AWSRoleChaining: true, MetricsAddr: "0.0.0.0:9090"},
		},
		{name: "pprof on every interface", env: []string{"BRIDGE_PPROF_ADDR=:6060"}, wantErr: "BRIDGE_PPROF_ADDR"},
		{name: "pprof on a public address", env: []string{"BRIDGE_PPROF_ADDR=0.0.0.0:6060"}, wantErr: "BRIDGE_PPROF_ADDR"},
		{name: "pprof on a host name", env: []string{"BRIDGE_PPROF_ADDR=localhost:6060"}, wantErr: "BRIDGE_PPROF_ADDR"},
		{name: "pprof without port", env: []string{"BRIDGE_PPROF_ADDR=127.0.0.1"}, wantErr: "BRIDGE_PPROF_ADDR"},
		{name: "database URL scheme", env: []string{"BRIDGE_DATABASE_URL=mysql://root:secret@db/x"}, wantErr: "BRIDGE_DATABASE_URL"},
		{name: "migration URL scheme", env: []string{"BRIDGE_DATABASE_URL=postgres://db/x", "BRIDGE_MIGRATION_DATABASE_URL=mysql://root:secret@db/x"},
			wantErr: "BRIDGE_MIGRATION_DATABASE_URL"},
		{name: "migration URL without database URL", env: []string{"BRIDGE_MIGRATION_DATABASE_URL=postgres://owner@db/x"},
			wantErr: "BRIDGE_MIGRATION_DATABASE_URL"},
		{
			name: "empty data dir takes the default",
			env:  []string{"BRIDGE_DATA_DIR="},
			want: Config{ListenAddr: "127.0.0.1:8080", PublicURL: "http://127.0.0.1:8080", LogLevel: "info", RateLimit: 50, RateBurst: 200, IssuerRateLimit: 1000, IssuerRateBurst: 2000, IssuerOwnerRateLimit: 100, IssuerOwnerRateBurst: 200, AWSRoleChaining: true},
		},
		{
			name: "rate limit off",
			env:  []string{"BRIDGE_DATABASE_URL=postgres://db/x", "BRIDGE_RATE_LIMIT=0", "BRIDGE_RATE_BURST=1"},
			want: Config{DatabaseURL: "postgres://db/x", ListenAddr: "127.0.0.1:8080", PublicURL: "http://127.0.0.1:8080", LogLevel: "info", RateBurst: 1, IssuerRateLimit: 1000, IssuerRateBurst: 2000, IssuerOwnerRateLimit: 100, IssuerOwnerRateBurst: 200, AWSRoleChaining: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Load(tt.env)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one naming %s", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Fatalf("error leaks the URL's password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreFields(Config{}, "DataDir")); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestTrustedProxies(t *testing.T) {
	t.Parallel()
	c, err := Load([]string{"BRIDGE_TRUSTED_PROXIES=10.0.0.0/8, 192.0.2.7 ,2001:db8::/32,10.1.2.3/8"})
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"),
		netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("10.0.0.0/8")}
	if diff := cmp.Diff(want, c.Proxies, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
}

// TestVariables: Variables names every env tag of Config, once, with its
// default.
func TestVariables(t *testing.T) {
	t.Parallel()
	seen := map[string]string{}
	for _, v := range Variables() {
		if _, dup := seen[v.Name]; dup || !strings.HasPrefix(v.Name, "BRIDGE_") {
			t.Errorf("variable %q (duplicate or not BRIDGE_)", v.Name)
		}
		seen[v.Name] = v.Default
	}
	ty := reflect.TypeFor[Config]()
	n := 0
	for i := range ty.NumField() {
		name, _, _ := strings.Cut(ty.Field(i).Tag.Get("env"), ",")
		if name == "" || name == "-" {
			continue
		}
		n++
		if d, ok := seen[name]; !ok || d != ty.Field(i).Tag.Get("envDefault") {
			t.Errorf("%s: listed %v, default %q", name, ok, d)
		}
	}
	if n != len(seen) || seen["BRIDGE_LISTEN_ADDR"] != "127.0.0.1:8080" {
		t.Errorf("%d tags, %d variables: %v", n, len(seen), seen)
	}
}
