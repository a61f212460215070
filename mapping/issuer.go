package mapping

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/oidc-bridge/oidc-bridge/identity"
)

// Replay scopes of an issuer: what a token of it may be exchanged for.
const (
	// ReplayScopeToken (every kind's default today): once in all, whatever
	// the mapping.
	ReplayScopeToken = identity.ReplayScopeToken
	// ReplayScopeTokenMapping: once per mapping, for issuers whose one token
	// must reach several clouds (an HCP Terraform run token read by several
	// providers). A token leaked after its job used it still mints every
	// other mapping that admits it until it expires: LintIssuer warns.
	ReplayScopeTokenMapping = identity.ReplayScopeTokenMapping
)

// validateIssuerReplayAndLimits checks, and defaults, the issuer's replay
// scope (to its kind's default) and token time limits.
func validateIssuerReplayAndLimits(is *Issuer) error {
	switch is.ReplayScope {
	case "":
		is.ReplayScope = identity.PlatformOf(identity.Kind(is.Kind)).Defaults().ReplayScope
	case ReplayScopeToken, ReplayScopeTokenMapping:
	default:
		return invalid("replay_scope", "must be %s or %s", ReplayScopeToken, ReplayScopeTokenMapping)
	}
	lo, hi := int(identity.MinTokenLimit/time.Second), int(identity.MaxTokenLimit/time.Second)
	for _, f := range []struct {
		name string
		v    *int
	}{{"max_token_age_seconds", is.MaxTokenAgeSeconds}, {"max_token_lifetime_seconds", is.MaxTokenLifetimeSeconds}} {
		if f.v != nil && (*f.v < lo || *f.v > hi) {
			return invalid(f.name, "must be %d to %d seconds (omit it for the kind's default)", lo, hi)
		}
	}
	return nil
}

// validateIssuerKeys checks the issuer's own key source, if it has one: a
// static jwks (identity.ParseStaticJWKS: public signature keys only, at most
// 64 KiB and 32 keys), stored compacted, or a jwks_url (its https rule is
// identity.ValidateIssuerURL's, applied by the caller as for url); not both.
func validateIssuerKeys(is *Issuer) error {
	if t := bytes.TrimSpace(is.JWKS); len(t) == 0 || bytes.Equal(t, []byte("null")) {
		is.JWKS = nil
	}
	if is.JWKS != nil && is.JWKSURL != "" {
		return invalid("jwks_url", "give jwks (a static key set) or jwks_url, not both")
	}
	if is.JWKSURL != "" {
		if err := validateIssuerURL(is.JWKSURL); err != nil {
			var ve *ValidationError
			if errors.As(err, &ve) {
				return invalid("jwks_url", "%s", ve.Message)
			}
			return err
		}
	}
	if is.JWKS == nil {
		return nil
	}
	if _, err := identity.ParseStaticJWKS(is.JWKS); err != nil {
		var je *identity.JWKSError
		if !errors.As(err, &je) {
			return invalid("jwks", "%s", err)
		}
		field := "jwks"
		if je.Field != "" {
			field += "." + je.Field
		}
		return invalid(field, "%s", je.Message)
	}
	var b bytes.Buffer
	if err := json.Compact(&b, is.JWKS); err != nil {
		return invalid("jwks", "is not valid JSON")
	}
	is.JWKS = b.Bytes()
	return nil
}

// IdentityIssuer is what verification needs of is.
func IdentityIssuer(is Issuer) identity.Issuer {
	out := identity.Issuer{Name: is.Name, URL: is.URL, Kind: identity.Kind(is.Kind), Audiences: is.Audiences, Enabled: is.Enabled,
		JWKS: is.JWKS, JWKSURL: is.JWKSURL}
	if is.MaxTokenAgeSeconds != nil {
		out.MaxTokenAge = time.Duration(*is.MaxTokenAgeSeconds) * time.Second
	}
	if is.MaxTokenLifetimeSeconds != nil {
		out.MaxTokenLifetime = time.Duration(*is.MaxTokenLifetimeSeconds) * time.Second
	}
	return out
}

// LintIssuer returns the lint findings about a valid issuer:
//
//   - replay_scope_token_mapping (replay_scope): the issuer's tokens may be
//     exchanged once per mapping, not once in all (catalogue 46): a token
//     leaked after its job used it still mints every other mapping that
//     admits it until it expires. Not for a kind whose default it is
//     (terraform_cloud: one run token serves every provider of the run).
//   - issuer_host (url): the kind's issuers are on its platform's own hosts
//     (identity.IssuerRules.Hosts: agent.buildkite.com, oidc.circleci.com,
//     api.bitbucket.org, *.tokens.sts.global.api.aws, vstoken.dev.azure.com,
//     login.microsoftonline.com), over https, and this one is not: a test double,
//     a proxy, or a URL copied wrong.
func LintIssuer(is *Issuer) []Warning {
	if is == nil {
		return nil
	}
	var out []Warning
	if k := identity.Kind(is.Kind); identity.IssuerHostUnusual(k, is.URL) {
		out = append(out, Warning{Code: "issuer_host", Field: "url",
			Message: fmt.Sprintf("%s tokens come from https://%s, not from this URL's host: the issuer is a test double, a proxy or a mistake",
				k, strings.Join(identity.PlatformOf(k).Issuer().Hosts, " or https://"))})
	}
	if is.ReplayScope == ReplayScopeTokenMapping && identity.PlatformOf(identity.Kind(is.Kind)).Defaults().ReplayScope != ReplayScopeTokenMapping {
		out = append(out, Warning{Code: "replay_scope_token_mapping", Field: "replay_scope",
			Message: "a token of this issuer may be exchanged once per mapping, not once in all: a token leaked after its job used it still mints every other mapping that admits it until it expires; keep it only for an issuer whose one token must reach several clouds"})
	}
	return out
}
