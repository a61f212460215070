// Unit tests of the action's pure parts: retry classification, backoff,
// Retry-After, hints, and what each provider's credentials become.
import { test } from 'node:test';
import fs from 'node:fs';
import assert from 'node:assert/strict';
import {
  ActionError, backoffDelay, hintFor, isRetryableStatus, parseRetryAfter,
} from '../src/errors.mjs';
import { Readable } from 'node:stream';
import { GCP_FILE_VARS, GCP_PROJECT_VARS, externalAccount, gitCredentialConfig, plan } from '../src/credentials.mjs';
import {
  BodyTooLarge, MAX_BODY_BYTES, MAX_TEXT, checkExchange, errorFromBody, readLimited, safeText,
} from '../src/response.mjs';

test('retryable: 408, 429 and 5xx; decisions are not', () => {
  for (const s of [408, 429, 500, 503, 504, 599]) assert.equal(isRetryableStatus(s), true, String(s));
  for (const s of [200, 301, 400, 401, 403, 404, 409, 413]) assert.equal(isRetryableStatus(s), false, String(s));
  // 502 provider_error: retried only when the bridge says the cloud is failing.
  assert.equal(isRetryableStatus(502, 5000), true, '502 with Retry-After');
  assert.equal(isRetryableStatus(502, undefined), false, '502 without Retry-After (a refusal)');
});

test('Retry-After: seconds and HTTP dates', () => {
  assert.equal(parseRetryAfter('3'), 3000);
  assert.equal(parseRetryAfter(undefined), undefined);
  assert.equal(parseRetryAfter('soon'), undefined);
  const now = Date.parse('2026-11-26T18:00:00Z');
  assert.equal(parseRetryAfter('Thu, 26 Nov 2026 18:00:10 GMT', now), 10000);
  assert.equal(parseRetryAfter('Thu, 26 Nov 2026 17:00:00 GMT', now), 0);
});

test('backoff: exponential, jittered, capped; Retry-After is a floor', () => {
  assert.equal(backoffDelay(1, { random: () => 0 }), 500);
  assert.equal(backoffDelay(1, { random: () => 1 }), 1000);
  assert.equal(backoffDelay(3, { random: () => 0 }), 2000);
  assert.equal(backoffDelay(3, { random: () => 1 }), 4000);
  assert.equal(backoffDelay(20, { random: () => 1 }), 20000);
  assert.equal(backoffDelay(20, { random: () => 0 }), 10000);
  assert.equal(backoffDelay(1, { retryAfterMs: 7000, random: () => 0 }), 7000);
  assert.ok(backoffDelay(1, { retryAfterMs: 7000, random: () => 1 }) <= 8000);
});

test('every contract error code has a hint', () => {
  for (const code of ['invalid_request', 'invalid_token', 'untrusted_issuer', 'no_matching_mapping', 'ambiguous_mapping',
    'token_replayed', 'quota_exceeded', 'rate_limited', 'provider_error', 'unavailable']) {
    assert.doesNotMatch(hintFor(code), /see the oidc-bridge API contract/, code);
  }
  assert.match(hintFor('invalid_token'), /permissions: id-token: write/);
  const e = new ActionError('no_matching_mapping', 'no mapping admits', { status: 403, hint: 'x', issuanceId: 'id', attempts: 1 });
  assert.equal(e.describe(), 'oidc-bridge: no_matching_mapping (HTTP 403): no mapping admits [issuance id]. To fix: x');
});

const AKID = 'ASIAQWERTYUIOPASDFGH';
const EXP = '2026-11-26T18:00:00Z';

