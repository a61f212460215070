// Several credentials in one step (`mappings:`) and a bridge behind a
// corporate proxy and a private CA, through the bundle on a simulated
// runner. Run by the Go test TestAction (test/e2e/action_test.go), which
// provides the bridge, the ID-token stand-in, the STS endpoint, a TLS
// front certified by a test CA for bridge.test and token.test, and a
// CONNECT proxy that alone reaches those names and records its tunnels.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { maskProblem, need, newRunner, run, runStep } from './runner.mjs';

const bridge = need('OIDC_BRIDGE_TEST_BRIDGE_URL');
const stsEndpoint = need('OIDC_BRIDGE_TEST_STS_ENDPOINT');
const proxyURL = need('OIDC_BRIDGE_TEST_PROXY_URL');
const caFile = need('OIDC_BRIDGE_TEST_CA_FILE');

// ini reads an AWS config or credentials file into {section: {key: value}}.
function ini(text) {
  const out = {};
  let cur;
  for (const line of text.split('\n')) {
    const h = line.match(/^\[(.+)\]$/);
    if (h) out[cur = h[1]] = {};
    const kv = line.match(/^(\w+) = (\S+)$/);
    if (kv && cur) out[cur][kv[1]] = kv[2];
  }
  return out;
}

// callerIdentity runs GetCallerIdentity with the AWS SDK for JavaScript
// under profile, in a later step's environment (the files the step
// exported, nothing else of AWS).
function callerIdentity(exported, profile) {
  const script = `
    import { STSClient, GetCallerIdentityCommand } from '@aws-sdk/client-sts';
    try {
      const c = new STSClient({});
      const r = await c.send(new GetCallerIdentityCommand({}));
      const k = await c.config.credentials();
      console.log(JSON.stringify({ account: r.Account, key: k.accessKeyId, region: await c.config.region() }));
    } catch (e) {
      console.log(JSON.stringify({ error: e.name, message: e.message }));
    }`;
  return run(['--input-type=module', '-e', script], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      AWS_CONFIG_FILE: exported.AWS_CONFIG_FILE,
      AWS_SHARED_CREDENTIALS_FILE: exported.AWS_SHARED_CREDENTIALS_FILE,
      AWS_PROFILE: profile,
      AWS_ENDPOINT_URL_STS: stsEndpoint,
      AWS_EC2_METADATA_DISABLED: 'true',
    },
  });
}

