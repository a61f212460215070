// What each provider's credentials object of the contract becomes on the
// runner: the values to mask, the step outputs, the environment variables
// that the cloud's own tools read, and the files (under RUNNER_TEMP) to write.
// Pure: main.js does the I/O.

import { hasUnprintable } from './text.mjs';

// A secret is masked with ::add-mask::, one line per value, before anything
// else: a newline in it would split the mask (the runner masks line by
// line), so a secret must be one bearer token as RFC 6750 spells it
// (b64token: letters, digits and - . _ ~ + / =), which every provider's
// credential is (AWS keys and session tokens are base64, Google and Azure
// access tokens and the bridge's JWTs base64url). An AWS access key id is
// 16 to 128 word characters (the AWS API's AccessKeyIdType).
const SECRET = /^[A-Za-z0-9._~+/=-]+$/;
const AWS_ACCESS_KEY_ID = /^\w{16,128}$/;
// The AWS provider's rule for regions (providers/aws/target.go).
const AWS_REGION = /^[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}$/;
// An RFC 3339 date-time (an expiration).
const RFC3339_FIELD = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;
// An AWS account id: twelve digits.
const AWS_ACCOUNT_ID = /^\d{12}$/;
// A GitHub URL of the answer (api_url, server_url): https, a host, no user
// info, query or fragment.
const HTTPS_URL = /^https:\/\/[A-Za-z0-9.-]+(?::\d{1,5})?(?:\/[A-Za-z0-9._~%\/-]*)?$/;
// The longest non-secret field (an Azure scope is at most 2048).
const MAX_FIELD = 2048;

// required checks the secret fields: present, strings, of the secret form.
// Errors name the field, never the value.
function required(creds, provider, ...names) {
  for (const n of names) {
    if (typeof creds[n] !== 'string' || creds[n] === '') {
      throw new Error(`the bridge's ${provider} credentials lack "${n}"`);
    }
    if (!SECRET.test(creds[n])) {
      throw new Error(`the bridge's ${provider} credentials have a "${n}" with characters no credential has ` +
        '(only letters, digits and - . _ ~ + / =): refused, nothing exported');
    }
  }
}

// str reads an optional non-secret field: absent is '', anything else must
// be a string of printable characters (an output or an environment
// variable that a later step may print), at most MAX_FIELD long, and of
// the format, if one is given.
function str(creds, provider, name, format) {
  const v = creds[name];
  if (v === undefined || v === null || v === '') return '';
  const bad = typeof v !== 'string' || v.length > MAX_FIELD || hasUnprintable(v) ||
    (format && !format.test(v)) || (format === RFC3339_FIELD && Number.isNaN(Date.parse(v)));
  if (bad) {
    throw new Error(`the bridge's ${provider} credentials have a "${name}" that is not ` +
      `${format === RFC3339_FIELD ? 'an RFC 3339 date-time' : format ? 'of its format' : 'one line of printable text'}: refused, nothing exported`);
  }
  return v;
}

