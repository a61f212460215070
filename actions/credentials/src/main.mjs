// oidc-bridge credentials action: exchange the job's GitHub Actions ID token
// at an oidc-bridge (POST /v1/exchange) for short-lived cloud credentials,
// mask them, and hand them to the job's later steps. The same file is the
// action's post step, which clears what the main step exported.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tls from 'node:tls';
import * as core from '@actions/core';
import { HttpClient } from '@actions/http-client';
import { BearerCredentialHandler } from '@actions/http-client/lib/auth';
import {
  ActionError, PERMISSION_HINT, backoffDelay, isRetryableStatus, parseRetryAfter,
} from './errors.mjs';
import { awsProfiles, gitCredentialConfig, outputKey, plan } from './credentials.mjs';
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

const NETWORK_HINT = 'check the runner\'s HTTPS_PROXY and NO_PROXY, and give a private CA with ca-file or NODE_EXTRA_CA_CERTS';

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
    gitCredentials: bool('git-credentials', false),
  };
  if (inp.gitCredentials) {
    if (inp.provider && inp.provider !== 'github') throw bad(`git-credentials needs a github mapping, but provider is "${inp.provider}"`);
    if (!process.env.RUNNER_TEMP) throw bad('git-credentials needs RUNNER_TEMP (the token and git\'s configuration are written only there)');
    inp.provider = 'github';
  }
  if (bool('gcp-credentials-file', false)) inp.gcpFile = gcpFileInputs(inp, bad);
  inp.mappings = mappingsInput(inp, bad);
  inp.ca = caInput(bad);
  return inp;
}

// mappingsInput reads `mappings`: one mapping name a line (blank lines and
// # comments skipped), each exchanged in turn with its own ID token. Not
// with `mapping` nor gcp-credentials-file; the files go under RUNNER_TEMP.
function mappingsInput(inp, bad) {
  const list = core.getMultilineInput('mappings').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  if (list.length === 0) return undefined;
  if (inp.mapping) throw bad('give `mapping` or `mappings`, not both');
  if (inp.gcpFile) throw bad('gcp-credentials-file takes one `mapping`, not `mappings`');
  if (inp.gitCredentials) throw bad('git-credentials takes one github `mapping`, not `mappings`');
  if (!process.env.RUNNER_TEMP) throw bad('`mappings` needs RUNNER_TEMP (the AWS profiles are written only there)');
  const keys = new Map();
  for (const m of list) {
    if (!MAPPING_NAME.test(m)) throw bad(`mappings: "${safeText(m, 80)}" is not a mapping name (a-z, 0-9, '.', '_', '-'; at most 64)`);
    const k = outputKey(m);
    if (keys.has(k)) throw bad(`mappings: "${m}" ${keys.get(k) === m ? 'is listed twice' : `and "${keys.get(k)}" would share the outputs ${k}-*`}`);
    keys.set(k, m);
  }
  return list;
}

// caInput reads `ca-file`: PEM certificates trusted besides Node's roots
// (and NODE_EXTRA_CA_CERTS) for the bridge and the ID-token request.
function caInput(bad) {
  const file = core.getInput('ca-file').trim();
  if (!file) return undefined;
  let pem;
  try {
    pem = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw bad(`ca-file ${file}: ${err.code || err.message}`);
  }
  if (!/-----BEGIN CERTIFICATE-----/.test(pem)) throw bad(`ca-file ${file} holds no PEM certificate`);
  const defaults = typeof tls.getCACertificates === 'function' ? tls.getCACertificates('default') : tls.rootCertificates;
  return [...defaults, pem];
}

// Client is @actions/http-client's HttpClient (which takes HTTPS_PROXY,
// HTTP_PROXY and NO_PROXY from the environment and tunnels through the
// proxy) with ca-file's certificates on every TLS connection it opens,
// direct or tunnelled: both agents pass their options to tls.connect.
class Client extends HttpClient {
  constructor(ca, ...args) {
    super(...args);
    this.ca = ca;
  }

