// Tests for R4 Subscriptions with rest-hook channels (src/subscriptions.mjs, item 14 of
// src/fhir-server.mjs): a real FHIR server and a real HTTP receiver that records what it gets,
// both on 127.0.0.1, port 0. Each test subscribes with its own criteria (a performer of its own)
// and its own receiver path, so the tests' Subscriptions do not see each other's writes.
// Run: cd /work/main && sandbox/node_modules/.bin/node --test sandbox/test/subscriptions.test.mjs
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createFhirServer } from '../src/fhir-server.mjs';

// Test tokens -> claims, as the auth server's verifyAccessToken would return them.
const TOKENS = {
  admin: { scope: 'system/*.cruds', client_id: 'backend' },
  'referrals-only': { scope: 'system/ServiceRequest.cruds', client_id: 'referral-system' },
};

async function fakeVerify(token) {
  const claims = TOKENS[token];
  if (!claims) {
    throw new Error('invalid token');
  }
  return claims;
}

/** A FHIR server with (fake) auth on port 0; returns { base, fhir, request, close }. */
async function startServer(options = {}) {
  let fhir;
  const server = http.createServer((req, res) => fhir.handle(req, res));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}/fhir`;
  fhir = await createFhirServer({ baseUrl: base, verifyAccessToken: fakeVerify, ...options });
  async function request(method, path, { token = 'admin', body, headers = {} } = {}) {
    const init = { method, headers: { authorization: `Bearer ${token}`, ...headers } };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers['content-type'] = 'application/fhir+json';
    }
    const response = await fetch(base + path, init);
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : undefined };
  }
  async function close() {
    fhir.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  return { base, fhir, request, close };
}

/**
 * An HTTP receiver on port 0 that records every request ({method, path, headers, body}).
 * `behave(path, {status, delayMs})` sets how a path answers (default 200 at once); it also
 * counts how many requests per path are in flight at once.
 */
async function startReceiver() {
  const received = [];
  const behaviour = new Map();
  const inFlight = new Map();
  const maxInFlight = new Map();
  const server = http.createServer(async (req, res) => {
    // Every endpoint is /hook/<name>; a notification with a payload goes to a path under it
    // (R4: PUT [endpoint]/[type]/[id]) and counts for its endpoint.
    const path = req.url.split('/').slice(0, 3).join('/');
    inFlight.set(path, (inFlight.get(path) ?? 0) + 1);
    maxInFlight.set(path, Math.max(maxInFlight.get(path) ?? 0, inFlight.get(path)));
    const chunks = [];
    for await (const chunk of req) {
      chunks.push(chunk);
    }
    received.push({
      method: req.method, path, url: req.url, headers: req.headers,
      body: Buffer.concat(chunks).toString('utf8'),
    });
    const { status = 200, delayMs = 0 } = behaviour.get(path) ?? {};
    if (delayMs) {
      await sleep(delayMs);
    }
    inFlight.set(path, inFlight.get(path) - 1);
    res.writeHead(status, { 'content-type': 'text/plain' }).end('ok');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${server.address().port}`;
  const at = (path) => received.filter((r) => r.path === path);
  return {
    url: (path) => origin + path,
    at,
    behave: (path, how) => behaviour.set(path, how),
    maxInFlight: (path) => maxInFlight.get(path) ?? 0,
    /** Wait until `path` got at least `count` requests; returns them. */
    async waitFor(path, count, timeoutMs = 8000) {
      const deadline = Date.now() + timeoutMs;
      while (at(path).length < count) {
        if (Date.now() > deadline) {
          assert.fail(`${path}: expected ${count} notifications, got ${at(path).length}`);
        }
        await sleep(20);
      }
      return at(path);
    },
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A port nothing listens on (taken, then released). */
async function closedPort() {
  const server = http.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const referral = (performer, extra = {}) => ({
  resourceType: 'ServiceRequest',
  status: 'active',
  intent: 'order',
  subject: { reference: 'Patient/pat-1' },
  performer: [{ reference: `Organization/${performer}` }],
  ...extra,
});

const subscription = (criteria, channel) => ({
  resourceType: 'Subscription',
  status: 'requested',
  reason: 'New burn-out referrals',
  criteria,
  channel: { type: 'rest-hook', ...channel },
});

/** Poll a resource until `done(resource)`; returns it. */
async function readUntil(request, path, done, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { body } = await request('GET', path);
    if (done(body)) {
      return body;
    }
    if (Date.now() > deadline) {
      assert.fail(`${path} did not reach the expected state: ${JSON.stringify(body)}`);
    }
    await sleep(50);
  }
}

describe('Subscriptions (rest-hook)', () => {
  let server;
  let receiver;
  let request;

  before(async () => {
    server = await startServer();
    request = server.request;
    receiver = await startReceiver();
  });

  after(async () => {
    await server.close();
    await receiver.close();
  });

  /** Create a Subscription; assert it is accepted and active. */
  async function subscribe(criteria, channel) {
    const created = await request('POST', '/Subscription', { body: subscription(criteria, channel) });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.status, 'active');
    return created.body;
  }

  test('a matching create sends one POST with the channel headers and no body', async () => {
    const path = '/hook/no-payload';
    await subscribe('ServiceRequest?performer=Organization/org-1', {
      endpoint: receiver.url(path),
      header: ['Authorization: Bearer abc', 'X-Trace: no-payload'],
    });
    await sleep(100);
    assert.equal(receiver.at(path).length, 0, 'nothing is sent before a match (no handshake)');

    const created = await request('POST', '/ServiceRequest', { body: referral('org-1') });
    assert.equal(created.status, 201);
    const [note] = await receiver.waitFor(path, 1);
    assert.equal(note.method, 'POST');
    assert.equal(note.headers.authorization, 'Bearer abc');
    assert.equal(note.headers['x-trace'], 'no-payload');
    assert.equal(note.body, '');
    assert.equal(note.headers['content-type'], undefined);
    await sleep(300);
    assert.equal(receiver.at(path).length, 1);
  });

  test('with payload application/fhir+json the resource as stored is PUT to [endpoint]/[type]/[id] (R4)', async () => {
    const path = '/hook/payload';
    await subscribe('ServiceRequest?performer=Organization/org-2', {
      endpoint: receiver.url(path),
      payload: 'application/fhir+json',
    });
    const created = await request('POST', '/ServiceRequest', { body: referral('org-2') });
    const [note] = await receiver.waitFor(path, 1);
    assert.equal(note.method, 'PUT');
    assert.equal(note.url, `${path}/ServiceRequest/${created.body.id}`);
    assert.match(note.headers['content-type'], /^application\/fhir\+json/);
    assert.deepEqual(JSON.parse(note.body), created.body);
  });

  test('payload application/json sends the resource too', async () => {
    const path = '/hook/json';
    await subscribe('ServiceRequest?performer=Organization/org-2b', {
      endpoint: receiver.url(path),
      payload: 'application/json',
    });
    const created = await request('POST', '/ServiceRequest', { body: referral('org-2b') });
    const [note] = await receiver.waitFor(path, 1);
    assert.equal(note.url, `${path}/ServiceRequest/${created.body.id}`);
    assert.equal(JSON.parse(note.body).id, created.body.id);
  });

  test('resources that do not match send nothing', async () => {
    const path = '/hook/non-matching';
    await subscribe('ServiceRequest?performer=Organization/org-3&status=active', {
      endpoint: receiver.url(path),
      payload: 'application/fhir+json',
    });
    await request('POST', '/ServiceRequest', { body: referral('org-3', { status: 'draft' }) });
    await request('POST', '/ServiceRequest', { body: referral('org-elsewhere') });
    await request('POST', '/Patient', { body: { resourceType: 'Patient', gender: 'female' } });
    // Notifications go out in write order: had any of the above matched, it would come first.
    const matching = await request('POST', '/ServiceRequest', { body: referral('org-3') });
    const [note] = await receiver.waitFor(path, 1);
    assert.equal(JSON.parse(note.body).id, matching.body.id);
    await sleep(300);
    assert.equal(receiver.at(path).length, 1);
  });

  test('an update that starts to match sends a POST with the new version', async () => {
    const path = '/hook/update';
    await subscribe('ServiceRequest?performer=Organization/org-4&status=active', {
      endpoint: receiver.url(path),
      payload: 'application/fhir+json',
    });
    const draft = await request('POST', '/ServiceRequest', { body: referral('org-4', { status: 'draft' }) });
    const updated = await request('PUT', `/ServiceRequest/${draft.body.id}`, {
      body: { ...draft.body, status: 'active' },
    });
    assert.equal(updated.status, 200);
    const [note] = await receiver.waitFor(path, 1);
    const sent = JSON.parse(note.body);
    assert.equal(sent.id, draft.body.id);
    assert.equal(sent.status, 'active');
    assert.equal(sent.meta.versionId, updated.body.meta.versionId);
    await sleep(300);
    assert.equal(receiver.at(path).length, 1);
  });

  test('a transaction with two matching entries sends two POSTs, in entry order', async () => {
    const path = '/hook/transaction';
    await subscribe('ServiceRequest?performer=Organization/org-5', {
      endpoint: receiver.url(path),
      payload: 'application/fhir+json',
    });
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: referral('org-5', { priority: 'routine' }), request: { method: 'POST', url: 'ServiceRequest' } },
        { resource: { resourceType: 'Patient', gender: 'male' }, request: { method: 'POST', url: 'Patient' } },
        { resource: referral('org-5', { priority: 'urgent' }), request: { method: 'POST', url: 'ServiceRequest' } },
      ],
    };
    const answered = await request('POST', '', { body: bundle });
    assert.equal(answered.status, 200);
    const notes = await receiver.waitFor(path, 2);
    const sent = notes.map((n) => JSON.parse(n.body));
    assert.deepEqual(
      sent.map((r) => r.id),
      [answered.body.entry[0].resource.id, answered.body.entry[2].resource.id],
    );
    assert.deepEqual(sent.map((r) => r.priority), ['routine', 'urgent']);
    await sleep(300);
    assert.equal(receiver.at(path).length, 2);
  });

  test('batch entries notify too', async () => {
    const path = '/hook/batch';
    await subscribe('ServiceRequest?performer=Organization/org-5b', {
      endpoint: receiver.url(path),
      payload: 'application/fhir+json',
    });
    const bundle = {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        { resource: referral('org-5b'), request: { method: 'POST', url: 'ServiceRequest' } },
        { resource: referral('org-5b', { status: 'bogus' }), request: { method: 'POST', url: 'ServiceRequest' } },
      ],
    };
    const answered = await request('POST', '', { body: bundle });
    assert.equal(answered.status, 200);
    const [note] = await receiver.waitFor(path, 1);
    assert.equal(JSON.parse(note.body).id, answered.body.entry[0].resource.id);
    await sleep(300);
    assert.equal(receiver.at(path).length, 1);
  });

  test('a rolled-back transaction sends nothing', async () => {
    const path = '/hook/rollback';
    await subscribe('ServiceRequest?performer=Organization/org-6', {
      endpoint: receiver.url(path),
      payload: 'application/fhir+json',
    });
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: referral('org-6'), request: { method: 'POST', url: 'ServiceRequest' } },
        { resource: referral('org-6', { status: 'bogus' }), request: { method: 'POST', url: 'ServiceRequest' } },
      ],
    };
    assert.equal((await request('POST', '', { body: bundle })).status, 400);
    const later = await request('POST', '/ServiceRequest', { body: referral('org-6') });
    const [note] = await receiver.waitFor(path, 1);
    assert.equal(JSON.parse(note.body).id, later.body.id);
  });

  test('a conditional create notifies when it creates, not when it finds', async () => {
    const path = '/hook/conditional';
    await subscribe('ServiceRequest?performer=Organization/org-7', {
      endpoint: receiver.url(path),
      payload: 'application/fhir+json',
    });
    const identifier = [{ system: 'urn:test:subscriptions', value: 'conditional' }];
    const headers = { 'if-none-exist': 'identifier=urn:test:subscriptions|conditional' };
    const first = await request('POST', '/ServiceRequest', { body: referral('org-7', { identifier }), headers });
    const second = await request('POST', '/ServiceRequest', { body: referral('org-7', { identifier }), headers });
    assert.deepEqual([first.status, second.status], [201, 200]);
    const last = await request('POST', '/ServiceRequest', { body: referral('org-7') });
    const notes = await receiver.waitFor(path, 2);
    assert.deepEqual(
      notes.map((n) => JSON.parse(n.body).id),
      [first.body.id, last.body.id],
    );
  });

  test('notifications of one Subscription go one at a time, in write order', async () => {
    const path = '/hook/ordered';
    receiver.behave(path, { delayMs: 60 });
    await subscribe('ServiceRequest?performer=Organization/org-8', {
      endpoint: receiver.url(path),
      payload: 'application/fhir+json',
    });
    const ids = [];
    for (let i = 0; i < 5; i += 1) {
      const started = Date.now();
      const created = await request('POST', '/ServiceRequest', { body: referral('org-8') });
      assert.equal(created.status, 201);
      assert.ok(Date.now() - started < 1000, 'the write does not wait for the receiver');
      ids.push(created.body.id);
    }
    const notes = await receiver.waitFor(path, 5);
    assert.deepEqual(notes.map((n) => JSON.parse(n.body).id), ids);
    assert.equal(receiver.maxInFlight(path), 1);
  });

  test('a Subscription with status off sends nothing', async () => {
    const path = '/hook/off';
    const off = subscription('ServiceRequest?performer=Organization/org-9', { endpoint: receiver.url(path) });
    const created = await request('POST', '/Subscription', { body: { ...off, status: 'off' } });
    assert.equal(created.status, 201);
    assert.equal(created.body.status, 'off');
    await request('POST', '/ServiceRequest', { body: referral('org-9') });
    await sleep(300);
    assert.equal(receiver.at(path).length, 0);
  });

  test('an unsupported channel type is refused with 400', async () => {
    const body = subscription('ServiceRequest?status=active', { type: 'websocket' });
    const { status, body: outcome } = await request('POST', '/Subscription', { body });
    assert.equal(status, 400);
    assert.equal(outcome.resourceType, 'OperationOutcome');
    assert.match(outcome.issue[0].details.text, /only supports rest-hook/);
  });

  test('other channels this server cannot serve are refused with 400', async () => {
    const cases = [
      ['an XML payload', { endpoint: 'http://127.0.0.1:9/x', payload: 'application/fhir+xml' }, /payload/],
      ['no endpoint', {}, /endpoint/],
      ['a mailto endpoint', { endpoint: 'mailto:someone@example.org' }, /http\(s\) URL/],
      ['a header without a colon', { endpoint: 'http://127.0.0.1:9/x', header: ['Bearer abc'] }, /header/],
    ];
    for (const [name, channel, text] of cases) {
      const { status, body } = await request('POST', '/Subscription', {
        body: subscription('ServiceRequest?status=active', channel),
      });
      assert.equal(status, 400, name);
      assert.match(body.issue[0].details.text, text, name);
    }
  });

  test('a client may create a Subscription only as requested or off', async () => {
    const active = subscription('ServiceRequest?status=active', { endpoint: 'http://127.0.0.1:9/x' });
    const body = { ...active, status: 'active' };
    const { status, body: outcome } = await request('POST', '/Subscription', { body });
    assert.equal(status, 400);
    assert.match(outcome.issue[0].details.text, /requested or off/);
  });

  test('criteria that do not parse are refused with 400', async () => {
    const cases = [
      'not a search',
      '?status=active',
      'Referral?status=active',
      'ServiceRequest?bogus=1',
      'ServiceRequest?authored=not-a-date',
      'ServiceRequest?subject.name=Jansen',
      'ServiceRequest?_count=5',
      'http://example.org/fhir/ServiceRequest?status=active',
    ];
    for (const criteria of cases) {
      const { status, body } = await request('POST', '/Subscription', {
        body: subscription(criteria, { endpoint: receiver.url('/hook/never') }),
      });
      assert.equal(status, 400, criteria);
      assert.equal(body.resourceType, 'OperationOutcome', criteria);
      assert.match(body.issue[0].details.text, /criteria/, criteria);
    }
  });

  test('writing a Subscription needs a scope that allows it', async () => {
    const body = subscription('ServiceRequest?status=active', { endpoint: receiver.url('/hook/never') });
    const { status } = await request('POST', '/Subscription', { body, token: 'referrals-only' });
    assert.equal(status, 403);
  });

  test('an unreachable endpoint: the write succeeds at once, the Subscription ends in error', async () => {
    const port = await closedPort();
    const sub = await subscribe('ServiceRequest?performer=Organization/org-10', {
      endpoint: `http://127.0.0.1:${port}/hook`,
    });
    const started = Date.now();
    const created = await request('POST', '/ServiceRequest', { body: referral('org-10') });
    assert.equal(created.status, 201);
    assert.ok(Date.now() - started < 1000, `the write took ${Date.now() - started} ms`);

    const failed = await readUntil(request, `/Subscription/${sub.id}`, (s) => s.status === 'error');
    assert.match(failed.error, /ECONNREFUSED/);
    assert.match(failed.error, /failed 3 times/);
    const history = await request('GET', `/Subscription/${sub.id}/_history`);
    assert.deepEqual(history.body.entry.map((e) => e.resource.status), ['error', 'active']);
  });

  test('a non-2xx answer is retried; after the last failure the client restarts the Subscription', async () => {
    const path = '/hook/flaky';
    receiver.behave(path, { status: 500 });
    const sub = await subscribe('ServiceRequest?performer=Organization/org-11', {
      endpoint: receiver.url(path),
      payload: 'application/fhir+json',
    });
    const first = await request('POST', '/ServiceRequest', { body: referral('org-11') });
    const failed = await readUntil(request, `/Subscription/${sub.id}`, (s) => s.status === 'error');
    assert.match(failed.error, /HTTP 500/);
    const attempts = receiver.at(path);
    assert.equal(attempts.length, 3);
    assert.ok(attempts.every((a) => JSON.parse(a.body).id === first.body.id));

    // In error: matches are neither sent nor kept.
    receiver.behave(path, { status: 200 });
    await request('POST', '/ServiceRequest', { body: referral('org-11') });
    await sleep(300);
    assert.equal(receiver.at(path).length, 3);

    // The client may not make it active itself...
    const sneaky = await request('PUT', `/Subscription/${sub.id}`, { body: { ...failed, status: 'active' } });
    assert.equal(sneaky.status, 400);
    assert.match(sneaky.body.issue[0].details.text, /set it to requested/);

    // ...but sets it back to requested; the server makes it active and clears the error.
    const restarted = await request('PUT', `/Subscription/${sub.id}`, { body: { ...failed, status: 'requested' } });
    assert.equal(restarted.status, 200);
    assert.equal(restarted.body.status, 'active');
    assert.equal(restarted.body.error, undefined);
    const next = await request('POST', '/ServiceRequest', { body: referral('org-11') });
    const notes = await receiver.waitFor(path, 4);
    assert.equal(JSON.parse(notes[3].body).id, next.body.id);
  });
});