describe('mappings: several credentials in one step', () => {
  const runner = newRunner();
  let main;
  let post;
  before(async () => {
    main = await runStep(runner, {
      inputs: { 'bridge-url': bridge, mappings: 'web-aws\n\n# the operations role\nweb-aws-ops\nweb-gcp\nweb-azure\n', 'duration-seconds': '900' },
    });
  });
  after(() => runner.cleanup());

  test('the step succeeds, one exchange per mapping, each with an ID token of its own', () => {
    assert.equal(main.code, 0, main.stdout + main.stderr);
    for (const m of ['web-aws', 'web-aws-ops', 'web-gcp', 'web-azure']) {
      assert.match(main.stdout, new RegExp(`credentials of mapping ${m}, expiring`));
    }
    // The masked JWTs that GitHub's stand-in minted (its claims name the
    // repository; the Azure access token is a JWT too).
    const idTokens = new Set(main.stdout.split('\n').filter((l) => l.startsWith('::add-mask::eyJ'))
      .filter((l) => JSON.parse(Buffer.from(l.split('.')[1], 'base64url')).repository === 'acme/web'));
    assert.equal(idTokens.size, 4, 'four distinct ID tokens');
  });

  test('AWS: AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE under RUNNER_TEMP, mode 0600, a profile per mapping', () => {
    assert.deepEqual(Object.keys(main.env).sort(), ['AWS_CONFIG_FILE', 'AWS_SHARED_CREDENTIALS_FILE']);
    for (const f of [main.env.AWS_CONFIG_FILE, main.env.AWS_SHARED_CREDENTIALS_FILE]) {
      assert.equal(path.dirname(path.dirname(f)), runner.temp);
      assert.equal(fs.statSync(f).mode & 0o777, 0o600);
    }
    assert.equal(main.outputs['aws-config-file'], main.env.AWS_CONFIG_FILE);
    const config = ini(fs.readFileSync(main.env.AWS_CONFIG_FILE, 'utf8'));
    assert.deepEqual(config, { 'profile web-aws': { region: 'eu-west-1' }, 'profile web-aws-ops': { region: 'us-east-2' } });
    const creds = ini(fs.readFileSync(main.env.AWS_SHARED_CREDENTIALS_FILE, 'utf8'));
    assert.deepEqual(Object.keys(creds), ['web-aws', 'web-aws-ops']);
    assert.notEqual(creds['web-aws'].aws_access_key_id, creds['web-aws-ops'].aws_access_key_id);
    const secrets = Object.values(creds).flatMap((c) => [c.aws_access_key_id, c.aws_secret_access_key, c.aws_session_token]);
    assert.equal(maskProblem(main, secrets), '');
    assert.equal(fs.existsSync(path.join(runner.temp, '_workspace_must_stay_empty')), false);
  });

  test('each profile works with the AWS SDK: its own key and region, SigV4 checked', async () => {
    const creds = ini(fs.readFileSync(main.env.AWS_SHARED_CREDENTIALS_FILE, 'utf8'));
    for (const [profile, region] of [['web-aws', 'eu-west-1'], ['web-aws-ops', 'us-east-2']]) {
      const r = await callerIdentity(main.env, profile);
      const id = JSON.parse(r.stdout);
      assert.equal(id.error, undefined, `${profile}: ${id.error}: ${id.message}`);
      assert.equal(id.account, '111122223333');
      assert.equal(id.key, creds[profile].aws_access_key_id);
      assert.equal(id.region, region);
    }
  });

  test('GCP and Azure: outputs per mapping, <mapping>-<output>, masked; nothing exported for them', () => {
    const o = main.outputs;
    for (const m of ['web-aws', 'web-aws-ops', 'web-gcp', 'web-azure']) {
      assert.match(o[`${m}-issuance-id`], /^[0-9a-f-]{36}$/);
      assert.ok(Date.parse(o[`${m}-expires-at`]) > Date.now());
    }
    assert.equal(o['web-gcp-provider'], 'gcp');
    assert.ok(o['web-gcp-access-token'].length > 20);
    assert.equal(o['web-gcp-service-account'], need('OIDC_BRIDGE_TEST_DEPLOY_SA'));
    assert.equal(fs.readFileSync(o['web-gcp-access-token-file'], 'utf8'), o['web-gcp-access-token']);
    assert.equal(o['web-azure-tenant-id'], need('OIDC_BRIDGE_TEST_AZURE_TENANT'));
    assert.ok(o['web-azure-access-token'].length > 20);
    assert.equal(maskProblem(main, [o['web-gcp-access-token'], o['web-azure-access-token']]), '');
    assert.equal(o['web-aws-access-key-id'], undefined, 'AWS keys stay in the files');
  });

  test('the post step deletes the files and clears the variables', async () => {
    post = await runStep(runner, { state: main.state });
    assert.equal(post.code, 0, post.stdout);
    assert.equal(fs.existsSync(main.env.AWS_CONFIG_FILE), false);
    assert.equal(fs.existsSync(main.env.AWS_SHARED_CREDENTIALS_FILE), false);
    assert.deepEqual(post.env, { AWS_CONFIG_FILE: '', AWS_SHARED_CREDENTIALS_FILE: '' });
  });

  test('refused inputs: mapping with mappings, a bad name, a repeat, two names for one output key', async () => {
    for (const [inputs, want] of [
      [{ mapping: 'web-aws', mappings: 'web-gcp' }, /not both/],
      [{ mappings: 'web-aws\nWeb Ops' }, /is not a mapping name/],
      [{ mappings: 'web-aws\nweb-aws' }, /listed twice/],
      [{ mappings: 'web.aws\nweb_aws' }, /would share the outputs web_aws-\*/],
    ]) {
      const r = await runStep(runner, { inputs: { 'bridge-url': bridge, ...inputs } });
      assert.equal(r.code, 1);
      assert.match(r.stdout, want);
    }
  });
});

describe('behind a proxy and a private CA', () => {
  const runner = newRunner();
  after(() => runner.cleanup());
  const targets = async () => (await fetch(`${proxyURL}/targets`)).json();
  const step = (inputs, env) => runStep(runner, {
    inputs: { 'bridge-url': 'https://bridge.test', audience: 'https://bridge.example.com', mapping: 'web-aws', retries: '0', ...inputs },
    env: { ACTIONS_ID_TOKEN_REQUEST_URL: 'https://token.test/_apis/pipelines/1/idtoken?api-version=2.0', HTTPS_PROXY: proxyURL, ...env },
  });

  test('HTTPS_PROXY and NODE_EXTRA_CA_CERTS: the ID-token request and the exchange both tunnel through the proxy', async () => {
    const before = (await targets()).length;
    const r = await step({}, { NODE_EXTRA_CA_CERTS: caFile });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.env.AWS_ACCESS_KEY_ID, /^ASIA/);
    assert.deepEqual((await targets()).slice(before), ['token.test:443', 'bridge.test:443']);
  });

  test('ca-file: the same with the CA given as an input', async () => {
    const before = (await targets()).length;
    const r = await step({ 'ca-file': caFile }, {});
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual((await targets()).slice(before), ['token.test:443', 'bridge.test:443']);
  });

  test('without the CA the TLS handshake fails and no token is sent', async () => {
    const r = await step({}, {});
    assert.equal(r.code, 1);
    assert.match(r.stdout, /::error::.*(self-signed|unable to verify|local issuer)/i);
    assert.match(r.stdout, /::error::.*ca-file or NODE_EXTRA_CA_CERTS/);
  });

  test('a ca-file without a certificate is refused before any request', async () => {
    const bad = path.join(runner.temp, 'bad.pem');
    fs.writeFileSync(bad, 'junk\n');
    const before = (await targets()).length;
    const r = await step({ 'ca-file': bad }, {});
    assert.equal(r.code, 1);
    assert.match(r.stdout, /ca-file .* holds no PEM certificate/);
    assert.equal((await targets()).length, before);
  });
});
