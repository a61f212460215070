// The bundled action (dist/index.js) on a simulated runner against a real
// oidc-bridge. Run by the Go test TestAction (test/e2e/action_test.go),
// which provides the bridge, the ID-token stand-in, the bridge front that
// injects failures, and the STS endpoint.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import {
  frontStats, frontURL, maskProblem, need, newRunner, run, runStep,
} from './runner.mjs';

const bridge = need('OIDC_BRIDGE_TEST_BRIDGE_URL');
const stsEndpoint = need('OIDC_BRIDGE_TEST_STS_ENDPOINT');

// The variables each provider's credentials set (the CLI sets the same for
// the GitLab templates): actions/exported-variables.json.
const EXPORTED = JSON.parse(fs.readFileSync(new URL('../../exported-variables.json', import.meta.url), 'utf8'));
const AWS_VARS = EXPORTED.aws;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

// errorLine is the ::error:: line a failed step printed.
function errorLine(r) {
  return r.stdout.split('\n').find((l) => l.startsWith('::error::')) || '';
}

// callerIdentity runs GetCallerIdentity with the AWS SDK for JavaScript in
// a fresh process whose environment is what a later step of the job gets.
function callerIdentity(exported) {
  const script = `
    import { STSClient, GetCallerIdentityCommand } from '@aws-sdk/client-sts';
    try {
      const r = await new STSClient({}).send(new GetCallerIdentityCommand({}));
      console.log(JSON.stringify({ account: r.Account, arn: r.Arn, userId: r.UserId }));
    } catch (e) {
      console.log(JSON.stringify({ error: e.name, message: e.message }));
    }`;
  return run(['--input-type=module', '-e', script], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      ...exported,
      AWS_ENDPOINT_URL_STS: stsEndpoint,
      AWS_CONFIG_FILE: '/dev/null',
      AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
      AWS_EC2_METADATA_DISABLED: 'true',
    },
  });
}

