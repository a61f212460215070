package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/oidc-bridge/oidc-bridge/test/ststest"
)

// waitReady polls base's /readyz until it answers 200, for at most a
// minute; the error names the log to read.
func waitReady(base, logName string) error {
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bridge %s not ready; see %s", base, logName)
		}
	}
}

// adminPost creates an admin object (POST path with body, 201 expected)
// at base with the load tool's admin token.
func adminPost(base, path, body string) error {
	req, err := http.NewRequest("POST", base+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("POST %s: %d %s", path, resp.StatusCode, b)
	}
	return nil
}

// workdir resolves -bin and makes the run's temporary folder (prefix),
// which postgres (run as root's child) can traverse; done removes it
// unless -keep.
func workdir(prefix string) (bin, tmp string, done func(), err error) {
	if bin, err = filepath.Abs(*binary); err != nil {
		return "", "", nil, err
	}
	if _, err := os.Stat(bin); err != nil {
		return "", "", nil, fmt.Errorf("%s: %w (run make build)", bin, err)
	}
	if tmp, err = os.MkdirTemp("", prefix); err != nil {
		return "", "", nil, err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		os.RemoveAll(tmp)
		return "", "", nil, err
	}
	done = func() {
		if !*keep {
			os.RemoveAll(tmp)
		}
	}
	return bin, tmp, done, nil
}

// bridgeEnv is the environment of the tool's bridges on dbURL: the admin
// token, no rate limits, the STS fake at stsAddr with its key, extra, then
// the tool's own environment without its BRIDGE_ and AWS_ variables.
func bridgeEnv(dbURL, stsAddr string, extra ...string) []string {
	env := append([]string{"BRIDGE_DATABASE_URL=" + dbURL, "BRIDGE_ADMIN_TOKEN=" + adminToken,
		"BRIDGE_ALLOW_INSECURE_ISSUERS=true", "BRIDGE_RATE_LIMIT=0", "BRIDGE_ISSUER_RATE_LIMIT=0", "BRIDGE_ISSUER_OWNER_RATE_LIMIT=0",
		"AWS_ACCESS_KEY_ID=" + ststest.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + ststest.SecretAccessKey,
		"AWS_REGION=us-east-1", "AWS_ENDPOINT_URL_STS=http://" + stsAddr,
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_PROFILE=",
		"AWS_EC2_METADATA_DISABLED=true"}, extra...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BRIDGE_") && !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	return env
}
