// Unit tests of the action's pure parts: retry classification, backoff,
// Retry-After, hints, and what each provider's credentials become.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ActionError, backoffDelay, hintFor, isRetryableStatus, parseRetryAfter,
} from '../src/errors.mjs';
import { plan } from '../src/credentials.mjs';

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

test('plan: aws', () => {
  const p = plan('aws', { access_key_id: 'ASIAX', secret_access_key: 's', session_token: 't', region: 'eu-west-1', expiration: 'e' });
  assert.deepEqual(p.secrets, ['ASIAX', 's', 't']);
  assert.deepEqual(p.env, { AWS_ACCESS_KEY_ID: 'ASIAX', AWS_SECRET_ACCESS_KEY: 's', AWS_SESSION_TOKEN: 't', AWS_REGION: 'eu-west-1', AWS_DEFAULT_REGION: 'eu-west-1' });
  assert.equal(p.outputs['secret-access-key'], 's');
  assert.throws(() => plan('aws', { access_key_id: 'ASIAX' }), /lack "secret_access_key"/);
});

test('plan: gcp, azure, jwt, and unknown providers', () => {
  const g = plan('gcp', { access_token: 'ya29', token_type: 'Bearer', service_account: 'sa', expires_at: 'e' });
  assert.deepEqual(g.secrets, ['ya29']);
  assert.deepEqual(g.env, { CLOUDSDK_AUTH_ACCESS_TOKEN: 'ya29', GOOGLE_OAUTH_ACCESS_TOKEN: 'ya29' });
  assert.equal(g.files['gcp-access-token'].env, 'CLOUDSDK_AUTH_ACCESS_TOKEN_FILE');
  const a = plan('azure', { access_token: 'eyJ', tenant_id: 't', client_id: 'c', scope: 's' });
  assert.deepEqual(a.env, {});
  assert.equal(a.outputs['access-token'], 'eyJ');
  const j = plan('jwt', { token: 'eyJ', audience: 'aud' });
  assert.equal(j.outputs.token, 'eyJ');
  assert.equal(j.files.token.output, 'token-file');
  assert.throws(() => plan('oracle', {}), /does not know/);
  assert.throws(() => plan('aws', null), /without a credentials object/);
});