describe('aws', () => {
  const runner = newRunner();
  let main;
  before(async () => {
    main = await runStep(runner, { inputs: { 'bridge-url': bridge, mapping: 'web-aws', 'duration-seconds': '900' } });
  });
  after(() => runner.cleanup());

  test('the step succeeds in one attempt with the default audience (the bridge URL)', () => {
    assert.equal(main.code, 0, main.stdout + main.stderr);
    assert.doesNotMatch(main.stdout, /::warning::/);
  });

  test('GITHUB_ENV has the AWS variables', () => {
    assert.deepEqual(Object.keys(main.env).sort(), [...AWS_VARS].sort());
    assert.match(main.env.AWS_ACCESS_KEY_ID, /^ASIA[A-Z0-9]{16,}$/);
    assert.ok(main.env.AWS_SECRET_ACCESS_KEY.length >= 30);
    assert.ok(main.env.AWS_SESSION_TOKEN.length >= 100);
    assert.equal(main.env.AWS_REGION, 'eu-west-1');
    assert.equal(main.env.AWS_DEFAULT_REGION, 'eu-west-1');
  });

  test('GITHUB_OUTPUT has issuance-id, expires-at and the credential fields', () => {
    const o = main.outputs;
    assert.match(o['issuance-id'], UUID);
    const ttl = Date.parse(o['expires-at']) - Date.now();
    assert.ok(ttl > 14 * 60e3 && ttl <= 15 * 60e3 + 5e3, `expires-at ${o['expires-at']} is not 15 minutes away`);
    assert.equal(o.mapping, 'web-aws');
    assert.equal(o.provider, 'aws');
    assert.equal(o['access-key-id'], main.env.AWS_ACCESS_KEY_ID);
    assert.equal(o['secret-access-key'], main.env.AWS_SECRET_ACCESS_KEY);
    assert.equal(o['session-token'], main.env.AWS_SESSION_TOKEN);
    assert.equal(o.region, 'eu-west-1');
    assert.equal(Date.parse(o.expiration), Date.parse(o['expires-at']));
  });

  test('aws-account-id (configure-aws-credentials\' name) is the role ARN\'s account, not masked by default; the aws-* secret outputs only on request', () => {
    assert.equal(main.outputs['aws-account-id'], '123456789012');
    assert.equal(main.stdout.split('\n').includes('::add-mask::123456789012'), false);
    for (const k of ['aws-access-key-id', 'aws-secret-access-key', 'aws-session-token', 'aws-expiration']) {
      assert.equal(k in main.outputs, false, `${k} without output-credentials`);
    }
  });

  test('all three AWS secrets, and the ID token, are masked before anything prints them', () => {
    const secrets = [main.env.AWS_ACCESS_KEY_ID, main.env.AWS_SECRET_ACCESS_KEY, main.env.AWS_SESSION_TOKEN];
    assert.equal(maskProblem(main, secrets), '');
    const idTokenMask = main.stdout.split('\n').find((l) => l.startsWith('::add-mask::eyJ'));
    assert.ok(idTokenMask, 'the ID token was not masked');
    // The log says what happened without any value.
    assert.match(main.stdout, new RegExp(`issuance ${main.outputs['issuance-id']}: aws credentials of mapping web-aws`));
    assert.match(main.stdout, new RegExp(`exported ${AWS_VARS.join(', ')}`));
    assert.equal(main.env.OIDC_BRIDGE_ISSUANCE_ID, main.outputs['issuance-id']);
  });

  test('the exported credentials work: GetCallerIdentity with the AWS SDK, SigV4-signed', async () => {
    const r = await callerIdentity(main.env);
    assert.equal(r.code, 0, r.stderr);
    const id = JSON.parse(r.stdout);
    assert.equal(id.error, undefined, `${id.error}: ${id.message}`);
    assert.equal(id.account, '111122223333');
    assert.match(id.arn, /^arn:aws:iam::111122223333:/);
    // ... and a wrong secret is refused, so the signature was checked.
    const bad = await callerIdentity({ ...main.env, AWS_SECRET_ACCESS_KEY: `x${main.env.AWS_SECRET_ACCESS_KEY.slice(1)}` });
    assert.equal(JSON.parse(bad.stdout).error, 'SignatureDoesNotMatch');
  });

  test('nothing is written to the workspace, and no file for AWS', () => {
    assert.equal(fs.existsSync(path.join(runner.temp, '_workspace_must_stay_empty')), false);
    assert.deepEqual(fs.readdirSync(runner.temp).filter((f) => f.startsWith('oidc-bridge-')), []);
  });

  test('the post step clears the variables', async () => {
    const post = await runStep(runner, { inputs: { 'bridge-url': bridge, mapping: 'web-aws' }, state: main.state });
    assert.equal(post.code, 0, post.stdout + post.stderr);
    assert.deepEqual(post.env, Object.fromEntries(AWS_VARS.map((v) => [v, ''])));
    assert.deepEqual(post.outputs, {});
    assert.match(post.stdout, /cleared AWS_ACCESS_KEY_ID/);
  });
});

test('export-env false: outputs only, nothing exported', async (t) => {
  const runner = newRunner();
  t.after(() => runner.cleanup());
  const r = await runStep(runner, { inputs: { 'bridge-url': bridge, mapping: 'web-aws', 'export-env': 'false' } });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.deepEqual(r.env, {});
  assert.match(r.outputs['access-key-id'], /^ASIA/);
  assert.equal(maskProblem(r, [r.outputs['access-key-id'], r.outputs['secret-access-key'], r.outputs['session-token']]), '');
  const post = await runStep(runner, { inputs: { 'bridge-url': bridge }, state: r.state });
  assert.equal(post.code, 0);
  assert.deepEqual(post.env, {});
});