test('plan: aws', () => {
  const p = plan('aws', { access_key_id: AKID, secret_access_key: 's3cr/t+KEY=', session_token: 'IQoJb3JpZ2lu', region: 'eu-west-1', expiration: EXP });
  assert.deepEqual(p.secrets, [AKID, 's3cr/t+KEY=', 'IQoJb3JpZ2lu']);
  assert.deepEqual(p.env, { AWS_ACCESS_KEY_ID: AKID, AWS_SECRET_ACCESS_KEY: 's3cr/t+KEY=', AWS_SESSION_TOKEN: 'IQoJb3JpZ2lu', AWS_REGION: 'eu-west-1', AWS_DEFAULT_REGION: 'eu-west-1', AWS_CREDENTIAL_EXPIRATION: EXP });
  assert.equal(p.outputs['secret-access-key'], 's3cr/t+KEY=');
  assert.equal(p.outputs.expiration, EXP);
  assert.throws(() => plan('aws', { access_key_id: AKID }), /lack "secret_access_key"/);
});

test('plan: aws, configure-aws-credentials\' names: aws-account-id always, masked on request; aws-* secrets only with output-credentials', () => {
  const creds = { access_key_id: AKID, secret_access_key: 's3cr/t+KEY=', session_token: 'IQoJb3JpZ2lu', region: 'eu-west-1', expiration: EXP, account_id: '123456789012' };
  const plain = plan('aws', creds);
  assert.equal(plain.outputs['aws-account-id'], '123456789012');
  assert.deepEqual(plain.secrets, [AKID, 's3cr/t+KEY=', 'IQoJb3JpZ2lu']);
  for (const k of ['aws-access-key-id', 'aws-secret-access-key', 'aws-session-token', 'aws-expiration']) {
    assert.equal(k in plain.outputs, false, `${k} without output-credentials`);
  }
  const masked = plan('aws', creds, { maskAccountId: true });
  assert.deepEqual(masked.secrets, [AKID, 's3cr/t+KEY=', 'IQoJb3JpZ2lu', '123456789012']);
  const out = plan('aws', creds, { outputCredentials: true });
  assert.equal(out.outputs['aws-access-key-id'], AKID);
  assert.equal(out.outputs['aws-secret-access-key'], 's3cr/t+KEY=');
  assert.equal(out.outputs['aws-session-token'], 'IQoJb3JpZ2lu');
  assert.equal(out.outputs['aws-expiration'], EXP);
  // A bridge without account_id: no output; a malformed one is refused.
  const { account_id: _, ...old } = creds;
  assert.equal('aws-account-id' in plan('aws', old).outputs, false);
  assert.throws(() => plan('aws', { ...creds, account_id: '1234::add-mask::' }), /"account_id" that is not of its format/);
});

test('plan: jwt with gcpFile: Google\'s external account file, its variables and the project variables', () => {
  const gcpFile = {
    workloadIdentityProvider: 'projects/123/locations/global/workloadIdentityPools/oidc-bridge/providers/bridge',
    serviceAccount: 'deploy@acme-prod.iam.gserviceaccount.com',
    projectId: 'acme-prod',
    command: 'oidc-bridge exchange --bridge-url https://bridge.example.com --mapping gcp-sts --format gcp-executable',
  };
  const j = plan('jwt', { token: 'eyJ', audience: 'aud' }, { gcpFile });
  const f = j.files['gcp-credentials.json'];
  assert.equal(f.output, 'credentials-file-path');
  assert.deepEqual(f.env, GCP_FILE_VARS);
  assert.deepEqual(JSON.parse(f.content), {
    type: 'external_account',
    audience: '//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/oidc-bridge/providers/bridge',
    subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
    token_url: 'https://sts.googleapis.com/v1/token',
    service_account_impersonation_url: 'https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/deploy@acme-prod.iam.gserviceaccount.com:generateAccessToken',
    credential_source: { executable: { command: gcpFile.command, timeout_millis: 120000 } },
  });
  assert.equal(f.content.includes('eyJ'), false, 'the file holds no token');
  assert.equal(j.env.GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES, '1');
  for (const v of GCP_PROJECT_VARS) assert.equal(j.env[v], 'acme-prod', v);
  assert.equal(j.outputs['project-id'], 'acme-prod');
  // Without a service account: the federated token itself, no impersonation.
  assert.equal('service_account_impersonation_url' in JSON.parse(externalAccount({ ...gcpFile, serviceAccount: '' })), false);
  // Without a project: no project variables.
  const np = plan('jwt', { token: 'eyJ' }, { gcpFile: { ...gcpFile, projectId: '' } });
  assert.deepEqual(Object.keys(np.env), ['OIDC_BRIDGE_JWT', 'GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES']);
  assert.equal('project-id' in np.outputs, false);
});

