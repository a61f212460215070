package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/oidc-bridge/oidc-bridge/ciclient"
)

// The exchange command: its flags and help. What it does (token sources,
// retries, the cache, the formats) is package ciclient's.

func (a *app) exchangeCmd() *cobra.Command {
	var o ciclient.Options
	var caFile string
	var scopes []string
	cmd := &cobra.Command{
		Use:   "exchange [--bridge-url URL] [--mapping NAME] [--format FORMAT] [--ci NAME | --token-file F | --token-env VAR]",
		Short: "Exchange this job's OIDC token for credentials (the client for any CI)",
		Long: `Exchange the CI job's OIDC token for short-lived credentials at the bridge's
POST /v1/exchange, and print them for a shell, a file or a cloud SDK.

The bridge's URL (--bridge-url or $OIDC_BRIDGE_URL; the old name
$OIDC_BRIDGE_ENDPOINT is deprecated) must be https://; plain http:// only on localhost, 127.0.0.1 or [::1]. No
redirect is followed: a 3xx answer fails, naming where it pointed.

The token comes from exactly one source: --token-file (read again for each
attempt, so a file the CI refreshes gives fresh tokens), --token-env (a
variable such as GitLab's id_tokens variable; static), or, when neither is
given, the CI that the job runs in (--ci auto, the default, tries them in
this order; --ci NAME uses that one only):
  github     ACTIONS_ID_TOKEN_REQUEST_URL and _TOKEN: a fresh token for
             --audience per attempt
  gitlab     $OIDC_BRIDGE_ID_TOKEN (the template's id_tokens entry; static)
  buildkite  (BUILDKITE=true) buildkite-agent oidc request-token --audience:
             a fresh token per attempt
  circleci   (CIRCLECI=true) circleci run oidc get --claims '{"aud": ...}'
             when the circleci CLI is on PATH (fresh per attempt), else
             $CIRCLE_OIDC_TOKEN_V2 or $CIRCLE_OIDC_TOKEN (static; their
             audience is the organization id, not the bridge's)
  bitbucket  $BITBUCKET_STEP_OIDC_TOKEN (static)
  terraform_cloud  $TFC_WORKLOAD_IDENTITY_TOKEN_<TAG> whose
             $TFC_WORKLOAD_IDENTITY_AUDIENCE_<TAG> is the audience, else
             $TFC_WORKLOAD_IDENTITY_TOKEN (static)
  azure_devops  (TF_BUILD=True) POST $SYSTEM_OIDCREQUESTURI with
             $SYSTEM_ACCESSTOKEN (map $(System.AccessToken) in) for the
             service connection $OIDC_BRIDGE_AZURE_SERVICE_CONNECTION_ID
             (else $AZURESUBSCRIPTION_SERVICE_CONNECTION_ID): fresh per
             attempt; audience api://AzureADTokenExchange
  jenkins    (JENKINS_URL set) the credential binding's file
             $OIDC_BRIDGE_TOKEN_FILE (read per attempt), else its variable
             $OIDC_BRIDGE_ID_TOKEN
  kubernetes (KUBERNETES_SERVICE_HOST set) the projected token file
             $OIDC_BRIDGE_KUBERNETES_TOKEN_FILE, else
             /var/run/secrets/tokens/oidc-bridge-token (read per attempt)
  aws        ($AWS_EXECUTION_ENV or $CODEBUILD_BUILD_ID set) STS
             GetWebIdentityToken for the audience with the job's AWS
             credentials in $AWS_REGION: fresh per attempt
The audience is --audience, else $OIDC_BRIDGE_AUDIENCE, else the bridge URL.

A github mapping's installation token is exported as GITHUB_TOKEN and
GH_TOKEN (and GH_HOST, GH_ENTERPRISE_TOKEN for a GitHub Enterprise Server).
--git-helper adds the lines that make git use it for the token's host:
  eval "$(oidc-bridge exchange --mapping NAME --git-helper)"
  git push https://github.com/acme/other.git HEAD:main
Hand the token back at the job's end with oidc-bridge revoke.

Formats: env (export lines for eval or source), dotenv (NAME=value lines for
docker --env-file, compose and dotenv readers), json (the bridge's answer),
aws-credential-process (an AWS SDK credential_process; aws mappings),
aws-config (an AWS config file with a profile per --mapping, named after
it, holding its region and credentials: repeat --mapping for several, each
exchanged with a fresh token from the CI; --output FILE writes it with mode
0600 for AWS_CONFIG_FILE, then aws --profile NAME), and gcp-executable (Google's executable-sourced credential response; a jwt
mapping whose audience is the workload identity pool provider).

Credentials are cached per bridge, mapping and job (0700 folder, 0600 files)
and reused until they are within --refresh-before of expiry; then a fresh CI
token is exchanged. SDKs that run this command whenever their credentials
expire thus keep long jobs working. The cache lives only in a folder that the
CI deletes after the job: GitHub Actions' $RUNNER_TEMP, Azure Pipelines'
$AGENT_TEMPDIRECTORY. Elsewhere (GitLab, Jenkins, Buildkite, a workstation)
there is no such folder and nothing is cached unless --cache-dir or
$OIDC_BRIDGE_CACHE_DIR names one: a cache that outlives the job would hand
its credentials to whatever runs next as the same user.

Behind a proxy: HTTPS_PROXY, HTTP_PROXY and NO_PROXY (or their lower-case
forms) apply to the bridge and the CI's token request. A private CA: the
system's roots, or $SSL_CERT_FILE's in their place, plus --ca-file's.

Transient failures (429, 5xx, network) are retried with jittered backoff;
refusals fail at once with the bridge's error code. Exit status: 0 success,
1 failure, 2 usage.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Scopes = strings.Join(scopes, " ")
			err := a.runExchange(cmd, o, caFile)
			if err != nil && o.Format == ciclient.FormatGCPExec {
				_, _ = a.stdout.Write(ciclient.GCPFailure(err))
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.BridgeURL, "bridge-url", "", "the bridge's base URL (default $"+envBridgeURL+")")
	f.StringArrayVar(&o.Mappings, "mapping", nil, "the mapping to use (default $"+ciclient.EnvMapping+"; else the one mapping that admits the token); repeat it with --format "+ciclient.FormatAWSConfig+" for a profile each")
	f.StringVar(&o.Provider, "provider", "", "only mappings of this provider: aws, gcp, azure, jwt, github (default $"+ciclient.EnvProvider+")")
	f.StringVar(&o.Duration, "duration", "", "the credentials' lifetime, e.g. 15m or 900 (default $"+ciclient.EnvDuration+"; else the mapping's default)")
	f.StringVar(&o.SessionPolicyFile, "session-policy", "", "a file holding an AWS inline session policy (JSON) to narrow the credentials to (aws mappings without a session policy of their own)")
	f.StringArrayVar(&scopes, "scope", nil, "a scope of the gcp mapping to narrow the token to (repeat for several; default the mapping's scopes)")
	f.StringVar(&o.Audience, "audience", "", "the audience of a token requested from the CI (default $"+ciclient.EnvAudience+"; else the bridge URL)")
	f.StringVar(&o.TokenFile, "token-file", "", "a file holding the CI job's OIDC token, read anew for every exchange")
	f.StringVar(&o.TokenEnv, "token-env", "", "a variable holding the CI job's OIDC token (e.g. GitLab's id_tokens variable)")
	f.StringVar(&o.CI, "ci", ciclient.CIAuto, "the CI whose token to use: "+ciclient.CIAuto+" or one of "+strings.Join(ciclient.CINames(), ", "))
	f.StringVar(&o.Format, "format", ciclient.FormatEnv, "output: "+strings.Join(ciclient.Formats, ", "))
	f.IntVar(&o.Retries, "retries", 4, "retries of a transient failure (429, 5xx, network)")
	f.StringVar(&o.CacheDir, "cache-dir", "", "the credential cache (default $"+ciclient.EnvCacheDir+", else the CI's per-job temporary folder: $RUNNER_TEMP/oidc-bridge, $AGENT_TEMPDIRECTORY/oidc-bridge; else none)")
	f.BoolVar(&o.NoCache, "no-cache", false, "neither read nor write the credential cache")
	f.DurationVar(&o.RefreshBefore, "refresh-before", 5*time.Minute, "exchange again when cached credentials expire within this")
	f.BoolVar(&o.GitHelper, "git-helper", false, "github mappings, --format env: also write the token to a 0600 file and export the GIT_CONFIG_* lines that make git push with it to the token's host (oidc-bridge git-credential)")
	f.StringVar(&o.Output, "output", "", "with --format "+ciclient.FormatAWSConfig+", write the file here (mode 0600) instead of stdout")
	f.StringVar(&caFile, "ca-file", "", "PEM certificates to trust besides the system's (or $SSL_CERT_FILE's) for the bridge and the CI's token request (default $"+envCAFile+")")
	return cmd
}

func (a *app) runExchange(cmd *cobra.Command, o ciclient.Options, caFile string) error {
	env := environMap(a.environ)
	if caFile == "" {
		caFile = strings.TrimSpace(env[envCAFile])
	}
	if o.BridgeURL == "" {
		o.BridgeURL = a.clientEnv(env, envBridgeURL, deprecatedEnvEndpoint)
	}
	if o.GitHelper {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("exchange: --git-helper: the path of this command: %w", err)
		}
		o.Executable = exe
	}
	c, err := ciclient.Load(env, o)
	if err != nil {
		if ue := (*ciclient.UsageError)(nil); errors.As(err, &ue) {
			return usageError{err}
		}
		return err
	}
	hc, err := a.httpClientCA(ciclient.AttemptTimeout, caFile)
	if err != nil {
		return usageError{err}
	}
	out, err := c.Run(cmd.Context(), hc, a.stderr)
	if err != nil {
		return err
	}
	_, err = a.stdout.Write(out)
	return err
}
