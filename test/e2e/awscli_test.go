package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oidc-bridge/oidc-bridge/test/moto"
)

// The AWS CLIs the tests drive, each called by its full path (`aws` on
// PATH may be either): the Makefile's test target sets these variables
// from scripts/ensure-awscli.sh; without them the script is run here.
var awsCLIs = []struct{ name, env string }{
	{"v2", "OIDC_BRIDGE_AWS_CLI_V2"},
	{"v1", "OIDC_BRIDGE_AWS_CLI_V1"},
}

// awsCLI is the path of the AWS CLI version v ("v2" or "v1"); the test
// fails when there is none.
func awsCLI(t *testing.T, v, env string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	p, err := moto.RunScript("ensure-awscli.sh", v)
	if err != nil {
		t.Fatalf("no AWS CLI %s (set %s or make scripts/ensure-awscli.sh %s work): %v", v, env, v, err)
	}
	return p
}

// cliEnv is a clean environment for the AWS CLI and the shell around it:
// no variable of the machine's AWS setup, CI or oidc-bridge, HOME in a
// temporary folder, an AWS config file of the test's and an empty shared
// credentials file.
func cliEnv(t *testing.T, config string, extra ...string) []string {
	t.Helper()
	home := t.TempDir()
	creds := filepath.Join(home, "credentials")
	cfg := filepath.Join(home, "config")
	for path, body := range map[string]string{creds: "", cfg: config} {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return append([]string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + home, "LANG=C.UTF-8",
		"AWS_CONFIG_FILE=" + cfg, "AWS_SHARED_CREDENTIALS_FILE=" + creds,
		"AWS_PAGER=", "AWS_CLI_AUTO_PROMPT=off", "AWS_EC2_METADATA_DISABLED=true"}, extra...)
}

// runAWS runs the AWS CLI at bin with args against moto, in env.
func runAWS(t *testing.T, env []string, bin, endpoint string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(args, "--endpoint-url", endpoint)...)
	cmd.Env, cmd.Dir = env, t.TempDir()
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	return o.String(), e.String(), err
}

// callerARN runs `aws sts get-caller-identity` and returns the Arn.
func callerARN(t *testing.T, env []string, bin, endpoint string, profile ...string) string {
	t.Helper()
	out, errOut, err := runAWS(t, env, bin, endpoint, append([]string{"sts", "get-caller-identity", "--output", "json"}, profile...)...)
	if err != nil {
		t.Fatalf("aws sts get-caller-identity: %v\n%s", err, errOut)
	}
	var id struct{ Arn, Account string }
	if err := json.Unmarshal([]byte(out), &id); err != nil {
		t.Fatalf("aws sts get-caller-identity: %v: %s", err, out)
	}
	if id.Account != moto.Account {
		t.Errorf("account %q", id.Account)
	}
	return id.Arn
}

// sessionsNamed counts the sessions moto issued under name.
func sessionsNamed(t *testing.T, m *motoAccount, name string) int {
	t.Helper()
	n := 0
	for _, a := range m.srv.AssumedRoles(t) {
		if a.SessionName == name {
			n++
		}
	}
	return n
}

