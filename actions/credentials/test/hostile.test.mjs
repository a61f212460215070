// The bundled action (dist/index.js) against a hostile bridge: a server
// that answers with workflow-command injections in every field the action
// reads, and with bodies larger than the action reads. Nothing the bridge
// says may become a workflow command: on the step's stdout and stderr, the
// only lines starting with `::` (after blanks) are the action's own
// (add-mask of a credential or the ID token, error, warning, debug), and no
// line carries the legacy `##[` form. Run by the Go test TestAction
// (test/e2e/action_test.go), which provides the ID-token stand-in.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import { newRunner, runStep } from './runner.mjs';

const UUID = '0193b9e2-6c1e-7c3a-9f1e-2a4b5c6d7e8f';
const AKID = 'ASIAQWERTYUIOPASDFGH';
const future = () => new Date(Date.now() + 15 * 60e3).toISOString();

// Every payload carries "pwned": it may appear only inside the action's own
// ::error:: or ::warning:: line, made one line of safe text.
const PAYLOADS = [
  'x\n::stop-commands::pwned',
  'x\r\n::warning::pwned',
  'x\n   ::add-mask::pwned',
  'x\r::set-output name=mapping::pwned',
  'x\u2028::error::pwned',
  'x\n##[warning]pwned',
  '::warning::pwned',
  '\u001b[2K\u001b[1G::notice::pwned',
];

function awsCreds() {
  return {
    access_key_id: AKID, secret_access_key: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', session_token: 'IQoJb3JpZ2luX2VjEXAMPLE+token/x==',
    expiration: future(), region: 'eu-west-1',
  };
}

function goodAnswer() {
  return { issuance_id: UUID, mapping: 'web-aws', provider: 'aws', expires_at: future(), credentials: awsCreds() };
}

// answers maps a case name to what the hostile bridge does.
const answers = new Map();
let caseSeq = 0;
function addCase(fn) {
  const name = `c${++caseSeq}`;
  answers.set(name, fn);
  return name;
}
function json(status, body) {
  return (req, res) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
  };
}

let server;
let base;

before(async () => {
  server = http.createServer((req, res) => {
    const m = req.url.match(/^\/(c\d+)\/v1\/exchange$/);
    const fn = m && answers.get(m[1]);
    req.resume();
    if (!fn || req.method !== 'POST') {
      res.writeHead(404).end();
      return;
    }
    req.on('end', () => fn(req, res));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${server.address().port}`;
});

after(() => {
  server.closeAllConnections();
  server.close();
});

// commandProblem describes the first line of the step's output that the
// runner would read as a command the action did not mean, or ''.
function commandProblem(r) {
  for (const [stream, text] of [['stdout', r.stdout], ['stderr', r.stderr]]) {
    for (const line of text.split(/\r\n|\r|\n|\u2028|\u2029/)) {
      const l = line.trimStart();
      if (l.includes('##[')) return `${stream}: a legacy command: ${JSON.stringify(line)}`;
      if (!l.startsWith('::')) continue;
      if (!/^::(add-mask|error|warning|debug)::/.test(l)) return `${stream}: an injected command: ${JSON.stringify(line)}`;
      if (l.startsWith('::add-mask::') && l.includes('pwned')) return `${stream}: an injected mask: ${JSON.stringify(line)}`;
    }
  }
  return '';
}

// each runs fn over items, n at a time (each step is a Node process).
async function each(items, fn, n = 4) {
  const queue = [...items];
  await Promise.all(Array.from({ length: n }, async () => {
    while (queue.length > 0) await fn(queue.shift());
  }));
}

async function step(name, inputs = {}) {
  const runner = newRunner();
  try {
    return await runStep(runner, {
      inputs: { 'bridge-url': `${base}/${name}`, audience: 'https://bridge.example.com', retries: '0', ...inputs },
    });
  } finally {
    runner.cleanup();
  }
}

// refused checks a step the action failed: no injected command, nothing
// exported or set, the one ::error:: line matching want.
function assertRefused(r, want, label) {
  assert.equal(r.code, 1, `${label}: ${r.stdout}${r.stderr}`);
  assert.equal(commandProblem(r), '', label);
  assert.deepEqual(r.env, {}, label);
  assert.deepEqual(r.outputs, {}, label);
  const errors = r.stdout.split('\n').filter((l) => l.startsWith('::error::'));
  assert.equal(errors.length, 1, `${label}: ${r.stdout}`);
  assert.match(errors[0], want, label);
}

test('the hostile bridge is otherwise a bridge: a well-formed answer is taken', async () => {
  const r = await step(addCase(json(200, goodAnswer())));
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(commandProblem(r), '');
  assert.equal(r.env.AWS_ACCESS_KEY_ID, AKID);
  assert.match(r.stdout, new RegExp(`issuance ${UUID}: aws credentials of mapping web-aws, expiring `));
});

test('a 200 with an injection in a logged field (mapping, issuance_id, expires_at, provider) is refused, the value not shown', async () => {
  const cases = ['mapping', 'issuance_id', 'expires_at', 'provider'].flatMap((field) => PAYLOADS.map((p, i) => [field, p, i]));
  await each(cases, async ([field, p, i]) => {
    const valid = { mapping: 'web-aws', issuance_id: UUID, expires_at: future(), provider: 'aws' }[field];
    // The payload after, or before, a valid value.
    const value = i % 2 ? `${p}${valid}` : `${valid}${p}`;
    const label = `${field} ${JSON.stringify(value)}`;
    const r = await step(addCase(json(200, { ...goodAnswer(), [field]: value })));
    assertRefused(r, new RegExp(`invalid_response \\(HTTP 200\\): the bridge answered 200 with an? ${field} that is not`), label);
    assert.doesNotMatch(r.stdout, /pwned/, label);
  });
});

test('a 200 with an injection in a credential or another credentials field is refused before anything is masked', async () => {
  const cases = [
    ['aws', 'access_key_id'], ['aws', 'secret_access_key'], ['aws', 'session_token'], ['aws', 'region'], ['aws', 'expiration'],
    ['gcp', 'access_token'], ['gcp', 'service_account'], ['azure', 'access_token'], ['azure', 'scope'], ['jwt', 'token'], ['jwt', 'audience'],
  ];
  const base = {
    aws: awsCreds(),
    gcp: { access_token: 'ya29.c.token', token_type: 'Bearer', service_account: 'deploy@p.iam.gserviceaccount.com', expires_at: future() },
    azure: { access_token: 'eyJ0eXAi.eyJhdWQi.sig', token_type: 'Bearer', scope: 'https://management.azure.com/.default', expires_at: future() },
    jwt: { token: 'eyJ0eXAi.eyJhdWQi.sig', token_type: 'Bearer', audience: 'https://deploy.example', expires_at: future() },
  };
  await each(cases.flatMap(([provider, field]) => PAYLOADS.slice(0, 3).map((p) => [provider, field, p])), async ([provider, field, p]) => {
    const label = `${provider} ${field} ${JSON.stringify(p)}`;
    const credentials = { ...base[provider], [field]: `${base[provider][field]}${p}` };
    const r = await step(addCase(json(200, { ...goodAnswer(), provider, credentials })));
    assertRefused(r, new RegExp(`oidc-bridge: the bridge's ${provider} credentials have an? "${field}"`), label);
    // Only the ID token was masked: no credential, nothing the bridge sent.
    assert.equal(r.stdout.split('\n').filter((l) => l.startsWith('::add-mask::')).length, 1, `${label}: ${r.stdout}`);
    assert.doesNotMatch(r.stdout, /pwned/, label);
  });
});

