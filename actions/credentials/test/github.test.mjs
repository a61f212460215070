// The bundled action (dist/index.js) with a github mapping's installation
// token: masked before anything prints it, exported as GITHUB_TOKEN and
// GH_TOKEN, git-credentials making the real git push to another repository
// over HTTPS with x-access-token:<token>, and the post step revoking the
// token (best effort) and undoing git's configuration. Run by the Go test
// TestAction (test/e2e/action_test.go), which provides the ID-token
// stand-in and a git smart-HTTP server (git-http-backend) that wants the
// token. The bridge is a stand-in answering the wire contract's github
// credentials (bridge/api/github.go) until the github provider is merged.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { maskProblem, need, newRunner, runStep } from './runner.mjs';

const gitURL = need('OIDC_BRIDGE_TEST_GIT_URL');
const gitCA = need('OIDC_BRIDGE_TEST_GIT_CA');
const gitToken = need('OIDC_BRIDGE_TEST_GIT_TOKEN');
const git = need('OIDC_BRIDGE_TEST_GIT');
const UUID = '0193b9e2-6c1e-7c3a-9f1e-2a4b5c6d7e8f';

// The stand-in bridge: /<case>/v1/exchange answers the case's token;
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

describe('github with git-credentials', () => {
  const runner = newRunner();
  cases.set('ok', { token: gitToken });
  let main;
  let work;
  before(async () => {
    main = await runStep(runner, { inputs: { 'bridge-url': `${base}/ok`, mapping: 'push-other', 'git-credentials': 'true' } });
    work = await newWorkTree(runner, 'work');
  });
  after(() => runner.cleanup());

  test('the step succeeds; the token is masked before anything else prints it', () => {
    assert.equal(main.code, 0, main.stdout + main.stderr);
    assert.equal(maskProblem(main, [gitToken]), '');
    const lines = main.stdout.split('\n').filter((l) => l.includes(gitToken));
    assert.deepEqual(lines, [`::add-mask::${gitToken}`]);
  });

  test('outputs token, github-api-url, github-server-url, repositories; GITHUB_TOKEN and GH_TOKEN exported', () => {
    assert.equal(main.outputs.token, gitToken);
    assert.equal(main.outputs['github-api-url'], `${gitURL}/api/v3/`);
    assert.equal(main.outputs['github-server-url'], `${gitURL}/`);
    assert.equal(main.outputs.repositories, 'acme/other');
    assert.equal(main.env.GITHUB_TOKEN, gitToken);
    assert.equal(main.env.GH_TOKEN, gitToken);
    // 127.0.0.1:port is not github.com: a GitHub Enterprise Server's variables.
    assert.equal(main.env.GH_HOST, new URL(gitURL).host);
  });

  test('git is configured through the environment, from a file under RUNNER_TEMP, not the workspace', () => {
    assert.equal(main.env.GIT_CONFIG_COUNT, '1');
    assert.equal(main.env.GIT_CONFIG_KEY_0, 'include.path');
    const cfg = main.env.GIT_CONFIG_VALUE_0;
    assert.equal(path.dirname(path.dirname(cfg)), runner.temp);
    assert.equal(fs.statSync(cfg).mode & 0o777, 0o600);
    assert.ok(!fs.readFileSync(cfg, 'utf8').includes(gitToken), 'the configuration holds the token');
    assert.equal(fs.existsSync(path.join(runner.temp, '_workspace_must_stay_empty')), false);
  });

  test('the real git pushes to another repository with the token; nothing shows it', async () => {
    const r = await gitRun(['push', `${gitURL}/other.git`, 'HEAD:refs/heads/from-action'], stepEnv(runner, main.env), work);
    assert.equal(r.code, 0, r.out);
    assert.ok(!r.out.includes(gitToken), 'git printed the token');
    const ls = await gitRun(['ls-remote', `${gitURL}/other.git`, 'refs/heads/from-action'], stepEnv(runner, main.env), work);
    assert.match(ls.out, /refs\/heads\/from-action/);
  });

  test('without the action\'s configuration the push is refused (the server wants the token)', async () => {
    const r = await gitRun(['push', `${gitURL}/other.git`, 'HEAD:refs/heads/no-helper'], stepEnv(runner), work);
    assert.notEqual(r.code, 0, r.out);
  });

  test('the post step revokes the token, undoes git\'s configuration and deletes the files', async () => {
    const post = await runStep(runner, { inputs: { 'bridge-url': `${base}/ok` }, state: main.state });
    assert.equal(post.code, 0, post.stdout + post.stderr);
    const mine = revoked.filter((r) => r.case === 'ok');
    assert.equal(mine.length, 1);
    assert.deepEqual(mine[0].body, { token: gitToken });
    assert.equal(mine[0].auth, undefined, 'the revocation carries no other credential');
    assert.match(post.stdout, /revoked the github token tok_0123456789abcdef/);
    assert.ok(!post.stdout.split('\n').some((l) => l.includes(gitToken) && !l.startsWith('::add-mask::')), 'the post step logged the token');
    assert.ok(!post.stderr.includes(gitToken));
    for (const k of ['GITHUB_TOKEN', 'GH_TOKEN', 'GIT_CONFIG_KEY_0', 'GIT_CONFIG_VALUE_0', 'GIT_CONFIG_COUNT']) assert.equal(post.env[k], '', k);
    assert.equal(fs.existsSync(main.env.GIT_CONFIG_VALUE_0), false);
    // A later step has no credentials for the server any more.
    const r = await gitRun(['push', `${gitURL}/other.git`, 'HEAD:refs/heads/after-post'], stepEnv(runner, main.env, post.env), work);
    assert.notEqual(r.code, 0, r.out);
  });
});

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
    const r = await gitRun(['push', `${gitURL}/other.git`, 'HEAD:refs/heads/wrong'], env, work);
    assert.notEqual(r.code, 0, r.out);
    assert.ok(!r.out.includes(wrong) && !r.out.includes(gitToken), r.out);
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