test('plan: gcp, azure, jwt, and unknown providers', () => {
  const g = plan('gcp', { access_token: 'ya29.c.gcpfake-x_Y', token_type: 'Bearer', service_account: 'sa', expires_at: EXP });
  assert.deepEqual(g.secrets, ['ya29.c.gcpfake-x_Y']);
  assert.deepEqual(g.env, { CLOUDSDK_AUTH_ACCESS_TOKEN: 'ya29.c.gcpfake-x_Y', GOOGLE_OAUTH_ACCESS_TOKEN: 'ya29.c.gcpfake-x_Y' });
  assert.equal(g.files['gcp-access-token'].output, 'access-token-file');
  assert.equal(g.files['gcp-access-token'].env, undefined);
  const a = plan('azure', { access_token: 'eyJ', tenant_id: 't', client_id: 'c', scope: 'https://management.azure.com/.default' });
  assert.deepEqual(a.env, { AZURE_ACCESS_TOKEN: 'eyJ' });
  assert.equal(a.outputs['access-token'], 'eyJ');
  assert.equal(a.outputs.scope, 'https://management.azure.com/.default');
  const j = plan('jwt', { token: 'eyJ', audience: 'aud', expires_at: '2026-11-26T18:00:00.123456789+01:00' });
  assert.equal(j.outputs.token, 'eyJ');
  assert.equal(j.files.token.output, 'token-file');
  assert.deepEqual(j.env, { OIDC_BRIDGE_JWT: 'eyJ' });
  assert.throws(() => plan('oracle', {}), /does not know/);
  // Both tokens at once: which one is meant? Nothing is exported.
  assert.throws(() => plan('gcp', { id_token: 'eyJ.a.b', access_token: 'ya29.x' }), /both an "id_token" and an "access_token"/);
  const id = plan('gcp', { id_token: 'eyJ.a.b', token_type: 'Bearer', audience: 'https://x.a.run.app' });
  assert.deepEqual(id.secrets, ['eyJ.a.b']);
  assert.equal(id.outputs['id-token'], 'eyJ.a.b');
  assert.equal(id.outputs.audience, 'https://x.a.run.app');
  assert.equal(id.outputs['access-token'], undefined);
  assert.throws(() => plan('aws', null), /without a credentials object/);
});

// actions/exported-variables.json: the variables of each provider, which
// `oidc-bridge exchange --format env` (the GitLab templates) also sets
// (ciclient's TestExportedVariables checks the CLI against it).
test('plan: the exported variables are those of actions/exported-variables.json, in order, as the CLI exports them', () => {
  const want = JSON.parse(fs.readFileSync(new URL('../../exported-variables.json', import.meta.url), 'utf8'));
  const meta = { issuanceId: '0193b9e2-0000-7000-8000-000000000000', expiresAt: '2026-11-26T19:00:00.5+01:00' };
  const answers = {
    aws: { access_key_id: AKID, secret_access_key: 's3cr/t+KEY=', session_token: 'IQoJb3JpZ2lu', region: 'eu-west-1', expiration: EXP },
    gcp: { access_token: 'ya29.x', token_type: 'Bearer', service_account: 'sa', expires_at: EXP },
    gcp_id_token: { id_token: 'eyJ.a.b', token_type: 'Bearer', service_account: 'sa', audience: 'https://x.a.run.app', expires_at: EXP },
    azure: { access_token: 'eyJ', token_type: 'Bearer', tenant_id: 't', client_id: 'c', scope: 's', expires_at: EXP },
    jwt: { token: 'eyJ', token_type: 'Bearer', audience: 'aud', expires_at: EXP },
    // A GitHub Enterprise Server's: github.com's has no GH_HOST nor GH_ENTERPRISE_TOKEN.
    github: { token: 'ghs_16C7e42F292c6912E7710c838347Ae178B4a', token_type: 'Bearer', expires_at: EXP, repositories: ['acme/web'],
      permissions: { contents: 'write' }, api_url: 'https://ghe.example.com/api/v3/', server_url: 'https://ghe.example.com/' },
  };
  assert.deepEqual(Object.keys(want).filter((k) => k !== '_comment').sort(), Object.keys(answers).sort());
  for (const [provider, creds] of Object.entries(answers)) {
    const p = plan(provider.replace(/_id_token$/, ''), creds, meta);
    assert.deepEqual(Object.keys(p.env), want[provider], provider);
    // The CLI's forms: Go's time.RFC3339 in UTC, whole seconds.
    assert.equal(p.env.OIDC_BRIDGE_EXPIRES_AT, '2026-11-26T18:00:00Z');
    assert.equal(p.env.OIDC_BRIDGE_ISSUANCE_ID, meta.issuanceId);
  }
});

