package provider_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
)

// jwkSet returns a JWK Set of one fresh RSA key, public (or, with private,
// with its private members), as indented JSON, and the key's kid.
func jwkSet(t *testing.T, kid string, private bool) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	var key any = k.Public()
	if private {
		key = k
	}
	b, err := json.MarshalIndent(map[string]any{"keys": []jose.JSONWebKey{{Key: key, KeyID: kid, Algorithm: "RS256", Use: "sig"}}}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func staticIssuerHCL(jwks, extra string) string {
	return fmt.Sprintf(`
resource "oidcbridge_issuer" "k8s" {
  name      = "k8s"
  url       = "https://k8s.internal.example.com"
  audiences = ["https://bridge.example.com"]
  kind      = "generic"
  %s
  %s
}

data "oidcbridge_issuer" "k8s" {
  name = oidcbridge_issuer.k8s.name
}
`, jwks, extra)
}

// TestAccIssuerJWKS: an issuer with a static set (jsonencode, then a
// file-like indented string) is created, imported, rotated by a new set and
// moved to a jwks_url, each with an empty plan after; a private key and
// both key sources are refused at plan time.
func TestAccIssuerJWKS(t *testing.T) {
	e := newEnv(t)
	set1, set2 := jwkSet(t, "k1", false), jwkSet(t, "k2", false)
	encoded := staticIssuerHCL("jwks = jsonencode("+set1+")", "")
	indented := staticIssuerHCL("jwks = <<-EOT\n"+set2+"\nEOT", "")
	byURL := staticIssuerHCL("", `jwks_url = "https://keys.example.com/openid/v1/jwks"`)
	bridgeKID := func(want string) resource.TestCheckFunc {
		return func(*terraform.State) error {
			is, err := e.c.GetIssuer(context.Background(), "k8s")
			if err != nil {
				return err
			}
			var set struct{ Keys []struct{ Kid string } }
			if want == "" {
				if is.JWKS != nil {
					return fmt.Errorf("bridge still has jwks %s", is.JWKS)
				}
				return nil
			}
			if err := json.Unmarshal(is.JWKS, &set); err != nil || len(set.Keys) != 1 || set.Keys[0].Kid != want {
				return fmt.Errorf("bridge has jwks %s (%v), want kid %s", is.JWKS, err, want)
			}
			return nil
		}
	}
	resource.ParallelTest(t, resource.TestCase{ProtoV6ProviderFactories: factories(), CheckDestroy: e.checkGone, Steps: []resource.TestStep{
		{Config: e.config(staticIssuerHCL("jwks = jsonencode("+jwkSet(t, "p", true)+")", "")), PlanOnly: true,
			ExpectError: regexp.MustCompile(`jwks.keys\[0\].d`)},
		{Config: e.config(staticIssuerHCL("jwks = jsonencode("+set1+")", `jwks_url = "https://keys.example.com/jwks"`)), PlanOnly: true,
			ExpectError: regexp.MustCompile(`(?s)Invalid Attribute Combination|jwks_url`)},
		{Config: e.config(encoded), Check: resource.ComposeAggregateTestCheckFunc(
			bridgeKID("k1"),
			resource.TestCheckNoResourceAttr("oidcbridge_issuer.k8s", "jwks_url"),
			resource.TestMatchResourceAttr("data.oidcbridge_issuer.k8s", "jwks", regexp.MustCompile(`"kid":"k1"`)),
		)},
		{Config: e.config(encoded), PlanOnly: true},
		{Config: e.config(encoded), ResourceName: "oidcbridge_issuer.k8s", ImportState: true, ImportStateId: "k8s", ImportStateVerify: true,
			ImportStateVerifyIdentifierAttribute: "name"},
		{Config: e.config(indented), ConfigPlanChecks: resource.ConfigPlanChecks{
			PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("oidcbridge_issuer.k8s", plancheck.ResourceActionUpdate)},
		}, Check: resource.ComposeAggregateTestCheckFunc(
			bridgeKID("k2"),
			resource.TestCheckResourceAttr("oidcbridge_issuer.k8s", "jwks", strings.TrimSpace(set2)+"\n"),
		)},
		{Config: e.config(indented), PlanOnly: true},
		{Config: e.config(byURL), Check: resource.ComposeAggregateTestCheckFunc(
			bridgeKID(""),
			resource.TestCheckResourceAttr("oidcbridge_issuer.k8s", "jwks_url", "https://keys.example.com/openid/v1/jwks"),
			resource.TestCheckNoResourceAttr("oidcbridge_issuer.k8s", "jwks"),
		)},
		{Config: e.config(byURL), PlanOnly: true},
	}})
}
