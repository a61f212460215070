package main

import (
	"testing"
)

func TestPsqlURL(t *testing.T) {
	tests := []struct {
		name, in, role, want, password string
		wantErr                        bool
	}{
		{name: "password in the user info goes to PGPASSWORD",
			in:   "postgres://alice:s3cr%2Bt@db.example.com:5432/bridge?sslmode=verify-full",
			want: "postgres://alice@db.example.com:5432/bridge?sslmode=verify-full", password: "s3cr+t"},
		{name: "password parameter and pgx's own parameters are dropped",
			in:   "postgres://alice@db/bridge?password=pw&pool_max_conns=4&statement_cache_capacity=0&default_query_exec_mode=exec&connect_timeout=5",
			want: "postgres://alice@db/bridge?connect_timeout=5", password: "pw"},
		{name: "the auditor role starts the session, after the URL's own options",
			in: "postgres://alice@db/bridge?options=-c%20role%3Dpostgres", role: "oidc_bridge_auditor_bridge",
			want: "postgres://alice@db/bridge?options=-c%20role%3Dpostgres%20-c%20role%3Doidc_bridge_auditor_bridge"},
		{name: "socket folder of the embedded cluster",
			in: "postgres://oidc_bridge_auditor_login@/oidc_bridge?host=%2Fdata+dir%2Frun&port=5432&sslmode=disable", role: "oidc_bridge_auditor_oidc_bridge",
			want: "postgres://oidc_bridge_auditor_login@/oidc_bridge?host=%2Fdata%20dir%2Frun&options=-c%20role%3Doidc_bridge_auditor_oidc_bridge&port=5432&sslmode=disable"},
		{name: "a role name oidc-bridge does not make is refused",
			in: "postgres://alice@db/bridge", role: "x -c role=postgres", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, password, err := psqlURL(tt.in, tt.role)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("psqlURL = %q, want an error", got)
				}
				return
			}
			if err != nil || got != tt.want || password != tt.password {
				t.Errorf("psqlURL = %q, %q, %v\nwant %q, %q", got, password, err, tt.want, tt.password)
			}
		})
	}
}
