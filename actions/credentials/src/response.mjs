// What the action takes from the bridge's answer, and how it reads it.
// The bridge is a remote party: whatever of its answer reaches the job's log
// could otherwise be a workflow command (a line starting with `::`, such as
// ::stop-commands:: or ::add-mask::, or the legacy `##[...]` form), so every
// field the log shows is checked against its format, and the only free text
// (an error's message) is made one inert line. The body is read through a
// limit, never buffered whole first.
// No @actions/core here, so the unit tests load it directly.

import { ActionError, hintFor } from './errors.mjs';
import { safeText } from './text.mjs';

export { hasUnprintable, safeText, MAX_TEXT } from './text.mjs';

// MAX_BODY_BYTES is the largest answer the action reads. A 200 of the
// contract is a few KiB (an AWS session token is the largest part).
export const MAX_BODY_BYTES = 64 * 1024;

export const PROVIDERS = ['aws', 'gcp', 'azure', 'jwt', 'github'];

// The formats of the contract's fields (docs/api.md, POST /v1/exchange).
export const MAPPING_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
export const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
export const ERROR_CODE = /^[a-z_]{1,64}$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

// isRFC3339 reports whether s is an RFC 3339 date-time that parses.
export function isRFC3339(s) {
  return typeof s === 'string' && RFC3339.test(s) && !Number.isNaN(Date.parse(s));
}

// invalid is the error for a 200 answer that breaks the contract. It names
// the field and the format, never the value (a hostile value would be the
// payload).
function invalid(field, want) {
  return new ActionError('invalid_response',
    `the bridge answered 200 with ${field} that is not ${want}: refused, nothing exported`,
    { status: 200, hint: 'the bridge-url must be an oidc-bridge (or the bridge is broken or not the one you trust); ask its admins' });
}

// checkExchange checks a parsed 200 body of POST /v1/exchange and returns
// its fields. Every field the log shows must have the contract's format;
// the credentials object is checked by plan().
export function checkExchange(r) {
  if (r === null || typeof r !== 'object' || Array.isArray(r)) throw invalid('a body', 'a JSON object');
  if (typeof r.issuance_id !== 'string' || !UUID.test(r.issuance_id)) throw invalid('an issuance_id', 'a UUID');
  if (typeof r.mapping !== 'string' || !MAPPING_NAME.test(r.mapping)) {
    throw invalid('a mapping', 'a mapping name (1-64 of a-z, 0-9, ".", "_", "-")');
  }
  if (typeof r.provider !== 'string' || !PROVIDERS.includes(r.provider)) throw invalid('a provider', `one of ${PROVIDERS.join(', ')}`);
  if (!isRFC3339(r.expires_at)) throw invalid('an expires_at', 'an RFC 3339 date-time');
  if (r.credentials === null || typeof r.credentials !== 'object' || Array.isArray(r.credentials)) {
    throw invalid('credentials', 'a JSON object');
  }
  return { issuanceId: r.issuance_id, mapping: r.mapping, provider: r.provider, expiresAt: r.expires_at, credentials: r.credentials };
}

// errorFromBody turns a non-200 answer into an ActionError: the error code
// only if it has the contract's form (else http_<status>), the issuance id
// only if it is a UUID, and the message as safe text.
export function errorFromBody(status, text, url) {
  let e = {};
  try {
    e = JSON.parse(text);
  } catch {
    // Not the bridge's JSON (a proxy or load balancer answered).
  }
  if (e === null || typeof e !== 'object') e = {};
  let code = `http_${status}`;
  let note = '';
  if (typeof e.error === 'string' && ERROR_CODE.test(e.error)) {
    code = e.error;
  } else if (e.error !== undefined) {
    note = ' (its error code is not of the contract\'s form and is not shown)';
  }
  const message = typeof e.message === 'string' && safeText(e.message) !== ''
    ? safeText(e.message) + note
    : `the server at ${url} answered HTTP ${status}${status >= 300 && status < 400 ? ' (a redirect: check bridge-url)' : ''}${note}`;
  return new ActionError(code, message, {
    status,
    hint: hintFor(code),
    issuanceId: typeof e.issuance_id === 'string' && UUID.test(e.issuance_id) ? e.issuance_id : undefined,
  });
}

// BodyTooLarge is the error of readLimited.
export class BodyTooLarge extends Error {}

// readLimited reads a response stream (an http.IncomingMessage) as UTF-8,
// failing with BodyTooLarge as soon as it passes limit bytes (or at once
// when its Content-Length says it will); the stream is then destroyed, the
// rest never read.
export async function readLimited(stream, limit = MAX_BODY_BYTES) {
  const declared = Number(stream.headers?.['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    stream.destroy();
    throw new BodyTooLarge(`the answer is ${declared} bytes, more than ${limit}`);
  }
  const chunks = [];
  let n = 0;
  for await (const chunk of stream) {
    n += chunk.length;
    if (n > limit) {
      stream.destroy();
      throw new BodyTooLarge(`the answer is more than ${limit} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