test('output-credentials and mask-aws-account-id: configure-aws-credentials\' secret outputs, masked, and the account id masked', async (t) => {
  const runner = newRunner();
  t.after(() => runner.cleanup());
  const r = await runStep(runner, {
    inputs: { 'bridge-url': bridge, mapping: 'web-aws', 'output-credentials': 'true', 'mask-aws-account-id': 'true' },
  });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const o = r.outputs;
  assert.match(o['aws-access-key-id'], /^ASIA/);
  assert.equal(o['aws-access-key-id'], r.env.AWS_ACCESS_KEY_ID);
  assert.equal(o['aws-secret-access-key'], r.env.AWS_SECRET_ACCESS_KEY);
  assert.equal(o['aws-session-token'], r.env.AWS_SESSION_TOKEN);
  assert.equal(o['aws-expiration'], o.expiration);
  assert.equal(o['aws-account-id'], '123456789012');
  assert.equal(maskProblem(r, [o['aws-access-key-id'], o['aws-secret-access-key'], o['aws-session-token'], o['aws-account-id']]), '');
  // The same options spelled wrong fail before any request.
  const bad = await runStep(runner, { inputs: { 'bridge-url': frontURL('boolinputs', 'ok'), 'output-credentials': 'yes' } });
  assert.equal(bad.code, 1);
  assert.match(errorLine(bad), /invalid_input: output-credentials must be true or false/);
  assert.equal((await frontStats('boolinputs')).requests, 0);
});

// runExecutable runs a credential file's executable source as Google's
// libraries do: the command split on blanks, no shell, the job's
// environment plus Google's GOOGLE_EXTERNAL_ACCOUNT_* variables.
function runExecutable(command, env) {
  const [file, ...args] = command.split(' ');
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const WIF = 'projects/123456789/locations/global/workloadIdentityPools/oidc-bridge/providers/bridge';
const GCP_FILE_VARS = ['GOOGLE_APPLICATION_CREDENTIALS', 'CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE', 'GOOGLE_GHA_CREDS_PATH'];
const GCP_PROJECT_VARS = ['CLOUDSDK_CORE_PROJECT', 'CLOUDSDK_PROJECT', 'GCLOUD_PROJECT', 'GCP_PROJECT', 'GOOGLE_CLOUD_PROJECT'];

test('gcp-credentials-file: an external account file (0600, RUNNER_TEMP) whose executable is the CLI, the ADC variables, the project; the post step removes it', async (t) => {
  const runner = newRunner();
  t.after(() => runner.cleanup());
  const cli = need('OIDC_BRIDGE_TEST_CLI');
  const r = await runStep(runner, {
    inputs: {
      'bridge-url': bridge, mapping: 'web-gcp-wif', 'gcp-credentials-file': 'true', 'workload-identity-provider': WIF,
      'service-account': 'deploy@acme-prod.iam.gserviceaccount.com', 'oidc-bridge-command': cli,
    },
  });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(r.outputs.provider, 'jwt');
  const file = r.outputs['credentials-file-path'];
  assert.equal(path.dirname(path.dirname(file)), runner.temp, `${file} is not in RUNNER_TEMP`);
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  for (const v of GCP_FILE_VARS) assert.equal(r.env[v], file, v);
  assert.equal(r.env.GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES, '1');
  // The project, from the service account's email as google-github-actions/auth does.
  assert.equal(r.outputs['project-id'], 'acme-prod');
  for (const v of GCP_PROJECT_VARS) assert.equal(r.env[v], 'acme-prod', v);
  const command = `${cli} exchange --bridge-url ${bridge} --mapping web-gcp-wif --format gcp-executable`;
  assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')), {
    type: 'external_account',
    audience: `//iam.googleapis.com/${WIF}`,
    subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
    token_url: 'https://sts.googleapis.com/v1/token',
    service_account_impersonation_url: 'https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/deploy@acme-prod.iam.gserviceaccount.com:generateAccessToken',
    credential_source: { executable: { command, timeout_millis: 120000 } },
  });
  // The file holds no token; the step's own token is masked.
  assert.equal(fs.readFileSync(file, 'utf8').includes(r.outputs.token), false);
  assert.equal(maskProblem(r, [r.outputs.token]), '');

  // The executable works as a Google library runs it in a later step: a
  // fresh ID token of the job exchanged for the jwt mapping's token.
  const x = await runExecutable(command, {
    PATH: process.env.PATH,
    HOME: runner.temp,
    RUNNER_TEMP: runner.temp,
    ACTIONS_ID_TOKEN_REQUEST_URL: need('OIDC_BRIDGE_TEST_ID_TOKEN_URL'),
    ACTIONS_ID_TOKEN_REQUEST_TOKEN: need('OIDC_BRIDGE_TEST_ID_TOKEN_REQUEST_TOKEN'),
    GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE: `//iam.googleapis.com/${WIF}`,
    GOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE: 'urn:ietf:params:oauth:token-type:jwt',
    GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE: '0',
  });
  assert.equal(x.code, 0, x.stdout + x.stderr);
  const resp = JSON.parse(x.stdout);
  assert.equal(resp.success, true, x.stdout);
  assert.equal(resp.token_type, 'urn:ietf:params:oauth:token-type:jwt');
  const claims = JSON.parse(Buffer.from(resp.id_token.split('.')[1], 'base64url').toString());
  assert.equal(claims.aud, 'https://bridge.example.com/google/acme-prod');

  const post = await runStep(runner, { inputs: { 'bridge-url': bridge }, state: r.state });
  assert.equal(post.code, 0, post.stdout + post.stderr);
  for (const v of [...GCP_FILE_VARS, ...GCP_PROJECT_VARS, 'GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES']) assert.equal(post.env[v], '', v);
  assert.equal(fs.existsSync(file), false, 'the post step left the credentials file');
});

