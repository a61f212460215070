package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/bridge/client"
)

// TestExchangeErrors: every answer but 200 is an *ExchangeError carrying
// the contract's fields, shown safely; Transient follows the bridge's
// Retry-After rule for 502; a connection refused may pass.
func TestExchangeErrors(t *testing.T) {
	t.Parallel()
	type answer struct {
		status      int
		header      [2]string
		body        string
		want        client.ExchangeError
		wantText    string
		isTransient bool
	}
	for _, c := range []answer{
		{status: 403, header: [2]string{"X-Request-Id", "hdr"}, body: `{"error":"no_matching_mapping","message":"no\u001b[31m","issuance_id":"i-1","request_id":"r-1"}`,
			want:     client.ExchangeError{Status: 403, Code: api.CodeNoMatchingMapping, Message: "no\x1b[31m", IssuanceID: "i-1", RequestID: "r-1"},
			wantText: `exchange: 403 no_matching_mapping: no\x1b[31m (issuance id i-1) (request id r-1)`},
		{status: 502, body: `{"error":"provider_error","message":"m"}`,
			want: client.ExchangeError{Status: 502, Code: api.CodeProviderError, Message: "m"}, wantText: "exchange: 502 provider_error: m"},
		{status: 502, header: [2]string{"Retry-After", "3"}, body: `{"error":"provider_error","message":"m"}`,
			want:     client.ExchangeError{Status: 502, Code: api.CodeProviderError, Message: "m", RetryAfter: 3 * time.Second, HasRetryAfter: true},
			wantText: "exchange: 502 provider_error: m", isTransient: true},
		{status: 500, header: [2]string{"Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT"}, body: "oops",
			want:     client.ExchangeError{Status: 500, Message: "Internal Server Error", HasRetryAfter: true},
			wantText: "exchange: 500: Internal Server Error", isTransient: true},
		{status: 501, body: `{"error":"x","message":"m"}`, want: client.ExchangeError{Status: 501, Code: "x", Message: "m"}, wantText: "exchange: 501 x: m"},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/v1/exchange" || r.Header.Get("Authorization") != "Bearer tok" {
				http.Error(w, "wrong request", http.StatusTeapot)
				return
			}
			if c.header[0] != "" {
				w.Header().Set(c.header[0], c.header[1])
			}
			w.WriteHeader(c.status)
			_, _ = w.Write([]byte(c.body))
		}))
		_, err := client.Exchange(context.Background(), client.NoRedirects(srv.Client()), srv.URL, "tok", api.ExchangeRequest{Mapping: "m"})
		srv.Close()
		var e *client.ExchangeError
		if !errors.As(err, &e) {
			t.Fatalf("%d: %v is no *ExchangeError", c.status, err)
		}
		if d := cmp.Diff(c.want, *e); d != "" || err.Error() != c.wantText || e.Transient() != c.isTransient {
			t.Errorf("%d: %q transient %v (-want +got)\n%s", c.status, err, e.Transient(), d)
		}
	}
	// A closed port: the network, which may pass.
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	_, err := client.Exchange(context.Background(), client.NoRedirects(nil), url, "tok", api.ExchangeRequest{})
	var te *client.TransientError
	if !errors.As(err, &te) || !strings.HasPrefix(err.Error(), "exchange: ") {
		t.Fatalf("refused connection: %v", err)
	}
}
