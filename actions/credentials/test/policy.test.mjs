// Session tags on the keyless path and downscoping by the step, through the
// bundle on a simulated runner. Run by the Go test TestAction
// (test/e2e/action_test.go), which provides the bridge (mappings
// web-aws-tagged, assume_role, and web-aws-wi, web_identity, with the same
// static tag and transitive keys; web-gcp-scoped, two scopes), the STS
// endpoint, and a stand-in that answers what the STS and Google fakes
// recorded of the bridge's calls (OIDC_BRIDGE_TEST_CALLS_URL).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { maskProblem, need, newRunner, run, runStep } from './runner.mjs';

const bridge = need('OIDC_BRIDGE_TEST_BRIDGE_URL');
const stsEndpoint = need('OIDC_BRIDGE_TEST_STS_ENDPOINT');

// calls reads what the fakes recorded: {sts: [...], gcp: [...]}.
async function calls() {
  const res = await fetch(need('OIDC_BRIDGE_TEST_CALLS_URL'));
  assert.equal(res.status, 200);
  return res.json();
}

// errorLine is the ::error:: line a failed step printed.
function errorLine(r) {
  return r.stdout.split('\n').find((l) => l.startsWith('::error::')) || '';
}

// callerIdentity runs GetCallerIdentity with the AWS SDK for JavaScript in
// a later step's environment (what the step exported, nothing else of AWS).
function callerIdentity(exported) {
  const script = `
    import { STSClient, GetCallerIdentityCommand } from '@aws-sdk/client-sts';
    try {
      const r = await new STSClient({}).send(new GetCallerIdentityCommand({}));
      console.log(JSON.stringify({ account: r.Account, arn: r.Arn }));
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

const POLICY = JSON.stringify({
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: 'arn:aws:s3:::acme-artifacts/*' }],
});

test('session tags on the keyless path: web_identity carries the same tags, transitive keys and source identity as assume_role; session-policy reaches STS in both modes', async (t) => {
  const runner = newRunner();
  t.after(() => runner.cleanup());
  const seen = {};
  for (const mapping of ['web-aws-tagged', 'web-aws-wi']) {
    const r = await runStep(runner, {
      inputs: { 'bridge-url': bridge, mapping, 'duration-seconds': '900', 'session-policy': POLICY },
    });
    assert.equal(r.code, 0, `${mapping}: ${r.stdout}${r.stderr}`);
    const key = r.outputs['access-key-id'];
    assert.equal(maskProblem(r, [key, r.outputs['secret-access-key'], r.outputs['session-token']]), '');
    const call = (await calls()).sts.find((c) => c.issued_access_key_id === key);
    assert.ok(call, `${mapping}: no STS call issued ${key.slice(0, 4)}…`);
    seen[mapping] = { call, issuance: r.outputs['issuance-id'], env: r.env };
  }
  const ar = seen['web-aws-tagged'].call;
  const wi = seen['web-aws-wi'].call;
  assert.equal(ar.action, 'AssumeRole');
  assert.equal(ar.role_arn, 'arn:aws:iam::123456789012:role/web-tagged');
  assert.equal(wi.action, 'AssumeRoleWithWebIdentity');
  assert.equal(wi.role_arn, 'arn:aws:iam::123456789012:role/web-wi');
  // Each session's issuance_id tag is its own step's; every other tag,
  // the transitive keys and the source identity are the same.
  assert.equal(ar.tags.issuance_id, seen['web-aws-tagged'].issuance);
  assert.equal(wi.tags.issuance_id, seen['web-aws-wi'].issuance);
  const rest = (tags) => Object.fromEntries(Object.entries(tags).filter(([k]) => k !== 'issuance_id'));
  assert.deepEqual(rest(wi.tags), rest(ar.tags));
  assert.equal(ar.tags['cost-center'], 'ci-4711');
  assert.equal(ar.tags.repository, 'acme/web');
  assert.deepEqual(wi.transitive_tag_keys, ['repository', 'cost-center']);
  assert.deepEqual(ar.transitive_tag_keys, wi.transitive_tag_keys);
  assert.match(ar.source_identity, /^gh-\d+$/);
  assert.equal(wi.source_identity, ar.source_identity);
  assert.equal(ar.policy, POLICY);
  assert.equal(wi.policy, POLICY);

  // The keyless session's credentials work in a later step.
  const id = JSON.parse((await callerIdentity(seen['web-aws-wi'].env)).stdout);
  assert.equal(id.error, undefined, `${id.error}: ${id.message}`);
});

test('session-policy that is not a JSON policy document is refused before any request', async (t) => {
  const runner = newRunner();
  t.after(() => runner.cleanup());
  const before = (await calls()).sts.length;
  const r = await runStep(runner, { inputs: { 'bridge-url': bridge, mapping: 'web-aws-tagged', 'session-policy': 's3:*' } });
  assert.equal(r.code, 1);
  assert.match(errorLine(r), /session-policy must be a JSON policy document/);
  assert.equal((await calls()).sts.length, before);
});

test('scopes: a gcp access token for a subset of the mapping\'s scopes; a scope the mapping lacks is refused by the bridge', async (t) => {
  const runner = newRunner();
  t.after(() => runner.cleanup());
  const sa = need('OIDC_BRIDGE_TEST_SCOPED_SA');
  const readOnly = 'https://www.googleapis.com/auth/devstorage.read_only';
  const r = await runStep(runner, { inputs: { 'bridge-url': bridge, mapping: 'web-gcp-scoped', scopes: readOnly } });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(r.outputs['service-account'], sa);
  assert.equal(maskProblem(r, [r.outputs['access-token']]), '');
  let mints = (await calls()).gcp.filter((c) => c.service_account === sa);
  assert.deepEqual(mints.map((c) => c.scopes), [[readOnly]]);

  // Without the input: the mapping's scopes, both.
  const all = await runStep(runner, { inputs: { 'bridge-url': bridge, mapping: 'web-gcp-scoped' } });
  assert.equal(all.code, 0, all.stdout + all.stderr);
  mints = (await calls()).gcp.filter((c) => c.service_account === sa);
  assert.deepEqual(mints.at(-1).scopes, ['https://www.googleapis.com/auth/cloud-platform', readOnly]);

  // Never more: a scope the mapping lacks fails the step at the bridge,
  // and nothing reaches Google.
  const wider = await runStep(runner, {
    inputs: { 'bridge-url': bridge, mapping: 'web-gcp-scoped', scopes: `${readOnly}, https://www.googleapis.com/auth/compute` },
  });
  assert.equal(wider.code, 1);
  assert.match(errorLine(wider), /invalid_request \(HTTP 400\)/);
  assert.equal((await calls()).gcp.filter((c) => c.service_account === sa).length, mints.length);
});
