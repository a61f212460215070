package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/oidc-bridge/oidc-bridge/ciclient"
)

// The commands of a job's github installation token: git's credential
// helper and the revocation at the job's end. Their logic is ciclient's.

func (a *app) gitCredentialCmd() *cobra.Command {
	var o ciclient.GitCredentialOptions
	cmd := &cobra.Command{
		Use:   "git-credential --server-url URL (--token-file F | --token-env VAR) get|store|erase",
		Short: "A git credential helper that answers a github installation token for one host",
		Long: `A git credential helper (gitcredentials(7)) for the installation token of a
github mapping: for "get" on --server-url's host it answers username
x-access-token and the token, read from --token-file (a 0600 file, read anew
each time) or --token-env; for any other host it answers nothing, so git asks
its other helpers or fails. store and erase do nothing. The token is never
written to stderr.

exchange --git-helper configures git to run it; by hand, in the job's
environment (git 2.31 or later; no file of git's is written):

  export GIT_CONFIG_COUNT=2
  export GIT_CONFIG_KEY_0=credential.https://github.com.helper GIT_CONFIG_VALUE_0=
  export GIT_CONFIG_KEY_1=credential.https://github.com.helper
  export GIT_CONFIG_VALUE_1='!oidc-bridge git-credential --server-url https://github.com/ --token-file /path/to/token'

The empty helper first clears the helpers other configuration lists for the
host.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{errors.New("git-credential takes one operation: get, store or erase (git passes it)")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			err := ciclient.GitCredential(environMap(a.environ), o, args[0], cmd.InOrStdin(), a.stdout)
			if ue := (*ciclient.UsageError)(nil); errors.As(err, &ue) {
				return usageError{err}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.ServerURL, "server-url", "https://github.com/", "the git host the token is for (a GitHub Enterprise Server's https://HOST/)")
	f.StringVar(&o.TokenFile, "token-file", "", "a file holding the token (exchange --git-helper writes one)")
	f.StringVar(&o.TokenEnv, "token-env", "", "a variable holding the token, e.g. GITHUB_TOKEN")
	return cmd
}

func (a *app) revokeCmd() *cobra.Command {
	var o ciclient.RevokeOptions
	cmd := &cobra.Command{
		Use:   "revoke [--bridge-url URL] [--token-file F | --token-env VAR]",
		Short: "Hand a github installation token back to the bridge at the job's end",
		Long: `Hand back a credential the bridge issued to this job, a github installation
token, at the end of the job: POST /v1/credentials/revoke. The bridge revokes
it at GitHub and records the revocation on its ledger. Holding the token is
the authorization: no admin token is needed.

The token comes from --token-file, --token-env, or, without either,
$GITHUB_TOKEN (what exchange --format env exports). A token the bridge did
not issue (the workflow's own GITHUB_TOKEN) is refused with not_found and
nothing is revoked. Revoking twice succeeds. Entries of the credential cache
(--cache-dir, $OIDC_BRIDGE_CACHE_DIR, else the CI's per-job folder) holding
the token are dropped.

It prints the credential's id and when it was revoked. Exit status: 0
revoked (now or before), 1 failure, 2 usage.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			env := environMap(a.environ)
			if o.BridgeURL == "" {
				o.BridgeURL = a.clientEnv(env, envBridgeURL, deprecatedEnvEndpoint)
			}
			resp, err := ciclient.Revoke(cmd.Context(), env, o, a.httpClient(ciclient.AttemptTimeout))
			if ue := (*ciclient.UsageError)(nil); errors.As(err, &ue) {
				return usageError{err}
			}
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.stdout, "revoked credential %s at %s\n", resp.CredentialID, resp.RevokedAt.UTC().Format(time.RFC3339))
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.BridgeURL, "bridge-url", "", "the bridge's base URL (default $"+envBridgeURL+")")
	f.StringVar(&o.TokenFile, "token-file", "", "a file holding the token (e.g. $"+ciclient.EnvGitTokenFile+" of exchange --git-helper)")
	f.StringVar(&o.TokenEnv, "token-env", "", "a variable holding the token (default GITHUB_TOKEN)")
	f.StringVar(&o.CacheDir, "cache-dir", "", "exchange's credential cache to drop the token from")
	return cmd
}
