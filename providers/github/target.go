package github

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"

	"github.com/oidc-bridge/oidc-bridge/providers"
)

// Name is the provider's name in mappings.
const Name = "github"

// TokenLifetime is an installation token's life: GitHub fixes it at one
// hour, whatever the request.
const TokenLifetime = 3600

// minDuration is the shortest max_duration_seconds, as for the other
// providers; a token lives TokenLifetime all the same (see Spec).
const minDuration = 60

// maxRepositories is GitHub's limit of repositories per token request.
const maxRepositories = 500

// target is a github mapping's target. decodeTarget is the only way one is
// read, at write time (Spec.CheckTarget) as at mint time.
type target struct {
	App             string
	Owner           string
	Repositories    []string
	AllRepositories bool
	Permissions     map[string]string
}

func invalid(field, format string, args ...any) error {
	return providers.Invalid(Name, field, format, args...)
}

// decodeTarget reads {"app", "owner", "repositories" | "all_repositories":
// true, "permissions"} strictly and applies the target's rules.
func decodeTarget(raw []byte) (target, error) {
	var t target
	if err := providers.DecodeTarget(Name, raw, []providers.Field{
		{Key: "app", Dst: &t.App},
		{Key: "owner", Dst: &t.Owner},
		{Key: "repositories", Dst: &t.Repositories},
		{Key: "all_repositories", Dst: &t.AllRepositories},
		{Key: "permissions", Dst: &t.Permissions},
	}); err != nil {
		return t, err
	}
	switch {
	case t.App == "":
		return t, invalid("target.app", "is required: the name of a GitHub App registered with /v1/admin/github-apps")
	case !providers.ValidMappingName(t.App):
		return t, invalid("target.app", "is not a GitHub App name of this bridge (1 to 64 of a-z, 0-9, '.', '_', '-')")
	case t.Owner == "":
		return t, invalid("target.owner", "is required: the organization or user whose installation of the App mints")
	case !validLogin(t.Owner):
		return t, invalid("target.owner", "is not a GitHub login: 1 to 39 letters, digits and single hyphens, not starting or ending with a hyphen")
	}
	if t.AllRepositories == (len(t.Repositories) > 0) {
		return t, invalid("target.repositories", "give exactly one of repositories (a list of names under owner) and all_repositories: true")
	}
	if len(t.Repositories) > maxRepositories {
		return t, invalid("target.repositories", "lists %d repositories; GitHub takes at most %d", len(t.Repositories), maxRepositories)
	}
	seen := map[string]bool{}
	for i, r := range t.Repositories {
		field := "target.repositories[" + itoa(i) + "]"
		if strings.Contains(r, "/") {
			return t, invalid(field, "must be a repository name under owner, without the owner and \"/\"")
		}
		if !validRepository(r) {
			return t, invalid(field, "is not a GitHub repository name: 1 to 100 of letters, digits, '.', '_' and '-', no wildcard, not \".\" or \"..\"")
		}
		if seen[strings.ToLower(r)] {
			return t, invalid(field, "appears more than once")
		}
		seen[strings.ToLower(r)] = true
	}
	if len(t.Permissions) == 0 {
		return t, invalid("target.permissions", "is required: the permissions of the token, e.g. {\"contents\": \"write\"}; without them GitHub grants all of the App's")
	}
	for _, name := range slices.Sorted(maps.Keys(t.Permissions)) {
		levels, ok := Permissions[name]
		if !ok {
			return t, invalid("target.permissions."+name, "is not a permission GitHub grants to installation tokens")
		}
		if !slices.Contains(levels, t.Permissions[name]) {
			return t, invalid("target.permissions."+name, "must be %s", strings.Join(levels, " or "))
		}
	}
	return t, nil
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

// validLogin is GitHub's rule for user and organization logins: 1 to 39
// ASCII letters, digits and hyphens, no leading, trailing or double hyphen;
// an Enterprise Managed User's "_shortcode" suffix is admitted.
func validLogin(s string) bool {
	base, suffix, emu := strings.Cut(s, "_")
	if emu && (suffix == "" || !alnum(suffix)) {
		return false
	}
	if len(s) > 39 || base == "" || base[0] == '-' || base[len(base)-1] == '-' || strings.Contains(base, "--") {
		return false
	}
	return alnum(strings.ReplaceAll(base, "-", ""))
}

func alnum(s string) bool {
	for _, c := range s {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return s != ""
}

// validRepository is GitHub's rule for repository names: 1 to 100 ASCII
// letters, digits, '.', '_' and '-', not "." or "..".
func validRepository(s string) bool {
	if s == "" || len(s) > 100 || s == "." || s == ".." {
		return false
	}
	for _, c := range s {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// AppName returns the App a github target names, "" when the target does
// not decode: the admin API checks that the App exists when a mapping is
// written, and refuses to delete an App a mapping names.
func AppName(raw json.RawMessage) string {
	t, err := decodeTarget(raw)
	if err != nil {
		return ""
	}
	return t.App
}

// Spec is the github provider's rules for its mappings (providers.Spec).
type Spec struct{}

var (
	_ providers.Spec   = Spec{}
	_ providers.Linter = Spec{}
)

// Name is "github".
func (Spec) Name() string { return Name }

// DurationBounds is 60..3600: GitHub's installation tokens live one hour,
// fixed; a longer max_duration_seconds would promise what GitHub does not
// give. A shorter one does not shorten the token (GitHub takes no
// lifetime): the credential's expires_at is GitHub's, and a job that is
// done revokes it (POST /v1/credentials/revoke).
func (Spec) DurationBounds() (lo, hi int) { return minDuration, TokenLifetime }

// CheckTarget decodes a github target as Mint does and applies its rules.
// That the App exists is checked by the admin API, which has the store.
func (Spec) CheckTarget(raw json.RawMessage) error {
	_, err := decodeTarget(raw)
	return err
}

// CheckMapping has nothing to add.
func (Spec) CheckMapping(providers.Mapping) error { return nil }