test('an error answer with injections in error, message and issuance_id: one safe ::error:: line', async () => {
  for (const status of [403, 503]) {
    for (const p of PAYLOADS) {
      const label = `${status} ${JSON.stringify(p)}`;
      const r = await step(addCase(json(status, { error: `no_matching_mapping${p}`, message: `denied${p}\n${p}`, issuance_id: `${UUID}${p}` })));
      assertRefused(r, new RegExp(`^::error::oidc-bridge: http_${status} \\(HTTP ${status}\\): denied`), label);
      assert.doesNotMatch(r.stdout, /\[issuance/, `${label}: an issuance id that is not a UUID was shown`);
      // The message is shown, as one line of safe text.
      assert.match(r.stdout, /pwned/, label);
    }
  }
  // A well-formed error answer is shown as it is.
  const ok = await step(addCase(json(403, { error: 'no_matching_mapping', message: 'no mapping admits arn:aws:iam::123456789012:role/x', issuance_id: UUID })));
  assertRefused(ok, new RegExp(`no_matching_mapping \\(HTTP 403\\): no mapping admits arn:aws:iam::123456789012:role/x \\[issuance ${UUID}\\]`), 'well-formed');
});

test('an injection in a retried error is one safe ::warning:: line', async () => {
  let n = 0;
  const name = addCase((req, res) => {
    if (++n === 1) return json(503, { error: 'unavailable', message: PAYLOADS.join(' ') })(req, res);
    return json(200, goodAnswer())(req, res);
  });
  const r = await step(name, { retries: '1' });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(commandProblem(r), '');
  assert.match(r.stdout, /^::warning::attempt 1 of 2: oidc-bridge: unavailable \(HTTP 503\): x /m);
});

test('an answer larger than 64 KiB is refused, with a Content-Length or streamed without one', async () => {
  const padded = JSON.stringify({ ...goodAnswer(), padding: 'a'.repeat(64 * 1024) });
  const r1 = await step(addCase(json(200, padded)));
  assertRefused(r1, /invalid_response \(HTTP 200\): the bridge's answer \(HTTP 200\) is larger than 65536 bytes: refused unread/, 'content-length');

  // Chunked, no Content-Length, without end: the action stops reading.
  let sent = 0;
  const name = addCase((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    const chunk = Buffer.alloc(16 * 1024, 'a');
    const pump = () => {
      while (!res.destroyed && sent < 512 * 1024 * 1024) {
        sent += chunk.length;
        if (!res.write(chunk)) {
          res.once('drain', pump);
          return;
        }
      }
    };
    res.write('{"padding": "');
    pump();
  });
  const r2 = await step(name);
  assertRefused(r2, /is larger than 65536 bytes: refused unread/, 'streamed');
  assert.ok(sent < 16 * 1024 * 1024, `the server sent ${sent} bytes before the action stopped reading`);
  // The error answers are capped too.
  const r3 = await step(addCase(json(503, { error: 'unavailable', message: 'm'.repeat(70 * 1024) })));
  assertRefused(r3, /invalid_response \(HTTP 503\): the bridge's answer \(HTTP 503\) is larger than 65536 bytes/, 'error answer');
});