// Each injection payload a hostile bridge might put in a field: a new line
// that starts a workflow command, a lone carriage return, an escape
// sequence, a Unicode line separator, a bidi override, the legacy form.
const PAYLOADS = [
  'x\n::stop-commands::pwned', 'x\r::warning::pwned', 'x\n  ::add-mask::pwned', 'x\u2028::set-output name=a::b',
  '\u001b[2J::error::pwned', 'x\u202e::debug::pwned', '::warning::pwned', '##[warning]pwned', 'x%0A::warning::pwned',
];

test('plan refuses a credential that could break its mask, naming the field, not the value', () => {
  const aws = { access_key_id: AKID, secret_access_key: 'abc', session_token: 'def', region: 'eu-west-1', expiration: EXP };
  for (const bad of [...PAYLOADS, 'a b', 'tok\n', 'a::b', 'per%cent']) {
    for (const field of ['secret_access_key', 'session_token']) {
      assert.throws(() => plan('aws', { ...aws, [field]: bad }), (e) => e.message.includes(`"${field}"`) && !e.message.includes('pwned'), `${field} ${JSON.stringify(bad)}`);
    }
    assert.throws(() => plan('gcp', { access_token: bad }), /"access_token" with characters no credential has/);
    assert.throws(() => plan('gcp', { id_token: bad }), /"id_token" with characters no credential has/);
    assert.throws(() => plan('azure', { access_token: bad }), /"access_token"/);
    assert.throws(() => plan('jwt', { token: bad }), /"token"/);
  }
  // An access key id is 16-128 word characters.
  for (const bad of ['ASIA', 'ASIA/QWERTYUIOPASDF', `ASIA${'A'.repeat(125)}`, 'ASIAQWERTYUIOPASDFGH\n::warning::x']) {
    assert.throws(() => plan('aws', { ...aws, access_key_id: bad }), /"access_key_id"/, JSON.stringify(bad));
  }
  assert.equal(plan('aws', { ...aws, access_key_id: 'AKIAIOSFODNN7EXAMPLE' }).env.AWS_ACCESS_KEY_ID, 'AKIAIOSFODNN7EXAMPLE');
});

test('plan refuses a non-secret field that is not one printable line, or not of its format', () => {
  const aws = { access_key_id: AKID, secret_access_key: 'abc', session_token: 'def' };
  for (const bad of PAYLOADS) {
    assert.throws(() => plan('aws', { ...aws, region: bad }), /"region" that is not of its format/);
    assert.throws(() => plan('aws', { ...aws, expiration: bad }), /"expiration" that is not an RFC 3339 date-time/);
    assert.throws(() => plan('gcp', { access_token: 'ya29', expires_at: bad }), /"expires_at"/);
  }
  for (const bad of PAYLOADS.filter((p) => /[\p{Cc}\p{Cf}\u2028]/u.test(p))) {
    assert.throws(() => plan('gcp', { access_token: 'ya29', service_account: bad }), /"service_account" that is not one line of printable text/);
    assert.throws(() => plan('azure', { access_token: 'eyJ', scope: bad }), /"scope"/);
    assert.throws(() => plan('azure', { access_token: 'eyJ', tenant_id: bad }), /"tenant_id"/);
    assert.throws(() => plan('jwt', { token: 'eyJ', audience: bad }), /"audience"/);
    assert.throws(() => plan('jwt', { token: 'eyJ', token_type: bad }), /"token_type"/);
  }
  assert.throws(() => plan('jwt', { token: 'eyJ', audience: { a: 1 } }), /"audience"/);
  assert.throws(() => plan('aws', { ...aws, expiration: '2026-13-45T99:99:99Z' }), /"expiration"/);
  assert.throws(() => plan('jwt', { token: 'eyJ', audience: 'a'.repeat(2049) }), /"audience"/);
});

