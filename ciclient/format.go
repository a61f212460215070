package ciclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
	"github.com/oidc-bridge/oidc-bridge/bridge/client"
)

// Output formats.
const (
	FormatEnv     = "env"
	FormatJSON    = "json"
	FormatDotenv  = "dotenv"
	FormatAWSProc = "aws-credential-process"
	FormatGCPExec = "gcp-executable"
	gcpJWTType    = "urn:ietf:params:oauth:token-type:jwt"
)

// Formats are the output formats, in the order --help lists them.
var Formats = []string{FormatEnv, FormatJSON, FormatDotenv, FormatAWSProc, FormatAWSConfig, FormatGCPExec}

// formatProviders: the formats that fit one provider only.
var formatProviders = map[string]string{FormatAWSProc: "aws", FormatAWSConfig: "aws", FormatGCPExec: "jwt"}

// formatCredentials renders an exchange's answer in format.
func formatCredentials(format string, resp *api.ExchangeResponse) ([]byte, error) {
	switch format {
	case FormatJSON:
		b, err := json.MarshalIndent(resp, "", "  ")
		return append(b, '\n'), err
	case FormatAWSProc:
		var c api.AWSCredentials
		if err := json.Unmarshal(resp.Credentials, &c); err != nil || c.AccessKeyID == "" {
			return nil, errors.New("exchange: the bridge's aws credentials are malformed")
		}
		b, err := json.Marshal(struct {
			Version         int
			AccessKeyID     string `json:"AccessKeyId"`
			SecretAccessKey string
			SessionToken    string
			Expiration      string
		}{1, c.AccessKeyID, c.SecretAccessKey, c.SessionToken, c.Expiration.UTC().Format(time.RFC3339)})
		return append(b, '\n'), err
	case FormatGCPExec:
		var c api.JWTCredentials
		if err := json.Unmarshal(resp.Credentials, &c); err != nil || c.Token == "" {
			return nil, errors.New("exchange: the bridge's jwt credentials are malformed")
		}
		exp := c.ExpiresAt
		if exp.IsZero() {
			exp = resp.ExpiresAt
		}
		b, err := json.Marshal(gcpExecutableResponse{Version: 1, Success: true, TokenType: gcpJWTType, IDToken: c.Token,
			ExpirationTime: exp.Unix()})
		return append(b, '\n'), err
	}
	vars, err := credentialVariables(resp)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	for _, kv := range vars {
		switch format {
		case FormatEnv:
			fmt.Fprintf(&b, "export %s=%s\n", kv[0], shellQuote(kv[1]))
		case FormatDotenv:
			if !dotenvSafe(kv[1]) {
				return nil, fmt.Errorf("exchange: %s holds characters that a dotenv file cannot carry unquoted; use --format env or json", kv[0])
			}
			fmt.Fprintf(&b, "%s=%s\n", kv[0], kv[1])
		}
	}
	return []byte(b.String()), nil
}

type gcpExecutableResponse struct {
	Version        int    `json:"version"`
	Success        bool   `json:"success"`
	TokenType      string `json:"token_type,omitempty"`
	IDToken        string `json:"id_token,omitempty"`
	ExpirationTime int64  `json:"expiration_time,omitempty"`
	Code           string `json:"code,omitempty"`
	Message        string `json:"message,omitempty"`
}

// GCPFailure is Google's executable failure response for err, the line a
// gcp-executable run prints on stdout when it fails.
func GCPFailure(err error) []byte {
	code := "oidc_bridge_error"
	var e *client.ExchangeError
	var ue *UsageError
	switch {
	case errors.As(err, &e) && e.Code != "":
		code = e.Code
	case errors.As(err, &ue):
		code = "usage"
	}
	b, _ := json.Marshal(gcpExecutableResponse{Version: 1, Success: false, Code: code, Message: err.Error()})
	return append(b, '\n')
}

