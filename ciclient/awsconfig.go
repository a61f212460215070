package ciclient

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
)

// FormatAWSConfig renders one or more aws mappings' credentials as an AWS
// config file (the file AWS_CONFIG_FILE names): a profile per mapping,
// named after it, holding the region and the static credentials. The AWS
// CLI and SDKs read credentials from a config file's profile as from the
// shared credentials file, so one file serves `aws --profile NAME`.
const FormatAWSConfig = "aws-config"

// profileName is what --mapping must be with --format aws-config: a name
// that a config file's [profile NAME] header carries as it is (the bridge's
// own rule for mapping names, upper case allowed).
var profileName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// awsConfigValue: what a credential or region may hold in the file (no
// blank, newline, comment or section character could be smuggled in).
var awsConfigValue = regexp.MustCompile(`^[A-Za-z0-9+/=._~-]+$`)

// awsConfigProfile is one mapping's profile section.
func awsConfigProfile(name string, resp *api.ExchangeResponse) (string, error) {
	var c api.AWSCredentials
	if err := json.Unmarshal(resp.Credentials, &c); err != nil || c.AccessKeyID == "" || c.SecretAccessKey == "" {
		return "", fmt.Errorf("exchange: the bridge's aws credentials of mapping %q are malformed", name)
	}
	var b strings.Builder
	header := "[profile " + name + "]"
	if name == "default" {
		header = "[default]"
	}
	exp := c.Expiration
	if exp.IsZero() {
		exp = resp.ExpiresAt
	}
	fmt.Fprintf(&b, "%s\n# expires %s", header, exp.UTC().Format(time.RFC3339))
	if awsConfigValue.MatchString(resp.IssuanceID) {
		fmt.Fprintf(&b, ", issuance %s", resp.IssuanceID)
	}
	b.WriteString("\n")
	for _, kv := range [][2]string{{"region", c.Region}, {"aws_access_key_id", c.AccessKeyID},
		{"aws_secret_access_key", c.SecretAccessKey}, {"aws_session_token", c.SessionToken}} {
		if kv[1] == "" {
			continue
		}
		if !awsConfigValue.MatchString(kv[1]) {
			return "", fmt.Errorf("exchange: the bridge's aws credentials of mapping %q have a %s that a config file cannot carry", name, kv[0])
		}
		fmt.Fprintf(&b, "%s = %s\n", kv[0], kv[1])
	}
	return b.String(), nil
}
