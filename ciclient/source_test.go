package ciclient

import (
	"strings"
	"testing"
)

func TestTokenScope(t *testing.T) {
	t.Parallel()
	// iss and sub of a JWT, unverified; anything else by its hash.
	jwt := "eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwczovL2dpdGxhYi5leGFtcGxlIiwic3ViIjoicHJvamVjdF9wYXRoOmEvYiJ9.sig"
	if got := tokenScope(jwt); got != "iss=https://gitlab.example,sub=project_path:a/b" {
		t.Fatalf("jwt scope %q", got)
	}
	if got := tokenScope("opaque"); !strings.HasPrefix(got, "sha256:") {
		t.Fatalf("opaque scope %q", got)
	}
}