test('gcp-credentials-file off: no file, no Google variables; bad settings fail before any request', async (t) => {
  const runner = newRunner();
  t.after(() => runner.cleanup());
  const r = await runStep(runner, { inputs: { 'bridge-url': bridge, mapping: 'web-gcp-wif' } });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal('credentials-file-path' in r.outputs, false);
  // The jwt mapping's own variables (actions/exported-variables.json), no Google one.
  assert.deepEqual(Object.keys(r.env).sort(), ['OIDC_BRIDGE_EXPIRES_AT', 'OIDC_BRIDGE_ISSUANCE_ID', 'OIDC_BRIDGE_JWT']);
  const url = frontURL('gcpinputs', 'ok');
  for (const [inputs, want] of [
    [{ 'workload-identity-provider': WIF }, /gcp-credentials-file needs `mapping`/],
    [{ mapping: 'web-gcp-wif' }, /workload-identity-provider must be projects\/NUMBER\/.*required with gcp-credentials-file/],
    [{ mapping: 'web-gcp-wif', 'workload-identity-provider': 'pool' }, /workload-identity-provider must be/],
    [{ mapping: 'web-gcp-wif', 'workload-identity-provider': WIF, provider: 'gcp' }, /needs a jwt mapping/],
    [{ mapping: 'web-gcp-wif', 'workload-identity-provider': WIF, 'service-account': 'me' }, /service-account must be/],
    [{ mapping: 'web-gcp-wif', 'workload-identity-provider': WIF, 'oidc-bridge-command': 'oidc-bridge; rm -rf ~' }, /oidc-bridge-command must be one path/],
    [{ mapping: 'web-gcp-wif', 'workload-identity-provider': WIF, audience: 'a b' }, /audience must have no blanks/],
  ]) {
    const bad = await runStep(runner, { inputs: { 'bridge-url': url, 'gcp-credentials-file': 'true', ...inputs } });
    assert.equal(bad.code, 1, JSON.stringify(inputs));
    assert.match(errorLine(bad), want);
  }
  assert.equal((await frontStats('gcpinputs')).requests, 0);
  // A mapping of another provider is refused by the bridge (the request
  // names provider jwt), nothing written.
  const fresh = newRunner();
  t.after(() => fresh.cleanup());
  const other = await runStep(fresh, {
    inputs: { 'bridge-url': bridge, mapping: 'web-gcp', 'gcp-credentials-file': 'true', 'workload-identity-provider': WIF },
  });
  assert.equal(other.code, 1);
  assert.match(errorLine(other), /HTTP 4\d\d/);
  assert.deepEqual(other.env, {});
  assert.deepEqual(fs.readdirSync(fresh.temp).filter((f) => f.startsWith('oidc-bridge-')), []);
});