const GOOD = {
  issuance_id: '0193b9e2-6c1e-7c3a-9f1e-2a4b5c6d7e8f', mapping: 'web-prod.deploy_1', provider: 'aws', expires_at: EXP,
  credentials: { access_key_id: AKID },
};

test('checkExchange: the fields the log shows have their formats, or the answer is refused', () => {
  assert.deepEqual(checkExchange(GOOD), {
    issuanceId: GOOD.issuance_id, mapping: GOOD.mapping, provider: 'aws', expiresAt: EXP, credentials: GOOD.credentials,
  });
  assert.equal(checkExchange({ ...GOOD, expires_at: '2026-11-26T18:00:00.123456789Z' }).expiresAt, '2026-11-26T18:00:00.123456789Z');
  for (const [field, want] of [['issuance_id', /issuance_id that is not a UUID/], ['mapping', /mapping that is not a mapping name/],
    ['provider', /provider that is not one of aws, gcp, azure, jwt/], ['expires_at', /expires_at that is not an RFC 3339 date-time/]]) {
    for (const bad of [...PAYLOADS, '', undefined, 7, {}, 'A'.repeat(65)]) {
      assert.throws(() => checkExchange({ ...GOOD, [field]: bad }), (e) => {
        assert.ok(e instanceof ActionError);
        assert.equal(e.code, 'invalid_response');
        assert.match(e.message, want);
        assert.doesNotMatch(e.describe(), /pwned/);
        return true;
      }, `${field} ${JSON.stringify(bad)}`);
    }
  }
  assert.throws(() => checkExchange({ ...GOOD, mapping: 'Web' }), /mapping/);
  assert.throws(() => checkExchange({ ...GOOD, mapping: `a${'b'.repeat(64)}` }), /mapping/);
  assert.throws(() => checkExchange({ ...GOOD, credentials: 'x' }), /credentials that is not a JSON object/);
  assert.throws(() => checkExchange([]), /a body that is not a JSON object/);
});

