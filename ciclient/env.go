package ciclient

import (
	"context"
	"fmt"
	"net/http"
	"strings"
)

// envSource is a token in a variable (--token-env): static.
type envSource struct {
	name, tok string
	env       map[string]string
	// note is added to an invalid_token refusal (what the CI sets that the
	// bridge may not expect, e.g. a fixed audience); "" for none.
	note string
}

func newEnvSource(env map[string]string, name string) (Source, error) {
	tok := strings.TrimSpace(env[name])
	if tok == "" {
		return nil, fmt.Errorf("exchange: $%s is empty or unset", name)
	}
	return &envSource{name: name, tok: tok, env: env}, nil
}

func (s *envSource) Token(context.Context, *http.Client) (string, error) { return s.tok, nil }
func (s *envSource) Static() bool                                        { return true }
func (s *envSource) Scope() string                                       { return jobScope(s.env) + "|" + tokenScope(s.tok) }
func (s *envSource) Describe() string                                    { return "$" + s.name }
func (s *envSource) Hint() string                                        { return s.note }