test('gcp: access token output, CLOUDSDK_AUTH_ACCESS_TOKEN, GOOGLE_OAUTH_ACCESS_TOKEN and a token file under RUNNER_TEMP', async (t) => {
  const runner = newRunner();
  t.after(() => runner.cleanup());
  const r = await runStep(runner, { inputs: { 'bridge-url': bridge, mapping: 'web-gcp' } });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const token = r.outputs['access-token'];
  assert.ok(token && token.length > 20);
  assert.equal(r.outputs.provider, 'gcp');
  assert.equal(r.outputs['service-account'], need('OIDC_BRIDGE_TEST_DEPLOY_SA'));
  assert.match(r.outputs['issuance-id'], UUID);
  assert.equal(maskProblem(r, [token]), '');
  assert.equal(r.env.CLOUDSDK_AUTH_ACCESS_TOKEN, token);
  assert.equal(r.env.GOOGLE_OAUTH_ACCESS_TOKEN, token);
  assert.deepEqual(Object.keys(r.env), EXPORTED.gcp);
  const file = r.outputs['access-token-file'];
  assert.equal(path.dirname(path.dirname(file)), runner.temp, `${file} is not in RUNNER_TEMP`);
  assert.equal(fs.readFileSync(file, 'utf8'), token);
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);

  const post = await runStep(runner, { inputs: { 'bridge-url': bridge }, state: r.state });
  assert.equal(post.code, 0, post.stdout + post.stderr);
  assert.deepEqual(post.env, Object.fromEntries(EXPORTED.gcp.map((v) => [v, ''])));
  assert.equal(fs.existsSync(path.dirname(file)), false, 'the post step left the token file');
});

test('gcp id_token: the ID token as the id-token output and GOOGLE_ID_TOKEN, masked, signed by Google (the fake) for the audience', async (t) => {
  const runner = newRunner();
  t.after(() => runner.cleanup());
  const r = await runStep(runner, { inputs: { 'bridge-url': bridge, mapping: 'web-gcp-id' } });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const token = r.outputs['id-token'];
  assert.ok(token && token.split('.').length === 3, 'id-token is not a JWT');
  assert.equal(r.outputs['access-token'], undefined);
  assert.equal(r.outputs.provider, 'gcp');
  assert.equal(r.outputs.audience, 'https://hello-abc123-ew.a.run.app');
  assert.equal(maskProblem(r, [token]), '');
  assert.equal(r.env.GOOGLE_ID_TOKEN, token);
  assert.deepEqual(Object.keys(r.env), EXPORTED.gcp_id_token);

  // The token verifies with Google's keys and names the audience and the
  // service account's e-mail (include_email).
  const [h, p, sig] = token.split('.');
  const header = JSON.parse(Buffer.from(h, 'base64url').toString());
  const jwks = await (await fetch(need('OIDC_BRIDGE_TEST_GOOGLE_CERTS_URL'))).json();
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  assert.ok(jwk, `no key ${header.kid}`);
  const crypto = await import('node:crypto');
  assert.ok(crypto.verify('RSA-SHA256', Buffer.from(`${h}.${p}`), crypto.createPublicKey({ key: jwk, format: 'jwk' }),
    Buffer.from(sig, 'base64url')), 'the ID token does not verify');
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
  assert.equal(claims.aud, 'https://hello-abc123-ew.a.run.app');
  assert.equal(claims.email, need('OIDC_BRIDGE_TEST_DEPLOY_SA'));
  assert.equal(claims.iss, 'https://accounts.google.com');

  const post = await runStep(runner, { inputs: { 'bridge-url': bridge }, state: r.state });
  assert.equal(post.code, 0, post.stdout + post.stderr);
  assert.deepEqual(post.env, Object.fromEntries(EXPORTED.gcp_id_token.map((v) => [v, ''])));
});

test('azure: access token output and AZURE_ACCESS_TOKEN, masked', async (t) => {
  const runner = newRunner();
  t.after(() => runner.cleanup());
  const r = await runStep(runner, { inputs: { 'bridge-url': bridge, mapping: 'web-azure', provider: 'azure' } });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.ok(r.outputs['access-token']);
  assert.equal(r.outputs['tenant-id'], need('OIDC_BRIDGE_TEST_AZURE_TENANT'));
  assert.equal(r.outputs.scope, 'https://management.azure.com/.default');
  assert.equal(maskProblem(r, [r.outputs['access-token']]), '');
  assert.deepEqual(Object.keys(r.env), EXPORTED.azure);
  assert.equal(r.env.AZURE_ACCESS_TOKEN, r.outputs['access-token']);
});

