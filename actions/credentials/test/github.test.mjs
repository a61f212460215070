// The bundled action (dist/index.js) with github mappings' installation
// tokens, from the real bridge: masked before anything prints them,
// exported as GITHUB_TOKEN and GH_TOKEN, git-credentials making the real git
// push to another repository over HTTPS with x-access-token:<token>, the
// post step revoking each token and undoing git's configuration; `mappings`
// with github mappings. Run by the Go test TestAction
// (test/e2e/action_test.go), which provides the ID-token stand-in, the
// bridge with a GitHub App registered, and GitHub's fake as the git host
// (git-http-backend behind a check of the installation tokens it issued:
// live, the repository in their scope, contents: write to push), which
// then counts every token revoked and every ledger row marked. A stand-in
// bridge remains for what the real one does not do: a revocation that
// fails (502), which must be a warning.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { maskProblem, need, newRunner, runStep } from './runner.mjs';

const gitURL = need('OIDC_BRIDGE_TEST_GIT_URL');
const gitCA = need('OIDC_BRIDGE_TEST_GIT_CA');
const bridge = need('OIDC_BRIDGE_TEST_BRIDGE_URL');
const git = need('OIDC_BRIDGE_TEST_GIT');
const UUID = '0193b9e2-6c1e-7c3a-9f1e-2a4b5c6d7e8f';

// The stand-in bridge (for a revocation that fails):
// /<case>/v1/exchange answers the case's token;
// /<case>/v1/credentials/revoke records the token and answers the case's
// revocation status.
const cases = new Map();
const revoked = [];
let server;
let base;

