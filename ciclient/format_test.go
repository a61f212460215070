package ciclient

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/oidc-bridge/oidc-bridge/bridge/api"
)

func awsAnswer(exp time.Time) *api.ExchangeResponse {
	creds, _ := json.Marshal(map[string]any{"access_key_id": "ASIAEXAMPLE", "secret_access_key": "s3cr3t+/=",
		"session_token": "tok'en", "expiration": exp, "region": "eu-west-1"})
	return &api.ExchangeResponse{IssuanceID: "0193b9e2", Mapping: "web", Provider: "aws", ExpiresAt: exp, Credentials: creds}
}

func TestFormatCredentials(t *testing.T) {
	t.Parallel()
	exp := time.Date(2026, 11, 26, 18, 0, 0, 0, time.UTC)
	resp := awsAnswer(exp)

	out, err := formatCredentials(FormatEnv, resp)
	if err != nil {
		t.Fatal(err)
	}
	// The quoted value survives a real shell.
	sh := exec.Command("sh", "-c", string(out)+`printf '%s' "$AWS_SESSION_TOKEN|$AWS_DEFAULT_REGION|$OIDC_BRIDGE_EXPIRES_AT"`)
	got, err := sh.Output()
	if err != nil || string(got) != "tok'en|eu-west-1|2026-11-26T18:00:00Z" {
		t.Fatalf("env output %q evaluates to %q (%v)", out, got, err)
	}
	// dotenv refuses what it cannot carry unquoted.
	if _, err := formatCredentials(FormatDotenv, resp); err == nil || !strings.Contains(err.Error(), "AWS_SESSION_TOKEN") {
		t.Fatalf("dotenv of a quote: %v", err)
	}
	out, err = formatCredentials(FormatAWSProc, resp)
	if err != nil || string(out) != `{"Version":1,"AccessKeyId":"ASIAEXAMPLE","SecretAccessKey":"s3cr3t+/=","SessionToken":"tok'en","Expiration":"2026-11-26T18:00:00Z"}`+"\n" {
		t.Fatalf("credential_process %s %v", out, err)
	}
	jwtCreds, _ := json.Marshal(map[string]any{"token": "a.b.c", "token_type": "Bearer", "expires_at": exp, "audience": "x"})
	jwtResp := &api.ExchangeResponse{Mapping: "j", Provider: "jwt", ExpiresAt: exp, Credentials: jwtCreds}
	out, err = formatCredentials(FormatGCPExec, jwtResp)
	if err != nil || string(out) != `{"version":1,"success":true,"token_type":"urn:ietf:params:oauth:token-type:jwt","id_token":"a.b.c","expiration_time":1795716000}`+"\n" {
		t.Fatalf("gcp-executable %s %v", out, err)
	}
	out, err = formatCredentials(FormatDotenv, jwtResp)
	if err != nil || !strings.HasPrefix(string(out), "OIDC_BRIDGE_JWT=a.b.c\n") {
		t.Fatalf("dotenv jwt %s %v", out, err)
	}
	for provider, want := range map[string]string{
		"gcp":   "CLOUDSDK_AUTH_ACCESS_TOKEN='ya29.x'",
		"azure": "AZURE_ACCESS_TOKEN='ya29.x'",
	} {
		c, _ := json.Marshal(map[string]any{"access_token": "ya29.x", "token_type": "Bearer", "expires_at": exp})
		out, err := formatCredentials(FormatEnv, &api.ExchangeResponse{Provider: provider, Credentials: c})
		if err != nil || !strings.Contains(string(out), "export "+want+"\n") {
			t.Fatalf("%s env %s %v", provider, out, err)
		}
	}
}