// TestAWSCLI: the AWS CLI v2 (Debian's) and v1 (Python) take the bridge's
// credentials two ways, each checked with `aws sts get-caller-identity`
// (whose Arn names the session the bridge chose, computed here from the
// token's claims) and `aws s3 cp` against moto with IAM enforced (not `aws
// s3 ls`: moto 5.2.1 miscomputes the signature of a query string holding
// "/", as ListObjectsV2's delimiter does, and answers SignatureDoesNotMatch):
//   - a profile whose credential_process is `oidc-bridge exchange --format
//     aws-credential-process` with a credential cache in a temporary
//     folder: the two CLI runs exchange once (the second reads the cache);
//   - `eval "$(oidc-bridge exchange --format env)"` in bash, then the CLI.
//
// The role's policy allows the artifacts bucket only: a copy from the
// secrets bucket is refused.
func TestAWSCLI(t *testing.T) {
	t.Parallel()
	m := newMotoAccount(t)
	s, gh, _ := motoBridge(t, m)
	runs := map[string][2]string{"v2": {"7021", "7022"}, "v1": {"7011", "7012"}}
	for _, c := range awsCLIs {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			bin := awsCLI(t, c.name, c.env)
			dir := t.TempDir()
			tf := filepath.Join(dir, "job.jwt")
			local := filepath.Join(dir, "artifact.txt")
			if err := os.WriteFile(local, []byte("built by "+c.name+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}

			// credential_process.
			claims := map[string]any{"run_id": runs[c.name][0], "run_attempt": "1"}
			tokenFile(t, gh, tf, claims)
			claims["repository"] = "acme/web"
			session := wantSessionName(claims)
			config := "[profile ci]\nregion = eu-west-1\ncredential_process = " + strings.Join([]string{binary, "exchange",
				"--bridge-url", s.url, "--mapping", "web-deploy", "--token-file", tf, "--format", "aws-credential-process",
				"--duration", "900", "--cache-dir", filepath.Join(dir, "cache")}, " ") + "\n"
			env := cliEnv(t, config, "AWS_PROFILE=ci")
			start := time.Now()
			if arn := callerARN(t, env, bin, m.srv.URL); arn != "arn:aws:sts::"+moto.Account+":assumed-role/"+motoRoleName+"/"+session {
				t.Fatalf("credential_process: caller %s, want session %s", arn, session)
			}
			key := "s3://" + artifactsBucket + "/cli/" + c.name + ".txt"
			if _, errOut, err := runAWS(t, env, bin, m.srv.URL, "s3", "cp", local, key); err != nil {
				t.Fatalf("credential_process: aws s3 cp to %s: %v\n%s", key, err, errOut)
			}
			if n := sessionsNamed(t, m, session); n != 1 {
				t.Fatalf("credential_process: %d sessions %s, want 1 (the second CLI run answered from the cache)", n, session)
			}
			t.Logf("credential_process: get-caller-identity and s3 cp in %v", time.Since(start).Round(time.Millisecond))

			// env, evaluated by bash.
			claims = map[string]any{"run_id": runs[c.name][1], "run_attempt": "3"}
			tokenFile(t, gh, tf, claims)
			claims["repository"] = "acme/web"
			session = wantSessionName(claims)
			env = cliEnv(t, "", "AWS="+bin, "BRIDGE="+binary, "TF="+tf, "MOTO="+m.srv.URL, "OIDC_BRIDGE_URL="+s.url, "KEY="+key)
			script := `set -eu
eval "$("$BRIDGE" exchange --mapping web-deploy --token-file "$TF" --format env --duration 15m --no-cache)"
"$AWS" sts get-caller-identity --output text --query Arn --endpoint-url "$MOTO"
"$AWS" s3 cp "$KEY" - --endpoint-url "$MOTO" >&2
if err=$("$AWS" s3 cp s3://` + secretsBucket + "/" + secretKey + ` - --endpoint-url "$MOTO" 2>&1 >/dev/null); then
	echo "read the secrets bucket" >&2; exit 1
fi
case "$err" in
*"(403)"*Forbidden*|*AccessDenied*) ;;
*) echo "the secrets bucket refused otherwise: $err" >&2; exit 1 ;;
esac
`
			start = time.Now()
			sh := exec.Command("bash", "-c", script)
			sh.Env, sh.Dir = env, t.TempDir()
			var o, e bytes.Buffer
			sh.Stdout, sh.Stderr = &o, &e
			if err := sh.Run(); err != nil {
				t.Fatalf("env format in bash: %v\n%s", err, e.String())
			}
			if arn := strings.TrimSpace(o.String()); arn != "arn:aws:sts::"+moto.Account+":assumed-role/"+motoRoleName+"/"+session {
				t.Fatalf("env: caller %s, want session %s", arn, session)
			}
			if e.String() != "built by "+c.name+"\n" {
				t.Fatalf("env: aws s3 cp %s -: %q", key, e.String())
			}
			if n := sessionsNamed(t, m, session); n != 1 {
				t.Fatalf("env: %d sessions %s, want 1", n, session)
			}
			t.Logf("env: exchange, get-caller-identity, s3 cp and a refused s3 cp in %v", time.Since(start).Round(time.Millisecond))
		})
	}
}