  _getAgent(parsedUrl) {
    const agent = super._getAgent(parsedUrl);
    if (this.ca && parsedUrl.protocol === 'https:') agent.options = { ...agent.options, ca: this.ca };
    return agent;
  }
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

// idToken asks the Actions runtime for a fresh ID token for audience, as
// core.getIDToken does, but through the action's client (its proxy and
// ca-file), and masks the token as soon as it has it.
async function idToken(audience, ca) {
  for (const v of ['ACTIONS_ID_TOKEN_REQUEST_URL', 'ACTIONS_ID_TOKEN_REQUEST_TOKEN']) {
    if (!process.env[v]) {
      throw new ActionError('id_token_unavailable', `${v} is not set, so the job cannot get an ID token`, { hint: PERMISSION_HINT });
    }
  }
  const client = new Client(ca, USER_AGENT, [new BearerCredentialHandler(process.env.ACTIONS_ID_TOKEN_REQUEST_TOKEN)],
    { allowRetries: true, maxRetries: 10, allowRedirects: false, socketTimeout: ATTEMPT_TIMEOUT_MS });
  let token;
  try {
    const res = await client.getJson(`${process.env.ACTIONS_ID_TOKEN_REQUEST_URL}&audience=${encodeURIComponent(audience)}`);
    token = res.result && res.result.value;
  } catch (err) {
    // No HTTP status: the request never got an answer (DNS, proxy, TLS).
    const hint = err.statusCode === undefined ? NETWORK_HINT : PERMISSION_HINT;
    throw new ActionError('id_token_unavailable', `the runner gave no ID token: ${safeText(err.message, 300)}`, { hint });
  }
  if (typeof token !== 'string' || token === '') {
    throw new ActionError('id_token_unavailable', 'the runner gave no ID token: its answer has no value', { hint: PERMISSION_HINT });
  }
  core.setSecret(token);
  return token;
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
  const client = new Client(inp.ca, USER_AGENT, [], { allowRetries: false, allowRedirects: false, socketTimeout: ATTEMPT_TIMEOUT_MS });
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
    const token = await idToken(inp.audience, inp.ca);
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
  if (inp.gitCredentials && provider !== 'github') {
    throw new ActionError('invalid_response', `git-credentials needs a github mapping, but the bridge issued ${provider} credentials`);
  }
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
  if (provider === 'github' && exported.dir) {
    // The post step hands the token back (POST /v1/credentials/revoke).
    exported.revoke = { bridgeURL: inp.bridgeURL, tokenFile: path.join(exported.dir, 'github-token') };
  }
  if (inp.gitCredentials) configureGit(exported, p.serverURL);
  core.saveState(STATE_EXPORTED, JSON.stringify(exported));
  return Object.keys(inp.exportEnv ? p.env : {});
}

// configureGit writes git's configuration next to the token (under
// RUNNER_TEMP, never the workspace) and includes it through the job's
// environment (GIT_CONFIG_COUNT/KEY/VALUE, git 2.31 or later), after the
// entries the job already has there; the post step restores them.
function configureGit(exported, serverURL) {
  const file = path.join(exported.dir, 'gitconfig');
  fs.writeFileSync(file, gitCredentialConfig(serverURL, exported.revoke.tokenFile), { mode: 0o600, flag: 'wx' });
  const prior = process.env.GIT_CONFIG_COUNT || '';
  const n = /^\d{1,3}$/.test(prior) ? Number(prior) : 0;
  core.exportVariable(`GIT_CONFIG_KEY_${n}`, 'include.path');
  core.exportVariable(`GIT_CONFIG_VALUE_${n}`, file);
  core.exportVariable('GIT_CONFIG_COUNT', String(n + 1));
  exported.git = { prior, vars: [`GIT_CONFIG_KEY_${n}`, `GIT_CONFIG_VALUE_${n}`] };
  core.info(`oidc-bridge: git answers the token for ${serverURL} (configuration ${file})`);
}

// revoke hands a github token back at the end of the job. Best effort: a
// failure is a warning, never the job's failure; the token is never logged.
async function revoke(r) {
  let token;
  try {
    token = fs.readFileSync(r.tokenFile, 'utf8').trim();
  } catch {
    core.warning('oidc-bridge: the github token was not revoked: its file is gone');
    return;
  }
  core.setSecret(token);
  const client = new HttpClient(USER_AGENT, [], { allowRetries: false, allowRedirects: false, socketTimeout: ATTEMPT_TIMEOUT_MS });
  const url = `${r.bridgeURL}/v1/credentials/revoke`;
  for (let n = 1; ; n++) {
    let status;
    let text = '';
    try {
      const res = await client.request('POST', url, JSON.stringify({ token }), { 'content-type': 'application/json', accept: 'application/json' });
      status = res.message.statusCode;
      text = await readLimited(res.message, MAX_BODY_BYTES);
    } catch (err) {
      if (n < 3) { await sleep(backoffDelay(n)); continue; }
      core.warning(`oidc-bridge: the github token was not revoked (it expires on its own): could not reach the bridge: ${safeText(err.message, 200)}`);
      return;
    }
    if (status === 200) {
      let id = '';
      try {
        const b = JSON.parse(text);
        if (typeof b.credential_id === 'string' && /^[A-Za-z0-9._:-]{1,128}$/.test(b.credential_id)) id = ` ${b.credential_id}`;
      } catch { /* the revocation happened; its id is only for the log */ }
      core.info(`oidc-bridge: revoked the github token${id}`);
      return;
    }
    if (status >= 500 && status !== 502 && n < 3) { await sleep(backoffDelay(n)); continue; }
    const e = errorFromBody(status, text, url);
    core.warning(`oidc-bridge: the github token was not revoked (it expires on its own): ${e.describe()}`);
    return;
  }
}

// deliverMany masks every secret of every answer first, then writes the
// AWS profiles (config and credentials files in one folder under
// RUNNER_TEMP, mode 0600) and the other providers' outputs, each named
// <mapping>-<output> (outputKey), and their files.
function deliverMany(inp, answers) {
  const planned = answers.map(({ mapping, response }) => {
    if (inp.provider && response.provider !== inp.provider) {
      throw new ActionError('invalid_response', `mapping ${mapping} issued ${response.provider} credentials, not ${inp.provider}`);
    }
    return { mapping, response, p: plan(response.provider, response.credentials, { issuanceId: response.issuanceId, expiresAt: response.expiresAt }) };
  });
  for (const { p } of planned) for (const s of p.secrets) core.setSecret(s);

  const exported = { env: [], dir: fs.mkdtempSync(path.join(process.env.RUNNER_TEMP, 'oidc-bridge-')) };
  core.saveState(STATE_EXPORTED, JSON.stringify(exported));
  const write = (name, content) => {
    const file = path.join(exported.dir, name);
    fs.writeFileSync(file, content, { mode: 0o600, flag: 'wx' });
    return file;
  };
  const env = {};
  const aws = planned.filter(({ response }) => response.provider === 'aws').map(({ mapping, p }) => ({ name: mapping, env: p.env }));
  if (aws.length > 0) {
    const { config, credentials } = awsProfiles(aws);
    env.AWS_CONFIG_FILE = write('aws-config', config);
    env.AWS_SHARED_CREDENTIALS_FILE = write('aws-credentials', credentials);
    core.setOutput('aws-config-file', env.AWS_CONFIG_FILE);
    core.setOutput('aws-credentials-file', env.AWS_SHARED_CREDENTIALS_FILE);
  }
  for (const { mapping, response, p } of planned) {
    const k = outputKey(mapping);
    core.setOutput(`${k}-issuance-id`, response.issuanceId);
    core.setOutput(`${k}-expires-at`, response.expiresAt);
    core.setOutput(`${k}-provider`, String(response.provider));
    if (response.provider === 'aws') continue;
    for (const [name, f] of Object.entries(p.files)) p.outputs[f.output] = write(`${mapping}-${name}`, f.content);
    if (response.provider === 'github') {
      // The post step hands each github token back, as for one mapping.
      exported.revokes = [...(exported.revokes || []),
        { bridgeURL: inp.bridgeURL, tokenFile: path.join(exported.dir, `${mapping}-github-token`) }];
    }
    for (const [o, v] of Object.entries(p.outputs)) core.setOutput(`${k}-${o}`, v);
  }
  if (inp.exportEnv) {
    for (const [name, v] of Object.entries(env)) {
      core.exportVariable(name, v);
      exported.env.push(name);
    }
  }
  core.saveState(STATE_EXPORTED, JSON.stringify(exported));
  return exported.env;
}

// mainMany exchanges for each of `mappings` in turn, each exchange with ID
// tokens of its own (the bridge exchanges a token once), and delivers when
// all succeeded.
async function mainMany(inp) {
  const answers = [];
  for (const mapping of inp.mappings) {
    const { response, attempts } = await exchange({ ...inp, mapping });
    answers.push({ mapping, response });
    core.info(`oidc-bridge: issuance ${response.issuanceId}: ${response.provider} credentials of mapping ` +
      `${response.mapping}, expiring ${response.expiresAt}` + (attempts > 1 ? ` (attempt ${attempts})` : ''));
  }
  const names = deliverMany(inp, answers);
  if (names.length > 0) core.info(`oidc-bridge: exported ${names.join(', ')}`);
}

async function main() {
  core.saveState(STATE_POST, 'true');
  const inp = inputs();
  if (inp.mappings) {
    await mainMany(inp);
    return;
  }
  const { response, attempts } = await exchange(inp);
  const names = deliver(inp, response);
  // Only fields checked against their formats (checkExchange) reach the log.
  core.info(`oidc-bridge: issuance ${response.issuanceId}: ${response.provider} credentials of mapping ` +
    `${response.mapping}, expiring ${response.expiresAt}` + (attempts > 1 ? ` (attempt ${attempts})` : ''));
  if (names.length > 0) core.info(`oidc-bridge: exported ${names.join(', ')}`);
}

// post revokes a github token, clears the variables the main step exported
// (later post steps see them empty), restores git's configuration, and
// deletes the files it wrote under RUNNER_TEMP.
async function post() {
  let exported = { env: [], dir: '' };
  const state = core.getState(STATE_EXPORTED);
  if (state) {
    try {
      exported = JSON.parse(state);
    } catch {
      core.warning('oidc-bridge: unreadable state; nothing to clear');
    }
  }
  for (const r of [...(exported.revoke ? [exported.revoke] : []), ...(exported.revokes || [])]) await revoke(r);
  for (const name of exported.env || []) core.exportVariable(name, '');
  if (exported.git) {
    for (const name of exported.git.vars || []) core.exportVariable(name, '');
    core.exportVariable('GIT_CONFIG_COUNT', exported.git.prior || '');
  }
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
      await post();
    } else {
      await main();
    }
  } catch (err) {
    core.setFailed(err instanceof ActionError ? err.describe() : `oidc-bridge: ${safeText(err.message, 1000)}`);
  }
}

run();
