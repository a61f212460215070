package oidctest

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
)

//go:embed claimsets/*.json
var claimSets embed.FS

// ClaimSets holds the realistic claim sets of CI tokens that every test
// draws its GitHub, GitLab and generic claims from (GitHubClaims and
// GitLabClaims are two of them, issued now by an Issuer): one JSON object
// per file, named <kind>-<what>.json after identity's kinds
// (github-actions.json, gitlab-ci.json, generic-ci.json). Each has an
// "_about" member describing the platform's tokens, which is no claim.
// Adding a CI kind adds its claim set here.
func ClaimSets() fs.FS {
	sub, err := fs.Sub(claimSets, "claimsets")
	if err != nil {
		panic(err) // a constant, valid path
	}
	return sub
}

// ClaimSet returns the claim set in file name of ClaimSets, as written;
// it panics on an unknown name (a test's typo).
func ClaimSet(name string) []byte {
	b, err := fs.ReadFile(ClaimSets(), name)
	if err != nil {
		panic(fmt.Sprintf("oidctest: no claim set %q: %v", name, err))
	}
	return b
}

// claimSet decodes ClaimSet(name) for minting: without "_about", integers
// as int (as a Go literal would have them).
func claimSet(name string) map[string]any {
	dec := json.NewDecoder(bytes.NewReader(ClaimSet(name)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		panic(fmt.Sprintf("oidctest: claim set %s: %v", name, err))
	}
	delete(m, "_about")
	for k, v := range m {
		if n, ok := v.(json.Number); ok {
			if i, err := n.Int64(); err == nil {
				m[k] = int(i)
			}
		}
	}
	return m
}
