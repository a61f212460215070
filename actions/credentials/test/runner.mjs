// A simulated GitHub Actions runner for the action's tests: it runs
// dist/index.js as the runner does (INPUT_* variables, the GITHUB_ENV,
// GITHUB_OUTPUT and GITHUB_STATE files, RUNNER_TEMP, the ID-token request
// variables) and reads back what the step wrote.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const actionDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const entry = path.join(actionDir, 'dist', 'index.js');

// need reads a variable that the Go test (test/e2e/action_test.go) sets.
export function need(name) {
  const v = process.env[name];
  if (!v) {
    throw new Error(`${name} is not set: these tests run under the Go test TestAction (make test, or ` +
      '`go test -run TestAction ./test/e2e/`), which starts the bridge and the stand-ins');
  }
  return v;
}

// parseFileCommands reads a GITHUB_ENV / GITHUB_OUTPUT / GITHUB_STATE file
// (name<<DELIMITER\nvalue\nDELIMITER lines, or name=value) into an object.
export function parseFileCommands(text) {
  const out = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line === '') continue;
    const heredoc = line.match(/^([^=<]+)<<(.+)$/);
    if (heredoc) {
      const [, name, delim] = heredoc;
      const value = [];
      for (i++; i < lines.length && lines[i] !== delim; i++) value.push(lines[i]);
      if (i >= lines.length) throw new Error(`unterminated value of ${name}`);
      out[name] = value.join('\n');
    } else {
      const eq = line.indexOf('=');
      if (eq < 0) throw new Error(`unreadable file command line: ${line}`);
      out[line.slice(0, eq)] = line.slice(eq + 1);
    }
  }
  return out;
}

// newRunner makes a job's RUNNER_TEMP (removed by cleanup()).
export function newRunner() {
  const temp = fs.mkdtempSync(path.join(os.tmpdir(), 'oidc-bridge-action-test-'));
  return {
    temp,
    cleanup: () => fs.rmSync(temp, { recursive: true, force: true }),
  };
}

let seq = 0;

// runStep runs dist/index.js once. inputs are the step's `with:`; env adds
// (or, with undefined, removes) variables; state is the GITHUB_STATE of an
// earlier main step, for a post step. It resolves to
// {code, stdout, stderr, env, outputs, state, ms}.
export function runStep(runner, { inputs = {}, env = {}, state } = {}) {
  const n = ++seq;
  const files = {};
  for (const f of ['env', 'output', 'state']) {
    files[f] = path.join(runner.temp, `_runner_file_commands_${f}_${n}`);
    fs.writeFileSync(files[f], '');
  }
  const childEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME || os.tmpdir(),
    GITHUB_ACTIONS: 'true',
    CI: 'true',
    RUNNER_TEMP: runner.temp,
    GITHUB_WORKSPACE: path.join(runner.temp, '_workspace_must_stay_empty'),
    GITHUB_ENV: files.env,
    GITHUB_OUTPUT: files.output,
    GITHUB_STATE: files.state,
    ACTIONS_ID_TOKEN_REQUEST_URL: need('OIDC_BRIDGE_TEST_ID_TOKEN_URL'),
    ACTIONS_ID_TOKEN_REQUEST_TOKEN: need('OIDC_BRIDGE_TEST_ID_TOKEN_REQUEST_TOKEN'),
  };
  for (const [k, v] of Object.entries(inputs)) {
    childEnv[`INPUT_${k.replace(/ /g, '_').toUpperCase()}`] = String(v);
  }
  for (const [k, v] of Object.entries(state || {})) childEnv[`STATE_${k}`] = v;
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete childEnv[k];
    else childEnv[k] = v;
  }
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [entry], { env: childEnv, cwd: runner.temp, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => {
      resolve({
        code,
        stdout,
        stderr,
        ms: Date.now() - start,
        env: parseFileCommands(fs.readFileSync(files.env, 'utf8')),
        outputs: parseFileCommands(fs.readFileSync(files.output, 'utf8')),
        state: parseFileCommands(fs.readFileSync(files.state, 'utf8')),
      });
    });
  });
}

// run runs a program (e.g. a later step's cloud tool) with env.
export function run(args, { env, cwd = actionDir } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

// assertMaskedFirst checks that every secret is announced with
// ::add-mask:: on stdout before any other line shows it, and that stderr
// never shows it. It returns a description of the first problem, or ''.
export function maskProblem(result, secrets) {
  for (const s of secrets) {
    if (!s) return 'an empty secret';
    const lines = result.stdout.split(/\r?\n/);
    const first = lines.findIndex((l) => l.includes(s));
    if (first < 0) return `secret ${s.slice(0, 6)}… was never masked`;
    if (lines[first] !== `::add-mask::${s}`) return `secret ${s.slice(0, 6)}… printed before its ::add-mask:: line: ${lines[first].slice(0, 40)}`;
    if (result.stderr.includes(s)) return `secret ${s.slice(0, 6)}… on stderr`;
  }
  return '';
}

// frontStats reads how many exchange attempts the bridge front counted
// under key, and how many distinct ID tokens they carried.
export async function frontStats(key) {
  const res = await fetch(`${need('OIDC_BRIDGE_TEST_FRONT_URL')}/stats/${key}`);
  return res.json();
}

// frontURL is a bridge-url through the front: plan "ok", "503x1", "429x1", "503x99".
export function frontURL(key, plan) {
  return `${need('OIDC_BRIDGE_TEST_FRONT_URL')}/s/${key}/${plan}`;
}