// utc renders a checked RFC 3339 date-time as the CLI does (Go's
// time.RFC3339 in UTC, whole seconds): 2026-11-26T17:00:00Z.
function utc(v) {
  return new Date(v).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

// The variables of every exchange, after the provider's: the same names,
// in the same order, as `oidc-bridge exchange --format env` prints
// (actions/exported-variables.json lists them; both sides' tests read it).
function common(env, meta) {
  if (meta.expiresAt) env.OIDC_BRIDGE_EXPIRES_AT = utc(meta.expiresAt);
  if (meta.issuanceId) env.OIDC_BRIDGE_ISSUANCE_ID = meta.issuanceId;
  return env;
}

// Google's endpoints for an external account credential (the values
// google-github-actions/auth writes).
export const GOOGLE_STS_TOKEN_URL = 'https://sts.googleapis.com/v1/token';
export const GOOGLE_IAM_CREDENTIALS = 'https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/';
export const GCP_JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
// How long Google's libraries let the executable run (their maximum): the
// CLI's retries honour a Retry-After of up to a minute.
export const GCP_EXECUTABLE_TIMEOUT_MS = 120_000;
// The variables google-github-actions/auth exports: the credentials file's
// path, and the project.
export const GCP_FILE_VARS = ['GOOGLE_APPLICATION_CREDENTIALS', 'CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE', 'GOOGLE_GHA_CREDS_PATH'];
export const GCP_PROJECT_VARS = ['CLOUDSDK_CORE_PROJECT', 'CLOUDSDK_PROJECT', 'GCLOUD_PROJECT', 'GCP_PROJECT', 'GOOGLE_CLOUD_PROJECT'];

// externalAccount is Google's external account credential (the
// Application Default Credentials file type for workload identity
// federation) whose subject token comes from running the oidc-bridge CLI:
// `oidc-bridge exchange --format gcp-executable` exchanges a fresh ID token
// of the job for the jwt mapping's bridge-signed token whenever a Google
// library needs one. g: {workloadIdentityProvider, serviceAccount,
// command} (all checked by the caller: no blanks, since Google splits the
// command on blanks and runs it without a shell).
export function externalAccount(g) {
  const file = {
    type: 'external_account',
    audience: `//iam.googleapis.com/${g.workloadIdentityProvider}`,
    subject_token_type: GCP_JWT_TYPE,
    token_url: GOOGLE_STS_TOKEN_URL,
  };
  if (g.serviceAccount) {
    file.service_account_impersonation_url = `${GOOGLE_IAM_CREDENTIALS}${g.serviceAccount}:generateAccessToken`;
  }
  file.credential_source = { executable: { command: g.command, timeout_millis: GCP_EXECUTABLE_TIMEOUT_MS } };
  return JSON.stringify(file, null, 2) + '\n';
}

// plan returns {secrets, outputs, env, files} for one exchange response.
// files maps a file name (relative to the action's RUNNER_TEMP folder) to
// its content and to the outputs/env entries that name its path:
// {name: {content, output, env}} (env: one name or a list).
// opts: {issuanceId, expiresAt} (the answer's, checked), outputCredentials
// and maskAccountId (aws: configure-aws-credentials' output-credentials and
// mask-aws-account-id), gcpFile (jwt: the externalAccount() settings plus
// projectId, to write Google's credentials file).
export function plan(provider, creds, opts = {}) {
  const meta = opts;
  if (creds === null || typeof creds !== 'object') {
    throw new Error('the bridge answered without a credentials object');
  }
  switch (provider) {
    case 'aws': {
      required(creds, 'aws', 'access_key_id', 'secret_access_key', 'session_token');
      if (!AWS_ACCESS_KEY_ID.test(creds.access_key_id)) {
        throw new Error('the bridge\'s aws credentials have an "access_key_id" that is not an access key id (16-128 word characters): refused, nothing exported');
      }
      const region = str(creds, 'aws', 'region', AWS_REGION);
      const expiration = str(creds, 'aws', 'expiration', RFC3339_FIELD);
      // The account of the mapping's role (a bridge older than account_id
      // sends none: then no aws-account-id output).
      const account = str(creds, 'aws', 'account_id', AWS_ACCOUNT_ID);
      const env = {
        AWS_ACCESS_KEY_ID: creds.access_key_id,
        AWS_SECRET_ACCESS_KEY: creds.secret_access_key,
        AWS_SESSION_TOKEN: creds.session_token,
      };
      if (region) {
        env.AWS_REGION = region;
        env.AWS_DEFAULT_REGION = region;
      }
      if (expiration) env.AWS_CREDENTIAL_EXPIRATION = utc(expiration);
      const secrets = [creds.access_key_id, creds.secret_access_key, creds.session_token];
      const outputs = {
        'access-key-id': creds.access_key_id,
        'secret-access-key': creds.secret_access_key,
        'session-token': creds.session_token,
        region,
        expiration,
      };
      if (account) {
        outputs['aws-account-id'] = account;
        if (opts.maskAccountId) secrets.push(account);
      }
      if (opts.outputCredentials) {
        outputs['aws-access-key-id'] = creds.access_key_id;
        outputs['aws-secret-access-key'] = creds.secret_access_key;
        outputs['aws-session-token'] = creds.session_token;
        outputs['aws-expiration'] = expiration;
      }
      return { secrets, outputs, env: common(env, meta), files: {} };
    }
    case 'gcp':
      if (creds.id_token !== undefined && creds.id_token !== null && creds.id_token !== '') {
        // token_format id_token: a Google ID token for the service it
        // names (Cloud Run, IAP), never offered to gcloud or Google's APIs.
        if (creds.access_token) {
          throw new Error('the bridge\'s gcp credentials hold both an "id_token" and an "access_token": refused, nothing exported');
        }
        required(creds, 'gcp', 'id_token');
        return {
          secrets: [creds.id_token],
          outputs: {
            'id-token': creds.id_token,
            'token-type': str(creds, 'gcp', 'token_type'),
            'service-account': str(creds, 'gcp', 'service_account'),
            audience: str(creds, 'gcp', 'audience'),
            expiration: str(creds, 'gcp', 'expires_at', RFC3339_FIELD),
          },
          env: common({ GOOGLE_ID_TOKEN: creds.id_token }, meta),
          files: {},
        };
      }
      required(creds, 'gcp', 'access_token');
      return {
        secrets: [creds.access_token],
        outputs: {
          'access-token': creds.access_token,
          'token-type': str(creds, 'gcp', 'token_type'),
          'service-account': str(creds, 'gcp', 'service_account'),
          expiration: str(creds, 'gcp', 'expires_at', RFC3339_FIELD),
        },
        // gcloud reads CLOUDSDK_AUTH_ACCESS_TOKEN; Google's Terraform
        // provider GOOGLE_OAUTH_ACCESS_TOKEN. The token file is an output
        // only (gcloud --access-token-file), as the CLI exports no file.
        env: common({
          CLOUDSDK_AUTH_ACCESS_TOKEN: creds.access_token,
          GOOGLE_OAUTH_ACCESS_TOKEN: creds.access_token,
        }, meta),
        files: {
          'gcp-access-token': { content: creds.access_token, output: 'access-token-file' },
        },
      };
    case 'azure':
      required(creds, 'azure', 'access_token');
      return {
        secrets: [creds.access_token],
        outputs: {
          'access-token': creds.access_token,
          'token-type': str(creds, 'azure', 'token_type'),
          'tenant-id': str(creds, 'azure', 'tenant_id'),
          'client-id': str(creds, 'azure', 'client_id'),
          scope: str(creds, 'azure', 'scope'),
          expiration: str(creds, 'azure', 'expires_at', RFC3339_FIELD),
        },
        // No Azure tool reads it: a bearer token for the caller to pass.
        env: common({ AZURE_ACCESS_TOKEN: creds.access_token }, meta),
        files: {},
      };
    case 'jwt': {
      required(creds, 'jwt', 'token');
      const p = {
        secrets: [creds.token],
        outputs: {
          token: creds.token,
          'token-type': str(creds, 'jwt', 'token_type'),
          audience: str(creds, 'jwt', 'audience'),
          expiration: str(creds, 'jwt', 'expires_at', RFC3339_FIELD),
        },
        env: common({ OIDC_BRIDGE_JWT: creds.token }, meta),
        files: {
          token: { content: creds.token, output: 'token-file' },
        },
      };
      if (opts.gcpFile) {
        // The file holds no secret: the CLI it names fetches the token.
        p.files['gcp-credentials.json'] = { content: externalAccount(opts.gcpFile), output: 'credentials-file-path', env: GCP_FILE_VARS };
        p.env.GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES = '1';
        if (opts.gcpFile.projectId) {
          p.outputs['project-id'] = opts.gcpFile.projectId;
          for (const v of GCP_PROJECT_VARS) p.env[v] = opts.gcpFile.projectId;
        }
      }
      return p;
    }
    case 'github': {
      required(creds, 'github', 'token');
      const apiURL = str(creds, 'github', 'api_url', HTTPS_URL);
      const serverURL = str(creds, 'github', 'server_url', HTTPS_URL);
      // The same variables as `oidc-bridge exchange --format env`: git
      // and the SDKs read GITHUB_TOKEN, gh GH_TOKEN, and for a GitHub
      // Enterprise Server GH_ENTERPRISE_TOKEN with GH_HOST.
      const env = { GITHUB_TOKEN: creds.token, GH_TOKEN: creds.token };
      const host = serverURL ? new URL(serverURL).host : '';
      if (host && host.toLowerCase() !== 'github.com') {
        env.GH_HOST = host;
        env.GH_ENTERPRISE_TOKEN = creds.token;
      }
      const repos = Array.isArray(creds.repositories)
        ? creds.repositories.filter((r) => typeof r === 'string' && /^[A-Za-z0-9._-]+\/[A-Za-z0-9._-]+$/.test(r)) : [];
      return {
        secrets: [creds.token],
        outputs: {
          token: creds.token,
          'token-type': str(creds, 'github', 'token_type'),
          expiration: str(creds, 'github', 'expires_at', RFC3339_FIELD),
          'github-api-url': apiURL,
          'github-server-url': serverURL,
          repositories: repos.join(','),
        },
        env: common(env, meta),
        // The post step reads the token from here to revoke it; git's
        // credential helper (git-credentials) too.
        files: {
          'github-token': { content: creds.token, output: 'token-file' },
        },
        serverURL: serverURL || 'https://github.com/',
      };
    }
    default:
      throw new Error('the bridge answered with a provider this action does not know');
  }
}

// gitConfigValue quotes a value for a git configuration file.
function gitConfigValue(v) {
  return `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

// gitCredentialConfig is git's configuration (an included file) that
// makes git answer the token file's token as x-access-token for the
// server's URL only: an empty helper first clears the helpers that other
// configuration lists for that URL, then a shell function that prints the
// user name and the token on git's pipe, never on stderr.
export function gitCredentialConfig(serverURL, tokenFile) {
  const url = serverURL.replace(/\/+$/, '');
  const quoted = `'${tokenFile.replace(/'/g, "'\\''")}'`;
  const helper = `!f() { test "$1" = get || exit 0; echo username=x-access-token; printf 'password=%s\\n' "$(cat ${quoted})"; }; f`;
  return `# Written by the oidc-bridge credentials action; its post step deletes it.\n[credential ${gitConfigValue(url)}]\n` +
    `\thelper =\n\thelper = ${gitConfigValue(helper)}\n`;
}