before(async () => {
  server = http.createServer((req, res) => {
    const m = req.url.match(/^\/(\w+)\/v1\/(exchange|credentials\/revoke)$/);
    const c = m && cases.get(m[1]);
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      if (!c || req.method !== 'POST') {
        res.writeHead(404).end();
        return;
      }
      res.setHeader('content-type', 'application/json');
      if (m[2] === 'exchange') {
        const exp = new Date(Date.now() + 3600e3).toISOString();
        res.end(JSON.stringify({ issuance_id: UUID, mapping: 'push-other', provider: 'github', expires_at: exp, credentials: {
          token: c.token, token_type: 'Bearer', expires_at: exp, repositories: ['acme/other'], permissions: { contents: 'write' },
          api_url: `${gitURL}/api/v3/`, server_url: `${gitURL}/`,
        } }));
        return;
      }
      revoked.push({ case: m[1], auth: req.headers.authorization, body: JSON.parse(body) });
      res.writeHead(c.revokeStatus || 200);
      res.end(c.revokeStatus && c.revokeStatus !== 200
        ? JSON.stringify({ error: 'provider_error', message: 'GitHub answered 500' })
        : JSON.stringify({ credential_id: 'tok_0123456789abcdef', revoked_at: new Date().toISOString() }));
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${server.address().port}`;
});

after(() => {
  server.closeAllConnections();
  server.close();
});

// gitRun runs the real git with a later step's environment.
function gitRun(args, env, cwd) {
  return new Promise((resolve, reject) => {
    const child = spawn(git, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}

// stepEnv is what a later step's process sees: the runner's environment
// and the job's GITHUB_ENV so far (an empty value unsets, as git reads it).
function stepEnv(runner, ...exported) {
  const env = {
    PATH: process.env.PATH, HOME: path.join(runner.temp, 'home'), GIT_CONFIG_NOSYSTEM: '1', GIT_TERMINAL_PROMPT: '0',
    GIT_SSL_CAINFO: gitCA, GIT_AUTHOR_NAME: 'ci', GIT_AUTHOR_EMAIL: 'ci@example.com', GIT_COMMITTER_NAME: 'ci', GIT_COMMITTER_EMAIL: 'ci@example.com',
  };
  for (const e of exported) Object.assign(env, e);
  return env;
}

// withToken runs git with token as the only credential (an inline helper,
// the token in the environment), whatever the action configured.
function withToken(token, args, env, cwd) {
  return gitRun(['-c', 'credential.helper=', '-c', 'credential.helper=!f() { echo username=x-access-token; echo "password=$TOKEN"; }; f', ...args],
    { ...env, TOKEN: token }, cwd);
}

async function newWorkTree(runner, name) {
  const dir = path.join(runner.temp, name);
  fs.mkdirSync(dir);
  fs.mkdirSync(path.join(runner.temp, 'home'), { recursive: true });
  const env = stepEnv(runner);
  for (const args of [['init', '-q', '-b', 'main', '.'], ['commit', '-q', '--allow-empty', '-m', name]]) {
    const r = await gitRun(args, env, dir);
    assert.equal(r.code, 0, r.out);
  }
  return dir;
}

describe('github with git-credentials, from the real bridge', () => {
  const runner = newRunner();
  let main;
  let work;
  let token;
  before(async () => {
    main = await runStep(runner, { inputs: { 'bridge-url': bridge, mapping: 'gh-push', 'git-credentials': 'true' } });
    token = main.outputs.token;
    work = await newWorkTree(runner, 'work');
  });
  after(() => runner.cleanup());

  test('the step succeeds; the token is masked before anything else prints it', () => {
    assert.equal(main.code, 0, main.stdout + main.stderr);
    assert.match(token, /^ghs_\w+$/);
    assert.equal(maskProblem(main, [token]), '');
    const lines = main.stdout.split('\n').filter((l) => l.includes(token));
    assert.deepEqual(lines, [`::add-mask::${token}`]);
  });

  test('outputs token, github-api-url, github-server-url, repositories; GITHUB_TOKEN and GH_TOKEN exported', () => {
    assert.equal(main.outputs['github-api-url'], `${gitURL}/api/v3/`);
    assert.equal(main.outputs['github-server-url'], `${gitURL}/`);
    assert.equal(main.outputs.repositories, 'acme/infra,acme/other');
    assert.equal(main.env.GITHUB_TOKEN, token);
    assert.equal(main.env.GH_TOKEN, token);
    // 127.0.0.1:port is not github.com: a GitHub Enterprise Server's variables.
    assert.equal(main.env.GH_HOST, new URL(gitURL).host);
  });

  test('git is configured through the environment, from a file under RUNNER_TEMP, not the workspace', () => {
    assert.equal(main.env.GIT_CONFIG_COUNT, '1');
    assert.equal(main.env.GIT_CONFIG_KEY_0, 'include.path');
    const cfg = main.env.GIT_CONFIG_VALUE_0;
    assert.equal(path.dirname(path.dirname(cfg)), runner.temp);
    assert.equal(fs.statSync(cfg).mode & 0o777, 0o600);
    assert.ok(!fs.readFileSync(cfg, 'utf8').includes(token), 'the configuration holds the token');
    assert.equal(fs.existsSync(path.join(runner.temp, '_workspace_must_stay_empty')), false);
  });

  test('the real git pushes to another repository with the token; nothing shows it', async () => {
    const r = await gitRun(['push', `${gitURL}/acme/other.git`, 'HEAD:refs/heads/from-action'], stepEnv(runner, main.env), work);
    assert.equal(r.code, 0, r.out);
    assert.ok(!r.out.includes(token), 'git printed the token');
    const ls = await gitRun(['ls-remote', `${gitURL}/acme/other.git`, 'refs/heads/from-action'], stepEnv(runner, main.env), work);
    assert.match(ls.out, /refs\/heads\/from-action/);
  });

  test('a repository outside the token\'s scope is refused', async () => {
    const r = await gitRun(['push', `${gitURL}/acme/web.git`, 'HEAD:refs/heads/from-action'], stepEnv(runner, main.env), work);
    assert.notEqual(r.code, 0, r.out);
    assert.ok(!r.out.includes(token), 'git printed the token');
  });

  test('without the action\'s configuration the push is refused (the server wants the token)', async () => {
    const r = await gitRun(['push', `${gitURL}/acme/other.git`, 'HEAD:refs/heads/no-helper'], stepEnv(runner), work);
    assert.notEqual(r.code, 0, r.out);
  });

  test('the post step revokes the token, undoes git\'s configuration and deletes the files', async () => {
    const before = await withToken(token, ['ls-remote', `${gitURL}/acme/other.git`], stepEnv(runner), work);
    assert.equal(before.code, 0, `the token alone works before the post step: ${before.out}`);
    const post = await runStep(runner, { inputs: { 'bridge-url': bridge }, state: main.state });
    assert.equal(post.code, 0, post.stdout + post.stderr);
    assert.match(post.stdout, /revoked the github token \S+/);
    assert.doesNotMatch(post.stdout, /::warning::/);
    assert.ok(!post.stdout.split('\n').some((l) => l.includes(token) && !l.startsWith('::add-mask::')), 'the post step logged the token');
    assert.ok(!post.stderr.includes(token));
    for (const k of ['GITHUB_TOKEN', 'GH_TOKEN', 'GIT_CONFIG_KEY_0', 'GIT_CONFIG_VALUE_0', 'GIT_CONFIG_COUNT']) assert.equal(post.env[k], '', k);
    assert.equal(fs.existsSync(main.env.GIT_CONFIG_VALUE_0), false);
    // GitHub refuses the token now, even presented directly.
    const r = await withToken(token, ['push', `${gitURL}/acme/other.git`, 'HEAD:refs/heads/after-post'], stepEnv(runner), work);
    assert.notEqual(r.code, 0, r.out);
    assert.match(r.out, /Invalid username or token|Authentication failed/);
  });
});

// A stand-in bridge: the real one does not fail a revocation on demand.
describe('github: a wrong token fails the push; a failed revocation is a warning', () => {
  const runner = newRunner();
  const wrong = 'ghs_notTheTokenTheServerWants000000000000';
  cases.set('wrong', { token: wrong, revokeStatus: 502 });
  let main;
  before(async () => {
    main = await runStep(runner, { inputs: { 'bridge-url': `${base}/wrong`, 'git-credentials': 'true' }, env: { GIT_CONFIG_COUNT: '2' } });
  });
  after(() => runner.cleanup());

  test('the job\'s own GIT_CONFIG entries are kept: the include comes after them', () => {
    assert.equal(main.code, 0, main.stdout + main.stderr);
    assert.equal(main.env.GIT_CONFIG_KEY_2, 'include.path');
    assert.equal(main.env.GIT_CONFIG_COUNT, '3');
  });

  test('git push with a token the server refuses fails, without showing it', async () => {
    const work = await newWorkTree(runner, 'work');
    const env = stepEnv(runner, main.env);
    delete env.GIT_CONFIG_COUNT; // the job's own two entries do not exist here
    env.GIT_CONFIG_COUNT = '3';
    env.GIT_CONFIG_KEY_0 = 'core.abbrev';
    env.GIT_CONFIG_VALUE_0 = '12';
    env.GIT_CONFIG_KEY_1 = 'core.abbrev';
    env.GIT_CONFIG_VALUE_1 = '12';
    const r = await gitRun(['push', `${gitURL}/acme/other.git`, 'HEAD:refs/heads/wrong'], env, work);
    assert.notEqual(r.code, 0, r.out);
    assert.ok(!r.out.includes(wrong), r.out);
  });

  test('the post step warns that the revocation failed and succeeds; GIT_CONFIG_COUNT is restored', async () => {
    const post = await runStep(runner, { inputs: { 'bridge-url': `${base}/wrong` }, state: main.state, env: { GIT_CONFIG_COUNT: '2' } });
    assert.equal(post.code, 0, post.stdout + post.stderr);
    assert.match(post.stdout, /::warning::oidc-bridge: the github token was not revoked \(it expires on its own\): .*provider_error/);
    assert.doesNotMatch(post.stdout, /::error::/);
    assert.equal(post.env.GIT_CONFIG_COUNT, '2');
    assert.ok(!post.stdout.split('\n').some((l) => l.includes(wrong) && !l.startsWith('::add-mask::')));
  });

  test('git-credentials refuses a mapping of another provider before asking', async () => {
    const r = await runStep(runner, { inputs: { 'bridge-url': `${base}/wrong`, provider: 'aws', 'git-credentials': 'true' } });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /::error::.*git-credentials needs a github mapping/);
  });
});

describe('mappings: github tokens of several mappings, each revoked by the post step', () => {
  const runner = newRunner();
  let main;
  let work;
  let push;
  let read;
  before(async () => {
    main = await runStep(runner, { inputs: { 'bridge-url': bridge, mappings: 'gh-push\n# read-only\ngh-read\n' } });
    push = main.outputs['gh-push-token'];
    read = main.outputs['gh-read-token'];
    work = await newWorkTree(runner, 'work');
  });
  after(() => runner.cleanup());

  test('the step succeeds: a token per mapping, masked first, in <mapping>-github-token files', () => {
    assert.equal(main.code, 0, main.stdout + main.stderr);
    assert.match(push, /^ghs_\w+$/);
    assert.match(read, /^ghs_\w+$/);
    assert.notEqual(push, read);
    assert.equal(maskProblem(main, [push, read]), '');
    assert.equal(main.outputs['gh-push-repositories'], 'acme/infra,acme/other');
    assert.equal(main.outputs['gh-read-repositories'], 'acme/web');
    for (const [m, tok] of [['gh-push', push], ['gh-read', read]]) {
      const f = main.outputs[`${m}-token-file`];
      assert.equal(path.basename(f), `${m}-github-token`);
      assert.equal(path.dirname(path.dirname(f)), runner.temp);
      assert.equal(fs.statSync(f).mode & 0o777, 0o600);
      assert.equal(fs.readFileSync(f, 'utf8').trim(), tok);
      assert.equal(main.outputs[`${m}-provider`], 'github');
    }
    // No single GITHUB_TOKEN among several.
    assert.equal(main.env.GITHUB_TOKEN, undefined);
  });

  test('each token works within its scope and its permission only', async () => {
    const env = stepEnv(runner);
    let r = await withToken(push, ['push', `${gitURL}/acme/other.git`, 'HEAD:refs/heads/from-mappings'], env, work);
    assert.equal(r.code, 0, r.out);
    r = await withToken(read, ['ls-remote', `${gitURL}/acme/web.git`], env, work);
    assert.equal(r.code, 0, r.out);
    r = await withToken(read, ['push', `${gitURL}/acme/web.git`, 'HEAD:refs/heads/from-mappings'], env, work);
    assert.notEqual(r.code, 0, `contents: read pushed: ${r.out}`);
    r = await withToken(read, ['ls-remote', `${gitURL}/acme/other.git`], env, work);
    assert.notEqual(r.code, 0, `gh-read's token reached acme/other: ${r.out}`);
  });

  test('git-credentials with mappings is refused before any exchange', async () => {
    const r = await runStep(runner, { inputs: { 'bridge-url': bridge, mappings: 'gh-push\ngh-read', 'git-credentials': 'true' } });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /::error::.*git-credentials takes one github `mapping`, not `mappings`/);
    assert.doesNotMatch(r.stdout, /::add-mask::ghs_/);
  });

  test('the post step revokes both tokens: GitHub refuses them', async () => {
    const post = await runStep(runner, { inputs: { 'bridge-url': bridge }, state: main.state });
    assert.equal(post.code, 0, post.stdout + post.stderr);
    assert.equal(post.stdout.split('\n').filter((l) => /revoked the github token \S+/.test(l)).length, 2, post.stdout);
    assert.doesNotMatch(post.stdout, /::warning::/);
    assert.ok(!post.stdout.split('\n').some((l) => (l.includes(push) || l.includes(read)) && !l.startsWith('::add-mask::')));
    const env = stepEnv(runner);
    let r = await withToken(push, ['ls-remote', `${gitURL}/acme/other.git`], env, work);
    assert.notEqual(r.code, 0, r.out);
    r = await withToken(read, ['ls-remote', `${gitURL}/acme/web.git`], env, work);
    assert.notEqual(r.code, 0, r.out);
    assert.equal(fs.existsSync(main.outputs['gh-push-token-file']), false);
  });
});
