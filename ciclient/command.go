package ciclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/oidc-bridge/oidc-bridge/bridge/client"
)

// commandTimeout bounds a CI tool that a source runs for a token.
const commandTimeout = 30 * time.Second

// lookPath finds name in env's PATH (the job's, not this process's).
func lookPath(env map[string]string, name string) string {
	for _, dir := range filepath.SplitList(env["PATH"]) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// runTokenCommand runs a CI's tool (path, args: never a token) with the
// job's environment and returns the token it prints. Its output is never
// shown: a failure says the exit status and the first line of stderr.
func runTokenCommand(ctx context.Context, env map[string]string, what, path string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = environList(env)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &limitedBuffer{&out, maxTokenFile + 1}, &limitedBuffer{&errOut, 4096}
	err := cmd.Run()
	if ctx.Err() != nil {
		return "", &client.TransientError{Err: fmt.Errorf("exchange: %s did not answer within %s", what, commandTimeout)}
	}
	if err != nil {
		msg := strings.TrimSpace(strings.SplitN(errOut.String(), "\n", 2)[0])
		if len(msg) > 200 {
			msg = msg[:200]
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) && msg != "" {
			return "", fmt.Errorf("exchange: %s failed (%v): %s", what, err, msg)
		}
		return "", fmt.Errorf("exchange: %s failed: %v", what, err)
	}
	if out.Len() > maxTokenFile {
		return "", fmt.Errorf("exchange: %s printed more than %d bytes", what, maxTokenFile)
	}
	tok := strings.TrimSpace(out.String())
	if tok == "" || strings.ContainsAny(tok, " \n\t") {
		return "", fmt.Errorf("exchange: %s printed no token", what)
	}
	return tok, nil
}

func environList(env map[string]string) []string {
	l := make([]string, 0, len(env))
	for k, v := range env {
		l = append(l, k+"="+v)
	}
	sort.Strings(l)
	return l
}

// limitedBuffer keeps the first n bytes and drops the rest (the command
// still runs to its end).
type limitedBuffer struct {
	b *bytes.Buffer
	n int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.n - l.b.Len(); room > 0 {
		l.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}
