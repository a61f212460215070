// oidc-bridge credentials action: exchange the job's GitHub Actions ID token
// at an oidc-bridge (POST /v1/exchange) for short-lived cloud credentials,
// mask them, and hand them to the job's later steps. The same file is the
// action's post step, which clears what the main step exported.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as core from '@actions/core';
import { HttpClient } from '@actions/http-client';
import {
  ActionError, PERMISSION_HINT, backoffDelay, isRetryableStatus, parseRetryAfter,
} from './errors.mjs';
import { plan } from './credentials.mjs';
import {
  BodyTooLarge, MAPPING_NAME, MAX_BODY_BYTES, PROVIDERS, checkExchange, errorFromBody, readLimited,
} from './response.mjs';
import { safeText } from './text.mjs';

const VERSION = '1.0.0';
const USER_AGENT = `oidc-bridge-credentials-action/${VERSION}`;
const DEFAULT_RETRIES = 4;
const MAX_RETRIES = 10;
const ATTEMPT_TIMEOUT_MS = 30_000;
// The longest single wait (a Retry-After beyond it is not waited for: a
// spent per-job quota does not free during the job) and the longest the
// retries may take in all.
const MAX_WAIT_MS = 60_000;
const MAX_TOTAL_MS = 5 * 60_000;

const STATE_POST = 'isPost';
const STATE_EXPORTED = 'exported';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// inputs reads and checks the action's inputs before anything is requested.
function inputs() {
  const bad = (msg) => new ActionError('invalid_input', msg, { hint: 'fix the step\'s `with:` inputs' });
  const raw = core.getInput('bridge-url', { required: true }).trim();
  let url;
  try {
    url = new URL(raw);
  } catch {
    throw bad(`bridge-url "${raw}" is not a URL`);
  }
  const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    throw bad(`bridge-url must be https:// (plain http only on a loopback address), not ${url.protocol}//`);
  }
  if (url.search || url.hash || url.username || url.password) {
    throw bad('bridge-url must not carry a query, fragment or user info');
  }
  const bridgeURL = url.href.replace(/\/+$/, '');
  const audience = core.getInput('audience').trim() || bridgeURL;
  const mapping = core.getInput('mapping').trim();
  const provider = core.getInput('provider').trim().toLowerCase();
  if (provider && !PROVIDERS.includes(provider)) {
    throw bad(`provider must be one of ${PROVIDERS.join(', ')}, not "${provider}"`);
  }
  let durationSeconds;
  const d = core.getInput('duration-seconds').trim();
  if (d) {
    if (!/^\d+$/.test(d) || Number(d) <= 0) throw bad(`duration-seconds must be a positive whole number, not "${d}"`);
    durationSeconds = Number(d);
  }
  // Narrowing: sent as given; the bridge refuses anything wider than the
  // mapping (invalid_request on the field).
  const sessionPolicy = core.getInput('session-policy').trim();
  if (sessionPolicy) {
    try {
      JSON.parse(sessionPolicy);
    } catch {
      throw bad('session-policy must be a JSON policy document');
    }
  }
  const scopes = core.getInput('scopes').split(/[\s,]+/).filter(Boolean);
  let retries = DEFAULT_RETRIES;
  const r = core.getInput('retries').trim();
  if (r) {
    if (!/^\d+$/.test(r) || Number(r) > MAX_RETRIES) throw bad(`retries must be a whole number from 0 to ${MAX_RETRIES}, not "${r}"`);
    retries = Number(r);
  }
  const bool = (name, dflt) => {
    const v = core.getInput(name).trim().toLowerCase();
    if (v && !['true', 'false'].includes(v)) throw bad(`${name} must be true or false, not "${v}"`);
    return v ? v === 'true' : dflt;
  };
  const inp = {
    bridgeURL, audience, mapping, provider, durationSeconds, retries, sessionPolicy, scopes,
    exportEnv: bool('export-env', true),
    outputCredentials: bool('output-credentials', false),
    maskAccountId: bool('mask-aws-account-id', false),
  };
  if (bool('gcp-credentials-file', false)) inp.gcpFile = gcpFileInputs(inp, bad);
  return inp;
}

