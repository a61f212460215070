// What to fix, by the error code of the oidc-bridge API contract
// (POST /v1/exchange), and which answers are worth another attempt.
// Pure functions: no I/O, no @actions/core, so the tests load them directly.

import { safeText } from './text.mjs';

export const PERMISSION_HINT =
  'give the job `permissions: id-token: write` (in the workflow or the job); ' +
  'GitHub gives pull requests from forks no ID token';

export const HINTS = {
  invalid_request:
    'check the inputs mapping, provider and duration-seconds (from the provider\'s minimum, ' +
    'AWS 900, up to the mapping\'s max_duration_seconds)',
  invalid_token:
    'the bridge did not accept the job\'s ID token: the `audience` input (default: the bridge URL) ' +
    'must be one of the audiences registered for this issuer on the bridge, the job needs ' +
    '`permissions: id-token: write`, and the runner\'s clock must be right',
  untrusted_issuer:
    'the job\'s token issuer (https://token.actions.githubusercontent.com, or your GitHub ' +
    'Enterprise Server\'s) is not a registered, enabled issuer of this bridge: ask its admins to register it',
  no_matching_mapping:
    'no enabled mapping admits this job\'s claims (repository, ref, environment, event, workflow): ' +
    'check the `mapping` input, or ask the bridge\'s admins (`oidc-bridge explain` shows the condition that failed)',
  ambiguous_mapping:
    'several mappings admit this job: name one with the `mapping` input (or narrow with `provider`)',
  token_replayed:
    'this ID token was already exchanged (a token is exchanged once, for one mapping); each step asks for a fresh one, so run the job again',
  quota_exceeded:
    'a quota of the mapping is spent (per hour or per job); wait until it frees or ask the bridge\'s admins to raise it',
  rate_limited: 'the bridge is rate limiting this client or issuer; try again later',
  provider_error:
    'the cloud refused or failed to mint the credential (its error code is in the message): ' +
    'ask the bridge\'s admins to check the mapping\'s target (role trust, service account, app registration)',
  unavailable: 'the bridge or one of its dependencies is down; nothing was issued, try again later',
};

// hintFor returns what to fix for a contract error code.
export function hintFor(code) {
  return (Object.hasOwn(HINTS, code) && HINTS[code]) || 'see the oidc-bridge API contract for this error';
}

// isRetryableStatus: 408, 429 and every 5xx are worth another attempt, except
// a 502 without Retry-After: the bridge sends Retry-After on a 502 only when
// the cloud was failing, not when it refused (AccessDenied, an unknown app),
// which no retry will change. Any other answer (400, 401, 403, 409, ...) is a
// decision too.
export function isRetryableStatus(status, retryAfter) {
  if (status === 502) return retryAfter !== undefined;
  return status === 408 || status === 429 || (status >= 500 && status <= 599);
}

// parseRetryAfter reads a Retry-After header (delta-seconds or an HTTP date)
// as milliseconds from now, or undefined when absent or unreadable.
export function parseRetryAfter(value, now = Date.now()) {
  if (value === undefined || value === null) return undefined;
  const s = String(Array.isArray(value) ? value[0] : value).trim();
  if (s === '') return undefined;
  if (/^\d+$/.test(s)) return Number(s) * 1000;
  const t = Date.parse(s);
  if (Number.isNaN(t)) return undefined;
  return Math.max(0, t - now);
}

// backoffDelay is the wait before retry number attempt (1 for the first
// retry): exponential from baseMs, capped at capMs, with "equal jitter"
// (half fixed, half random) so that many jobs failing together spread out.
// A Retry-After the server sent is a floor, plus a little jitter.
export function backoffDelay(attempt, { baseMs = 1000, capMs = 20000, retryAfterMs, random = Math.random } = {}) {
  const exp = Math.min(capMs, baseMs * 2 ** (attempt - 1));
  const jittered = exp / 2 + random() * (exp / 2);
  if (retryAfterMs !== undefined) {
    return retryAfterMs + random() * Math.min(1000, baseMs);
  }
  return jittered;
}

// ActionError is a failure with the contract's error code and what to fix.
export class ActionError extends Error {
  constructor(code, message, { hint, status, issuanceId, attempts } = {}) {
    super(message);
    this.name = 'ActionError';
    this.code = code;
    this.hint = hint;
    this.status = status;
    this.issuanceId = issuanceId;
    this.attempts = attempts;
  }

  // describe is the one line the job log shows. Every part is made safe
  // text (one line, no control characters, no command at its start): parts
  // can come from the bridge or the network (a TLS error names what the
  // server's certificate says).
  describe() {
    let s = `oidc-bridge: ${safeText(this.code, 64)}`;
    if (this.status) s += ` (HTTP ${Number(this.status)})`;
    s += `: ${safeText(this.message, 1000)}`;
    if (this.issuanceId) s += ` [issuance ${safeText(this.issuanceId, 64)}]`;
    if (this.attempts > 1) s += ` after ${this.attempts} attempts`;
    if (this.hint) s += `. To fix: ${this.hint}`;
    return s;
  }
}