test('safeText: one line, no control or format characters, no command at its start, capped', () => {
  for (const p of PAYLOADS) {
    const s = safeText(p);
    assert.doesNotMatch(s, /[\p{Cc}\p{Cf}\u2028\u2029]/u, JSON.stringify(p));
    assert.doesNotMatch(s, /^\s*::/, JSON.stringify(p));
    assert.doesNotMatch(s, /##\[/, JSON.stringify(p));
  }
  assert.equal(safeText('a\r\n\n  ::stop-commands::tok'), 'a ::stop-commands::tok');
  assert.equal(safeText('::warning::x'), ': :warning::x');
  assert.equal(safeText('not authorized on arn:aws:iam::123456789012:role/x'), 'not authorized on arn:aws:iam::123456789012:role/x');
  assert.equal(safeText('x'.repeat(600)).length, MAX_TEXT + 1);
  assert.equal(safeText(undefined), '');
});

test('errorFromBody: a code of the contract\'s form, a UUID issuance id, the message as safe text', () => {
  const ok = errorFromBody(403, JSON.stringify({ error: 'no_matching_mapping', message: 'no mapping admits', issuance_id: GOOD.issuance_id }), 'u');
  assert.equal(ok.code, 'no_matching_mapping');
  assert.equal(ok.issuanceId, GOOD.issuance_id);
  assert.match(ok.hint, /oidc-bridge explain/);
  for (const p of PAYLOADS) {
    const e = errorFromBody(503, JSON.stringify({ error: p, message: `m\n${p}`, issuance_id: p }), 'https://b/v1/exchange');
    assert.equal(e.code, 'http_503');
    assert.equal(e.issuanceId, undefined);
    assert.match(e.message, /its error code is not of the contract's form and is not shown/);
    const line = e.describe();
    assert.doesNotMatch(line, /[\p{Cc}\p{Cf}\u2028\u2029]/u, JSON.stringify(p));
    assert.doesNotMatch(line, /##\[/);
    assert.ok(line.startsWith('oidc-bridge: http_503 (HTTP 503): m '), line);
  }
  // A code that is an Object property is not a hint's key.
  assert.match(errorFromBody(400, '{"error": "constructor"}', 'u').hint, /see the oidc-bridge API contract/);
  assert.equal(errorFromBody(502, '<html>', 'u').code, 'http_502');
  assert.equal(errorFromBody(502, 'null', 'u').code, 'http_502');
  assert.equal(errorFromBody(400, JSON.stringify({ error: 'x', message: 'y'.repeat(5000) }), 'u').message.length, MAX_TEXT + 1);
});

test('readLimited: reads up to the limit, refuses more without reading it all', async () => {
  assert.equal(await readLimited(Readable.from([Buffer.from('ab'), Buffer.from('cd')]), 4), 'abcd');
  let pulled = 0;
  const endless = new Readable({
    read() {
      pulled++;
      this.push(Buffer.alloc(1024, 'a'));
    },
  });
  await assert.rejects(readLimited(endless, 64 * 1024), BodyTooLarge);
  assert.ok(pulled <= 70, `read ${pulled} KiB of an endless answer`);
  assert.ok(endless.destroyed);
  const declared = Readable.from([Buffer.from('x')]);
  declared.headers = { 'content-length': String(MAX_BODY_BYTES + 1) };
  await assert.rejects(readLimited(declared), /more than 65536/);
});

test('plan: github, the token masked, outputs, and no GH_HOST for github.com', () => {
  const token = 'ghs_16C7e42F292c6912E7710c838347Ae178B4a';
  const p = plan('github', { token, token_type: 'Bearer', expires_at: EXP, repositories: ['acme/web', 'acme/infra'],
    permissions: { contents: 'write' }, api_url: 'https://api.github.com/', server_url: 'https://github.com/' });
  assert.deepEqual(p.secrets, [token]);
  assert.equal(p.outputs.token, token);
  assert.equal(p.outputs['github-api-url'], 'https://api.github.com/');
  assert.equal(p.outputs['github-server-url'], 'https://github.com/');
  assert.equal(p.outputs.repositories, 'acme/web,acme/infra');
  assert.deepEqual(Object.keys(p.env), ['GITHUB_TOKEN', 'GH_TOKEN']);
  assert.equal(p.files['github-token'].content, token);
  assert.equal(p.serverURL, 'https://github.com/');
  // A token that would break its mask, or URLs that are not https, are refused.
  assert.throws(() => plan('github', { token: 'ghs_x\n::warning::y' }), /characters no credential has/);
  assert.throws(() => plan('github', { token, server_url: 'http://github.com/' }), /server_url/);
  assert.throws(() => plan('github', { token, api_url: 'https://x.example/\n::warning::' }), /api_url/);
});

test('gitCredentialConfig: the helper for the server URL only, after an empty one, with the file quoted', () => {
  const cfg = gitCredentialConfig('https://ghe.example.com/', "/runner/_temp/o'b/github-token");
  assert.match(cfg, /^\[credential "https:\/\/ghe\.example\.com"\]$/m);
  assert.match(cfg, /^\thelper =$/m);
  assert.ok(cfg.includes(`cat '/runner/_temp/o'\\\\''b/github-token'`), cfg);
  assert.ok(!cfg.includes('ghs_'), 'the configuration holds no token');
});