describe('Subscriptions: delivery timeout', () => {
  test('a receiver that does not answer in time puts the Subscription in error', async () => {
    const server = await startServer({ subscriptionDelivery: { timeoutMs: 200, retryDelaysMs: [50] } });
    const receiver = await startReceiver();
    try {
      receiver.behave('/slow', { delayMs: 1000 });
      const created = await server.request('POST', '/Subscription', {
        body: subscription('ServiceRequest?status=active', { endpoint: receiver.url('/slow') }),
      });
      assert.equal(created.status, 201);
      await server.request('POST', '/ServiceRequest', { body: referral('org-12') });
      const failed = await readUntil(server.request, `/Subscription/${created.body.id}`, (s) => s.status === 'error');
      assert.match(failed.error, /failed 2 times; last: no answer within 0.2 s/);
    } finally {
      await server.close();
      await receiver.close();
    }
  });
});

describe('Subscriptions: durability', () => {
  test('with a journal, Subscriptions and their error survive a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sandbox-subscriptions-'));
    const journalFile = join(dir, 'fhir-journal.jsonl');
    const receiver = await startReceiver();
    try {
      const first = await startServer({ journalFile, subscriptionDelivery: { retryDelaysMs: [] } });
      const live = await first.request('POST', '/Subscription', {
        body: subscription('ServiceRequest?performer=Organization/org-13', { endpoint: receiver.url('/kept') }),
      });
      const port = await closedPort();
      const broken = await first.request('POST', '/Subscription', {
        body: subscription('ServiceRequest?performer=Organization/org-14', { endpoint: `http://127.0.0.1:${port}/` }),
      });
      await first.request('POST', '/ServiceRequest', { body: referral('org-14') });
      await readUntil(first.request, `/Subscription/${broken.body.id}`, (s) => s.status === 'error');
      await first.close();

      const second = await startServer({ journalFile });
      try {
        assert.equal((await second.request('GET', `/Subscription/${live.body.id}`)).body.status, 'active');
        assert.equal((await second.request('GET', `/Subscription/${broken.body.id}`)).body.status, 'error');
        await second.request('POST', '/ServiceRequest', { body: referral('org-13') });
        await receiver.waitFor('/kept', 1);
      } finally {
        await second.close();
      }
    } finally {
      await receiver.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