test('jwt: token output and token file, masked', async (t) => {
  const runner = newRunner();
  t.after(() => runner.cleanup());
  const r = await runStep(runner, { inputs: { 'bridge-url': bridge, mapping: 'web-jwt' } });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const token = r.outputs.token;
  assert.match(token, /^eyJ/);
  assert.equal(r.outputs.audience, 'https://deploy.internal.example');
  assert.equal(maskProblem(r, [token]), '');
  assert.equal(fs.readFileSync(r.outputs['token-file'], 'utf8'), token);
  assert.deepEqual(Object.keys(r.env), EXPORTED.jwt);
  assert.equal(r.env.OIDC_BRIDGE_JWT, token);
  const post = await runStep(runner, { inputs: { 'bridge-url': bridge }, state: r.state });
  assert.equal(post.code, 0);
  assert.deepEqual(post.env, Object.fromEntries(EXPORTED.jwt.map((v) => [v, ''])));
  assert.equal(fs.existsSync(r.outputs['token-file']), false);
});

test('one job, two mappings: each step exchanges its own fresh ID token (a token is exchanged once in all)', async (t) => {
  const runner = newRunner();
  t.after(() => runner.cleanup());
  const aws = await runStep(runner, { inputs: { 'bridge-url': frontURL('two', 'ok'), audience: 'https://bridge.example.com', mapping: 'web-aws' } });
  assert.equal(aws.code, 0, aws.stdout + aws.stderr);
  const jwt = await runStep(runner, { inputs: { 'bridge-url': frontURL('two', 'ok'), audience: 'https://bridge.example.com', mapping: 'web-jwt' } });
  assert.equal(jwt.code, 0, jwt.stdout + jwt.stderr);
  assert.notEqual(aws.outputs['issuance-id'], jwt.outputs['issuance-id']);
  assert.deepEqual(await frontStats('two'), { requests: 2, distinct_tokens: 2 });
});

test('a policy denial fails fast: no_matching_mapping, the reason, exit code 1, one attempt', async (t) => {
  const runner = newRunner();
  t.after(() => runner.cleanup());
  const r = await runStep(runner, { inputs: { 'bridge-url': frontURL('deny', 'ok'), audience: 'https://bridge.example.com', mapping: 'web-staging' } });
  assert.equal(r.code, 1);
  const e = errorLine(r);
  assert.match(e, /no_matching_mapping \(HTTP 403\)/);
  assert.match(e, /\[issuance [0-9a-f-]{36}\]/);
  assert.match(e, /To fix: .*oidc-bridge explain/);
  assert.deepEqual(await frontStats('deny'), { requests: 1, distinct_tokens: 1 });
  assert.deepEqual(r.env, {});
  assert.deepEqual(r.outputs, {});
});

test('several admitting mappings and none named: ambiguous_mapping, with the fix', async (t) => {
  const runner = newRunner();
  t.after(() => runner.cleanup());
  const r = await runStep(runner, { inputs: { 'bridge-url': frontURL('ambiguous', 'ok'), audience: 'https://bridge.example.com' } });
  assert.equal(r.code, 1);
  assert.match(errorLine(r), /ambiguous_mapping \(HTTP 409\).*To fix: .*`mapping` input/);
  assert.deepEqual(await frontStats('ambiguous'), { requests: 1, distinct_tokens: 1 });
});

test('a wrong audience: invalid_token, with the audience and id-token hint', async (t) => {
  const runner = newRunner();
  t.after(() => runner.cleanup());
  const r = await runStep(runner, { inputs: { 'bridge-url': frontURL('audience', 'ok'), audience: 'https://elsewhere.example', mapping: 'web-aws' } });
  assert.equal(r.code, 1);
  const e = errorLine(r);
  assert.match(e, /invalid_token \(HTTP 401\)/);
  assert.match(e, /audience/);
  assert.match(e, /permissions: id-token: write/);
  assert.equal((await frontStats('audience')).requests, 1);
});

