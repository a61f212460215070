package mapping

import (
	"strings"
	"testing"
)

// TestJWTTargetRefusesCloudAudiences: a jwt target may not name an
// audience a cloud accepts in federation, or the bridge's own assertions
// carry, in any spelling: its tokens share the bridge's issuer and key
// with those assertions. Nor may its static claims be ones a cloud reads.
func TestJWTTargetRefusesCloudAudiences(t *testing.T) {
	t.Parallel()
	for _, aud := range []string{
		"sts.amazonaws.com", "STS.AMAZONAWS.COM", "Sts.AmazonAws.Com", "sts.amazonaws.com.",
		"https://sts.amazonaws.com", "https://sts.amazonaws.com/", "sts.amazonaws.com:443",
		"sts.amazonaws.com.cn", "sts.cn-northwest-1.amazonaws.com.cn", "sts.eu-west-1.amazonaws.com",
		"sts.us-gov-east-1.amazonaws.com", "amazonaws.com", "sts.us-iso-east-1.c2s.ic.gov",
		"api://AzureADTokenExchange", "api://azureadtokenexchange", "API://AZUREADTOKENEXCHANGE",
		"api://AzureADTokenExchangeUSGov", "api://AzureADTokenExchangeChina", "AzureADTokenExchange",
		"//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/ci/providers/bridge",
		"https://iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/ci/providers/bridge",
		"HTTPS://IAM.GOOGLEAPIS.COM/projects/123", "iam.googleapis.com", "sts.googleapis.com",
		"https://sts.googleapis.com/v1/token",
	} {
		m := ghMapping(withTarget("jwt", `{"audience":"`+aud+`"}`))
		err := ValidateMapping(m, "github")
		wantField(t, err, "target.audience")
		if err != nil && !strings.Contains(err.Error(), "federation audience") {
			t.Errorf("audience %q: message %q does not say why", aud, err)
		}
	}
	// Whitespace around a cloud audience is refused as well (as any
	// audience with whitespace).
	for _, aud := range []string{" sts.amazonaws.com", "sts.amazonaws.com ", "\tapi://AzureADTokenExchange"} {
		m := ghMapping(withTarget("jwt", `{"audience":"`+strings.ReplaceAll(aud, "\t", `\t`)+`"}`))
		wantField(t, ValidateMapping(m, "github"), "target.audience")
	}
	for _, aud := range []string{
		"https://vault.example.com", "urn:example:deployer", "https://amazonaws.com.example.org",
		"https://notamazonaws.com", "api://my-internal-api", "https://googleapis.example.com",
	} {
		m := ghMapping(withTarget("jwt", `{"audience":"`+aud+`"}`))
		wantField(t, ValidateMapping(m, "github"), "")
	}
	for _, name := range []string{
		"https://aws.amazon.com/tags", "https://aws.amazon.com/source_identity", "HTTPS://AWS.AMAZON.COM/tags",
		"src_sub", "ci_subject", "ci_issuer", "ci_kind", "service_account", "issuance_id",
	} {
		m := ghMapping(withTarget("jwt", `{"audience":"https://vault.example.com","claims":{"`+name+`":"x"}}`))
		wantField(t, ValidateMapping(m, "github"), "target.claims."+name)
	}
}