// outputKey is a mapping's prefix in the outputs of `mappings`: the name
// with each '.' as '_', and '_' before a leading digit, so that
// steps.ID.outputs.<key>-access-token is a valid expression (names are
// a-z, 0-9, '.', '_' and '-': MAPPING_NAME).
export function outputKey(mapping) {
  const k = mapping.replace(/\./g, '_');
  return /^[0-9]/.test(k) ? `_${k}` : k;
}

// awsProfiles renders aws mappings' planned variables ({name, env}) as an
// AWS config file ([profile NAME] with its region) and a shared
// credentials file ([NAME] with its keys): AWS_CONFIG_FILE and
// AWS_SHARED_CREDENTIALS_FILE, read by the AWS CLI and every SDK with
// --profile NAME / AWS_PROFILE. The values are checked by plan (no blank,
// newline or bracket), the names by MAPPING_NAME.
export function awsProfiles(list) {
  const head = '# written by the oidc-bridge credentials action: one profile per mapping; removed in its post step\n';
  let config = head;
  let credentials = head;
  for (const { name, env } of list) {
    config += `\n${name === 'default' ? '[default]' : `[profile ${name}]`}\n`;
    if (env.AWS_REGION) config += `region = ${env.AWS_REGION}\n`;
    credentials += `\n[${name}]\naws_access_key_id = ${env.AWS_ACCESS_KEY_ID}\n` +
      `aws_secret_access_key = ${env.AWS_SECRET_ACCESS_KEY}\naws_session_token = ${env.AWS_SESSION_TOKEN}\n`;
  }
  return { config, credentials };
}