test('503 then success: retried with a fresh ID token', async (t) => {
  const runner = newRunner();
  t.after(() => runner.cleanup());
  const r = await runStep(runner, { inputs: { 'bridge-url': frontURL('retry503', '503x1'), audience: 'https://bridge.example.com', mapping: 'web-aws' } });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /::warning::attempt 1 of 5: oidc-bridge: unavailable \(HTTP 503\)/);
  assert.deepEqual(await frontStats('retry503'), { requests: 2, distinct_tokens: 2 });
  assert.match(r.env.AWS_ACCESS_KEY_ID, /^ASIA/);
  assert.match(r.stdout, /\(attempt 2\)/);
});

test('429 honours Retry-After', async (t) => {
  const runner = newRunner();
  t.after(() => runner.cleanup());
  const r = await runStep(runner, { inputs: { 'bridge-url': frontURL('retry429', '429x1'), audience: 'https://bridge.example.com', mapping: 'web-aws' } });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  // Retry-After (1 s) plus up to 1 s of jitter: 1.0 to 2.0 s.
  assert.match(r.stdout, /rate_limited \(HTTP 429\).*retrying in (1\.\d|2\.0)s/);
  assert.ok(r.ms >= 1000, `retried after ${r.ms} ms, before Retry-After`);
  assert.deepEqual(await frontStats('retry429'), { requests: 2, distinct_tokens: 2 });
});

test('retries are bounded: the last error after retries+1 attempts', async (t) => {
  const runner = newRunner();
  t.after(() => runner.cleanup());
  const r = await runStep(runner, { inputs: { 'bridge-url': frontURL('exhaust', '503x99'), audience: 'https://bridge.example.com', mapping: 'web-aws', retries: '1' } });
  assert.equal(r.code, 1);
  assert.match(errorLine(r), /unavailable \(HTTP 503\): the database is unavailable after 2 attempts/);
  assert.deepEqual(await frontStats('exhaust'), { requests: 2, distinct_tokens: 2 });
});

test('network errors are retried, then named', async (t) => {
  const runner = newRunner();
  t.after(() => runner.cleanup());
  const r = await runStep(runner, { inputs: { 'bridge-url': 'http://127.0.0.1:1', audience: 'https://bridge.example.com', retries: '1' } });
  assert.equal(r.code, 1);
  assert.match(errorLine(r), /network_error: could not reach the bridge at http:\/\/127\.0\.0\.1:1\/v1\/exchange.* after 2 attempts/);
});

test('no ACTIONS_ID_TOKEN_REQUEST_URL: the id-token permission hint', async (t) => {
  const runner = newRunner();
  t.after(() => runner.cleanup());
  const r = await runStep(runner, { inputs: { 'bridge-url': frontURL('noperm', 'ok') }, env: { ACTIONS_ID_TOKEN_REQUEST_URL: undefined } });
  assert.equal(r.code, 1);
  const e = errorLine(r);
  assert.match(e, /id_token_unavailable: ACTIONS_ID_TOKEN_REQUEST_URL is not set/);
  assert.match(e, /permissions: id-token: write/);
  assert.equal((await frontStats('noperm')).requests, 0);
});

test('bad inputs fail before any request', async (t) => {
  const runner = newRunner();
  t.after(() => runner.cleanup());
  for (const [inputs, want] of [
    [{ 'bridge-url': frontURL('inputs', 'ok'), 'duration-seconds': 'soon' }, /invalid_input: duration-seconds/],
    [{ 'bridge-url': frontURL('inputs', 'ok'), provider: 'oracle' }, /invalid_input: provider must be one of aws, gcp, azure, jwt/],
    [{ 'bridge-url': frontURL('inputs', 'ok'), retries: '99' }, /invalid_input: retries/],
    [{ 'bridge-url': 'http://bridge.example.com' }, /invalid_input: bridge-url must be https/],
    [{}, /Input required and not supplied: bridge-url/],
  ]) {
    const r = await runStep(runner, { inputs });
    assert.equal(r.code, 1, JSON.stringify(inputs));
    assert.match(errorLine(r), want);
  }
  assert.equal((await frontStats('inputs')).requests, 0);
});