// credentialVariables are the environment variables of an answer, in order.
func credentialVariables(resp *api.ExchangeResponse) ([][2]string, error) {
	var vars [][2]string
	add := func(k, v string) {
		if v != "" {
			vars = append(vars, [2]string{k, v})
		}
	}
	bad := func() error {
		return fmt.Errorf("exchange: the bridge's %s credentials are malformed", client.Printable(resp.Provider))
	}
	switch resp.Provider {
	case "aws":
		var c api.AWSCredentials
		if json.Unmarshal(resp.Credentials, &c) != nil || c.AccessKeyID == "" {
			return nil, bad()
		}
		add("AWS_ACCESS_KEY_ID", c.AccessKeyID)
		add("AWS_SECRET_ACCESS_KEY", c.SecretAccessKey)
		add("AWS_SESSION_TOKEN", c.SessionToken)
		add("AWS_REGION", c.Region)
		add("AWS_DEFAULT_REGION", c.Region)
		if !c.Expiration.IsZero() {
			add("AWS_CREDENTIAL_EXPIRATION", c.Expiration.UTC().Format(time.RFC3339))
		}
	case "gcp":
		var c api.GCPCredentials
		if json.Unmarshal(resp.Credentials, &c) != nil || (c.AccessToken == "") == (c.IDToken == "") {
			return nil, bad()
		}
		// An ID token (token_format id_token) is for the service it names
		// (Cloud Run, IAP: Authorization: Bearer $GOOGLE_ID_TOKEN), never
		// for gcloud or Google's APIs, so it is not offered to them.
		add("GOOGLE_ID_TOKEN", c.IDToken)
		add("CLOUDSDK_AUTH_ACCESS_TOKEN", c.AccessToken)
		add("GOOGLE_OAUTH_ACCESS_TOKEN", c.AccessToken)
	case "azure":
		var c api.AzureCredentials
		if json.Unmarshal(resp.Credentials, &c) != nil || c.AccessToken == "" {
			return nil, bad()
		}
		add("AZURE_ACCESS_TOKEN", c.AccessToken)
	case "jwt":
		var c api.JWTCredentials
		if json.Unmarshal(resp.Credentials, &c) != nil || c.Token == "" {
			return nil, bad()
		}
		add("OIDC_BRIDGE_JWT", c.Token)
	case "github":
		c, err := gitHubCredentials(resp)
		if err != nil {
			return nil, err
		}
		// git, the GitHub SDKs and actions read GITHUB_TOKEN; the gh CLI
		// GH_TOKEN for github.com, and GH_ENTERPRISE_TOKEN with GH_HOST
		// for a GitHub Enterprise Server.
		add("GITHUB_TOKEN", c.Token)
		add("GH_TOKEN", c.Token)
		if host := enterpriseHost(c.ServerURL); host != "" {
			add("GH_HOST", host)
			add("GH_ENTERPRISE_TOKEN", c.Token)
		}
	default:
		return nil, fmt.Errorf("exchange: unknown provider %q in the bridge's answer; use --format json", client.Printable(resp.Provider))
	}
	if !resp.ExpiresAt.IsZero() {
		add("OIDC_BRIDGE_EXPIRES_AT", resp.ExpiresAt.UTC().Format(time.RFC3339))
	}
	add("OIDC_BRIDGE_ISSUANCE_ID", resp.IssuanceID)
	return vars, nil
}

// gitHubCredentials reads and checks a github answer's credentials: the
// token is one line of a bearer token's characters (it goes into git's
// credential protocol, one attribute a line), server_url an https URL.
func gitHubCredentials(resp *api.ExchangeResponse) (api.GitHubCredentials, error) {
	var c api.GitHubCredentials
	if json.Unmarshal(resp.Credentials, &c) != nil || !bearerToken(c.Token) {
		return c, errors.New("exchange: the bridge's github credentials are malformed")
	}
	if c.ServerURL != "" {
		if u, err := url.Parse(c.ServerURL); err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
			return c, errors.New("exchange: the bridge's github credentials have a server_url that is not an https URL")
		}
	}
	return c, nil
}

// bearerToken: RFC 6750's b64token, the only characters a GitHub token has.
func bearerToken(s string) bool {
	if s == "" || len(s) > 4096 {
		return false
	}
	for _, r := range s {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		case strings.ContainsRune("-._~+/=", r):
		default:
			return false
		}
	}
	return true
}

// enterpriseHost is the host of a GitHub Enterprise Server's server_url
// ("" for github.com, which gh and git know without it).
func enterpriseHost(serverURL string) string {
	u, err := url.Parse(serverURL)
	if err != nil || u.Host == "" || strings.EqualFold(u.Hostname(), "github.com") {
		return ""
	}
	return u.Host
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// dotenvSafe: s reads back unchanged, unquoted, in docker's --env-file,
// compose and godotenv (no blanks, quotes, #, $ or escapes).
func dotenvSafe(s string) bool {
	for _, r := range s {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		case strings.ContainsRune("+/=._:@,~-", r):
		default:
			return false
		}
	}
	return true
}
