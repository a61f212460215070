package ciclient

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

const maxTokenFile = 64 << 10

// fileSource is a token file (--token-file), read anew for every attempt,
// so that a file the CI refreshes gives fresh tokens.
type fileSource struct {
	path string
	env  map[string]string
}

func (s *fileSource) Token(context.Context, *http.Client) (string, error) {
	f, err := os.Open(s.path)
	if err != nil {
		return "", fmt.Errorf("exchange: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTokenFile+1))
	if err != nil {
		return "", fmt.Errorf("exchange: read %s: %w", s.path, err)
	}
	if len(b) > maxTokenFile {
		return "", fmt.Errorf("exchange: %s is larger than %d bytes", s.path, maxTokenFile)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("exchange: the token file %s is empty", s.path)
	}
	return tok, nil
}

func (s *fileSource) Static() bool { return false }

func (s *fileSource) Scope() string {
	tok, err := s.Token(context.Background(), nil)
	if err != nil {
		return jobScope(s.env) + "|file:" + s.path
	}
	return jobScope(s.env) + "|" + tokenScope(tok)
}

func (s *fileSource) Describe() string { return "the token file " + s.path }