// Google's forms: a workload identity pool provider's resource name, a
// service account's email, a project id (optionally domain-scoped).
const WIF_PROVIDER = /^projects\/\d{1,20}\/locations\/global\/workloadIdentityPools\/[a-z0-9-]{4,32}\/providers\/[a-z0-9-]{4,32}$/;
const SERVICE_ACCOUNT = /^[a-z0-9-]{6,30}@[a-z0-9.-]{1,253}$/;
const PROJECT_ID = /^(?:[a-z0-9.-]{1,63}:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$/;
// A command word: Google splits the command on blanks and runs it without
// a shell, so no blank, quote or shell character.
const COMMAND_WORD = /^[A-Za-z0-9_@%+=:,./~-]+$/;

// gcpFileInputs checks the inputs of gcp-credentials-file mode: the jwt
// mapping (named: the CLI must ask for that one), the workload identity
// provider, the optional service account and project, and the CLI's path.
function gcpFileInputs(inp, bad) {
  if (!inp.mapping) throw bad('gcp-credentials-file needs `mapping`: the jwt mapping whose audience is the workload identity pool provider\'s allowed audience');
  if (inp.provider && inp.provider !== 'jwt') {
    throw bad(`gcp-credentials-file needs a jwt mapping, but provider is "${inp.provider}"`);
  }
  if (!process.env.RUNNER_TEMP) throw bad('gcp-credentials-file needs RUNNER_TEMP (the file is written only there)');
  const wip = core.getInput('workload-identity-provider').trim();
  if (!WIF_PROVIDER.test(wip)) {
    throw bad('workload-identity-provider must be projects/NUMBER/locations/global/workloadIdentityPools/POOL/providers/PROVIDER' +
      (wip ? '' : ' (it is required with gcp-credentials-file)'));
  }
  const serviceAccount = core.getInput('service-account').trim();
  if (serviceAccount && !SERVICE_ACCOUNT.test(serviceAccount)) throw bad('service-account must be a service account\'s email');
  let projectId = core.getInput('project-id').trim();
  if (projectId && !PROJECT_ID.test(projectId)) throw bad('project-id must be a Google Cloud project id');
  // As google-github-actions/auth: the project of the service account.
  const m = serviceAccount.match(/@([a-z][a-z0-9-]{4,28}[a-z0-9])\.iam\.gserviceaccount\.com$/);
  if (!projectId && m) projectId = m[1];
  const cli = core.getInput('oidc-bridge-command').trim() || 'oidc-bridge';
  if (!COMMAND_WORD.test(cli)) throw bad('oidc-bridge-command must be one path without blanks or shell characters');
  if (!COMMAND_WORD.test(inp.bridgeURL) || !MAPPING_NAME.test(inp.mapping)) {
    throw bad('bridge-url and mapping must have no blanks or shell characters with gcp-credentials-file (they go into the executable\'s command)');
  }
  const words = [cli, 'exchange', '--bridge-url', inp.bridgeURL, '--mapping', inp.mapping];
  if (inp.audience !== inp.bridgeURL) {
    if (!COMMAND_WORD.test(inp.audience)) throw bad('audience must have no blanks or shell characters with gcp-credentials-file (it goes into the executable\'s command)');
    words.push('--audience', inp.audience);
  }
  words.push('--format', 'gcp-executable');
  inp.provider = 'jwt';
  return { workloadIdentityProvider: wip, serviceAccount, projectId, command: words.join(' ') };
}

// idToken asks the Actions runtime for a fresh ID token for audience.
// @actions/core masks the token as soon as it has it.
async function idToken(audience) {
  for (const v of ['ACTIONS_ID_TOKEN_REQUEST_URL', 'ACTIONS_ID_TOKEN_REQUEST_TOKEN']) {
    if (!process.env[v]) {
      throw new ActionError('id_token_unavailable', `${v} is not set, so the job cannot get an ID token`, { hint: PERMISSION_HINT });
    }
  }
  try {
    return await core.getIDToken(audience);
  } catch (err) {
    throw new ActionError('id_token_unavailable', `the runner gave no ID token: ${err.message}`, { hint: PERMISSION_HINT });
  }
}

// attempt is one POST /v1/exchange. It resolves to {response} on 200 and
// {error, retryable, retryAfterMs} otherwise.
async function attempt(client, url, token, body) {
  let res;
  try {
    res = await client.request('POST', url, body, {
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
      accept: 'application/json',
    });
  } catch (err) {
    return { error: new ActionError('network_error', `could not reach the bridge at ${url}: ${err.message}`,
      { hint: 'check bridge-url and that the runner can reach the bridge' }), retryable: true };
  }
  const status = res.message.statusCode;
  let text;
  try {
    // At most MAX_BODY_BYTES, read through the limit: a bigger answer is
    // refused, not buffered.
    text = await readLimited(res.message, MAX_BODY_BYTES);
  } catch (err) {
    if (err instanceof BodyTooLarge) {
      return { error: new ActionError('invalid_response', `the bridge's answer (HTTP ${status}) is larger than ${MAX_BODY_BYTES} bytes: refused unread`,
        { status, hint: 'the bridge-url must be an oidc-bridge; ask its admins' }) };
    }
    return { error: new ActionError('network_error', `reading the bridge's answer failed: ${err.message}`), retryable: true };
  }
  if (status === 200) {
    let response;
    try {
      response = JSON.parse(text);
    } catch {
      // Never print a 200 body: it would hold the credentials.
      return { error: new ActionError('invalid_response', 'the bridge answered 200 with a body that is not JSON', { status }) };
    }
    try {
      return { response: checkExchange(response) };
    } catch (err) {
      return { error: err };
    }
  }
  const error = errorFromBody(status, text, url);
  const retryAfterMs = parseRetryAfter(res.message.headers['retry-after']);
  return { error, retryable: isRetryableStatus(status, retryAfterMs), retryAfterMs };
}

// exchange runs the attempts: a fresh ID token for each (a GitHub token
// lives five minutes and must not outlive the retries), jittered
// exponential backoff that honours Retry-After, and no retry of a decision.
async function exchange(inp) {
  const client = new HttpClient(USER_AGENT, [], { allowRetries: false, allowRedirects: false, socketTimeout: ATTEMPT_TIMEOUT_MS });
  const url = `${inp.bridgeURL}/v1/exchange`;
  const body = JSON.stringify({
    ...(inp.mapping && { mapping: inp.mapping }),
    ...(inp.provider && { provider: inp.provider }),
    ...(inp.durationSeconds && { duration_seconds: inp.durationSeconds }),
    ...(inp.sessionPolicy && { session_policy: inp.sessionPolicy }),
    ...(inp.scopes?.length && { scopes: inp.scopes }),
  });
  const deadline = Date.now() + MAX_TOTAL_MS;
  for (let n = 1; ; n++) {
    const token = await idToken(inp.audience);
    core.debug(`attempt ${n}: POST ${url} ${body}`);
    const r = await attempt(client, url, token, body);
    if (r.response) return { response: r.response, attempts: n };
    r.error.attempts = n;
    if (!r.retryable || n > inp.retries) throw r.error;
    const wait = backoffDelay(n, { retryAfterMs: r.retryAfterMs });
    if (r.retryAfterMs !== undefined && r.retryAfterMs > MAX_WAIT_MS) {
      r.error.message += ` (the bridge says to retry in ${Math.ceil(r.retryAfterMs / 1000)}s, longer than this action waits)`;
      throw r.error;
    }
    if (Date.now() + wait > deadline) throw r.error;
    core.warning(`attempt ${n} of ${inp.retries + 1}: ${r.error.describe()}; retrying in ${(wait / 1000).toFixed(1)}s with a fresh ID token`);
    await sleep(wait);
  }
}

// deliver masks every secret first, then writes files, outputs and
// environment, and records in the state what the post step must clear.
function deliver(inp, response) {
  const { provider, credentials } = response;
  // plan refuses a credential that could break its mask (a newline) before
  // anything is masked or written.
  if (inp.gcpFile && provider !== 'jwt') {
    throw new ActionError('invalid_response', `gcp-credentials-file needs a jwt mapping, but the bridge issued ${provider} credentials`);
  }
  const p = plan(provider, credentials, { ...inp, issuanceId: response.issuanceId, expiresAt: response.expiresAt });
  for (const s of p.secrets) core.setSecret(s);

  const exported = { env: [], dir: '' };
  // Saved before anything is written, so the post step finds the folder
  // even if a later write fails.
  const files = Object.entries(p.files);
  if (files.length > 0) {
    const temp = process.env.RUNNER_TEMP;
    if (!temp) {
      core.warning('RUNNER_TEMP is not set: no credential files written (this action writes files only there)');
    } else {
      exported.dir = fs.mkdtempSync(path.join(temp, 'oidc-bridge-'));
      core.saveState(STATE_EXPORTED, JSON.stringify(exported));
      for (const [name, f] of files) {
        const file = path.join(exported.dir, name);
        fs.writeFileSync(file, f.content, { mode: 0o600, flag: 'wx' });
        p.outputs[f.output] = file;
        for (const e of [].concat(f.env || [])) p.env[e] = file;
      }
    }
  }

  core.setOutput('issuance-id', response.issuanceId);
  core.setOutput('expires-at', response.expiresAt);
  core.setOutput('mapping', response.mapping);
  core.setOutput('provider', String(provider));
  for (const [k, v] of Object.entries(p.outputs)) core.setOutput(k, v);

  if (inp.exportEnv) {
    for (const [k, v] of Object.entries(p.env)) {
      core.exportVariable(k, v);
      exported.env.push(k);
    }
  }
  core.saveState(STATE_EXPORTED, JSON.stringify(exported));
  return Object.keys(inp.exportEnv ? p.env : {});
}

async function main() {
  core.saveState(STATE_POST, 'true');
  const inp = inputs();
  const { response, attempts } = await exchange(inp);
  const names = deliver(inp, response);
  // Only fields checked against their formats (checkExchange) reach the log.
  core.info(`oidc-bridge: issuance ${response.issuanceId}: ${response.provider} credentials of mapping ` +
    `${response.mapping}, expiring ${response.expiresAt}` + (attempts > 1 ? ` (attempt ${attempts})` : ''));
  if (names.length > 0) core.info(`oidc-bridge: exported ${names.join(', ')}`);
}

// post clears the variables the main step exported (later post steps see
// them empty) and deletes the files it wrote under RUNNER_TEMP.
function post() {
  let exported = { env: [], dir: '' };
  const state = core.getState(STATE_EXPORTED);
  if (state) {
    try {
      exported = JSON.parse(state);
    } catch {
      core.warning('oidc-bridge: unreadable state; nothing to clear');
    }
  }
  for (const name of exported.env || []) core.exportVariable(name, '');
  const temp = process.env.RUNNER_TEMP;
  const dir = exported.dir;
  if (dir && temp && path.dirname(path.resolve(dir)) === path.resolve(temp) && path.basename(dir).startsWith('oidc-bridge-')) {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  if ((exported.env || []).length > 0 || dir) {
    core.info(`oidc-bridge: cleared ${[...(exported.env || []), ...(dir ? [dir] : [])].join(', ')}`);
  }
}

async function run() {
  try {
    if (core.getState(STATE_POST) === 'true') {
      post();
    } else {
      await main();
    }
  } catch (err) {
    core.setFailed(err instanceof ActionError ? err.describe() : `oidc-bridge: ${safeText(err.message, 1000)}`);
  }
}

run();
