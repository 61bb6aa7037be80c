// Tests of src/main.mjs: the whole sandbox (FHIR, authorization server, launcher) through real
// tokens. In this process via startSandbox (restarts on the same port and --data directory,
// --token-ttl, --rate-limit), and once as a child process killed with SIGKILL.
// Run: cd /work/main && sandbox/node_modules/.bin/node --test sandbox/test/main.test.mjs
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import * as jose from 'jose';

import { startSandbox } from '../src/main.mjs';

const MAIN = new URL('../src/main.mjs', import.meta.url).pathname;

/** Start main.mjs as a child process; resolves once it has written --info (its last output line). */
async function startMain(dir, args) {
  const infoFile = join(dir, `info-${randomUUID()}.json`);
  const child = spawn(process.execPath, [MAIN, '--info', infoFile, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output = [];
  child.stderr.on('data', (chunk) => output.push(String(chunk)));
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  let ready = false;
  for await (const line of createInterface({ input: child.stdout })) {
    output.push(line);
    if (line.startsWith('Info file:')) {
      ready = true;
      break;
    }
  }
  if (!ready) {
    throw new Error(`main.mjs exited before it was ready (${JSON.stringify(await exited)}):\n${output.join('\n')}`);
  }
  child.stdout.resume(); // keep draining: closing the line reader paused it
  return { child, info: JSON.parse(readFileSync(infoFile, 'utf8')), infoFile, exited, output };
}

const clientOf = (info, id) => info.clients.find((c) => c.client_id === id);

async function tokenRequest(info, form, headers = {}) {
  const response = await fetch(`${info.issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(form),
  });
  const body = await response.json();
  assert.equal(response.status, 200, JSON.stringify(body));
  return body;
}

/** A backend-services token for fhir-burnout-worker, signed with its RS384 key from the info. */
async function workerToken(info, scope = 'system/*.cruds') {
  const tokenUrl = `${info.issuer}/token`;
  const privateJwk = clientOf(info, 'fhir-burnout-worker').private_keys.find((k) => k.alg === 'RS384');
  const now = Math.floor(Date.now() / 1000);
  const assertion = await new jose.SignJWT({})
    .setProtectedHeader({ alg: 'RS384', kid: privateJwk.kid, typ: 'JWT' })
    .setIssuer('fhir-burnout-worker')
    .setSubject('fhir-burnout-worker')
    .setAudience(tokenUrl)
    .setJti(randomUUID())
    .setIssuedAt(now)
    .setExpirationTime(now + 240)
    .sign(await jose.importJWK(privateJwk, 'RS384'));
  return tokenRequest(info, {
    grant_type: 'client_credentials',
    scope,
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: assertion,
  });
}

/** A token for referral-system (client_secret_basic) with the secret from the info. */
async function referralToken(info) {
  const basic = Buffer.from(`referral-system:${clientOf(info, 'referral-system').client_secret}`).toString('base64');
  return tokenRequest(info, { grant_type: 'client_credentials', scope: 'system/Patient.rs' }, {
    authorization: `Basic ${basic}`,
  });
}

async function fhir(info, method, path, token, body) {
  const response = await fetch(`${info.fhir_base}${path}`, {
    method,
    headers: {
      ...(token && { authorization: `Bearer ${token}` }),
      ...(body && { 'content-type': 'application/fhir+json' }),
    },
    body: body && JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined };
}

const port = (info) => Number(new URL(info.fhir_base).port);

/**
 * Let fetch's keep-alive pool see that the stopped sandbox closed its connections. It learns
 * that in the event loop's poll phase; a restart in this process may not pass through one, and
 * then the next request goes out on a dead connection ("other side closed").
 */
const noticeClosedConnections = () => new Promise((resolve) => setImmediate(resolve));

const testPatient = (value) => ({ resourceType: 'Patient', identifier: [{ system: 'urn:test:main', value }] });

describe('main.mjs', { concurrency: true }, () => {
  let dir;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'sandbox-main-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  describe('restarted with the same --data and --port', { concurrency: false }, () => {
    let dataDir;
    let first;
    let second;
    const kept = {};

    before(async () => {
      dataDir = join(dir, 'ehr');
      first = await startSandbox({ dataDir });
      kept.token = (await workerToken(first.info)).access_token;
      const created = await fhir(first.info, 'POST', '/Patient', kept.token, testPatient('kept'));
      assert.equal(created.status, 201);
      kept.patient = created.body;
      await first.close();
      await noticeClosedConnections();
      second = await startSandbox({ dataDir, port: port(first.info) });
    });
    after(() => second?.close());

    test('the store is replayed: same id and version, and the seed is not added again', async () => {
      assert.equal(first.info.restored, false);
      assert.equal(second.info.restored, true);
      assert.equal(second.info.fhir_base, first.info.fhir_base);
      const read = await fhir(second.info, 'GET', `/Patient/${kept.patient.id}`, kept.token);
      assert.equal(read.status, 200); // the token from before the restart is still good
      assert.deepEqual(read.body, kept.patient);
      const patients = await fhir(second.info, 'GET', '/Patient?_count=0', kept.token);
      assert.equal(patients.body.total, first.info.seed.patients.length + 1);
      const commits = readFileSync(join(dataDir, 'fhir-journal.jsonl'), 'utf8').trimEnd().split('\n');
      assert.equal(commits.length, 2); // the seed, once, and the create
    });

    test('the clients keep their credentials: same keys and secret, and they still get tokens', async () => {
      assert.deepEqual(second.info.clients, first.info.clients);
      const worker = await workerToken(second.info, 'system/Patient.rs');
      assert.equal((await fhir(second.info, 'GET', `/Patient/${kept.patient.id}`, worker.access_token)).status, 200);
      const referral = await referralToken(second.info);
      assert.equal((await fhir(second.info, 'GET', '/Patient/pat-01', referral.access_token)).status, 200);
    });
  });

  test('a write answered just before SIGKILL is there after the restart', async () => {
    const dataDir = join(dir, 'killed');
    const killed = await startMain(dir, ['--data', dataDir]);
    let created;
    let token;
    try {
      ({ access_token: token } = await workerToken(killed.info));
      created = await fhir(killed.info, 'POST', '/Patient', token, testPatient('survives-sigkill'));
      assert.equal(created.status, 201);
    } finally {
      killed.child.kill('SIGKILL'); // at once: only what was fsynced survives
    }
    assert.equal((await killed.exited).signal, 'SIGKILL');
    assert.ok(existsSync(join(dataDir, 'lock'))); // left behind, and taken over below
    await noticeClosedConnections();
    const restarted = await startSandbox({ dataDir, port: port(killed.info) });
    try {
      assert.deepEqual((await fhir(restarted.info, 'GET', `/Patient/${created.body.id}`, token)).body, created.body);
    } finally {
      await restarted.close();
    }
    assert.ok(!existsSync(join(dataDir, 'lock')));
  });

  describe('with --token-ttl 2', () => {
    let sandbox;
    before(async () => { sandbox = await startSandbox({ tokenTtl: 2 }); });
    after(() => sandbox?.close());

    test('an expired access token is 401', async () => {
      const token = await workerToken(sandbox.info, 'system/Patient.rs');
      assert.equal(token.expires_in, 2);
      assert.equal((await fhir(sandbox.info, 'GET', '/Patient/pat-01', token.access_token)).status, 200);
      const { exp } = jose.decodeJwt(token.access_token);
      await sleep(Math.max(0, exp * 1000 - Date.now()) + 50);
      const expired = await fhir(sandbox.info, 'GET', '/Patient/pat-01', token.access_token);
      assert.equal(expired.status, 401);
      assert.match(expired.headers.get('www-authenticate'), /invalid_token/);
    });
  });

  describe('with --rate-limit 3', () => {
    // Its own sandbox with the usual token lifetime: on a busy machine three requests can
    // take longer than a 2 s token lives, and the test would see 401 instead of 200.
    let sandbox;
    before(async () => { sandbox = await startSandbox({ rateLimit: 3 }); });
    after(() => sandbox?.close());

    test('over the rate limit: 429 with Retry-After, then success after waiting', async () => {
      const { access_token: token } = await referralToken(sandbox.info);
      for (let i = 0; i < 3; i += 1) {
        assert.equal((await fhir(sandbox.info, 'GET', '/Patient/pat-01', token)).status, 200);
      }
      const refused = await fhir(sandbox.info, 'GET', '/Patient/pat-01', token);
      assert.equal(refused.status, 429);
      const retryAfter = Number(refused.headers.get('retry-after'));
      assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1);
      assert.equal(refused.body.issue[0].code, 'throttled');
      assert.equal((await fhir(sandbox.info, 'GET', '/metadata')).status, 200); // exempt
      await sleep(retryAfter * 1000);
      assert.equal((await fhir(sandbox.info, 'GET', '/Patient/pat-01', token)).status, 200);
    });
  });
});
