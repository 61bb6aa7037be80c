// Tests of the exact-match index of src/fhir-server.mjs (item 13): searches and conditional
// writes by `identifier=SYSTEM|VALUE` and `_tag=SYSTEM|CODE` find exactly what a scan of the
// store finds, through every kind of write, a rolled-back transaction and a journal replay, and
// their cost does not grow with the number of stored resources.
// Run: cd /work/main && sandbox/node_modules/.bin/node --test sandbox/test/search-index.test.mjs
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createFhirServer, TokenIndex } from '../src/fhir-server.mjs';

const KEYS = 'https://fhir-burnout.org/fhir/outbox-key';
const OTHER = 'urn:test:other-system';
const OUTBOX_TAG = 'https://fhir-burnout.org/fhir/outbox-entry';
const QR = 'QuestionnaireResponse';

/** A FHIR server without auth on port 0 (journaled to `journalFile` when given). */
async function startServer(journalFile) {
  let fhir;
  const server = http.createServer((req, res) => fhir.handle(req, res));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}/fhir`;
  fhir = await createFhirServer({ baseUrl: base, journalFile });
  async function request(method, path, body, headers = {}) {
    const init = { method, headers: { ...headers } };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers['content-type'] ??= 'application/fhir+json';
    }
    const response = await fetch(base + path, init);
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : undefined };
  }
  async function close() {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    fhir.close();
  }
  return { fhir, request, close };
}

/** A QuestionnaireResponse: `identifier` is 0..1 there, an object and not an array. */
const response = (value, extra = {}) => ({
  resourceType: QR,
  status: 'completed',
  questionnaire: 'https://fhir-burnout.org/fhir/Questionnaire/test',
  ...(value !== undefined && { identifier: { system: KEYS, value } }),
  ...extra,
});

const provenance = (code, extra = {}) => ({
  resourceType: 'Provenance',
  meta: { tag: [{ system: OUTBOX_TAG, code }] },
  target: [{ reference: 'Patient/p' }],
  recorded: '2025-01-01T00:00:00Z',
  agent: [{ who: { reference: 'Practitioner/prac-1' } }],
  ...extra,
});

const post = (resource, request = {}) => ({
  fullUrl: `urn:uuid:${crypto.randomUUID()}`,
  resource,
  request: { method: 'POST', url: resource.resourceType, ...request },
});

const transaction = (...entry) => ({ resourceType: 'Bundle', type: 'transaction', entry });

/** The outbox's transaction: a QuestionnaireResponse and its Provenance, both conditional. */
const outboxTransaction = (key) =>
  transaction(
    post(response(key), { ifNoneExist: `identifier=${KEYS}|${key}` }),
    post(provenance(key), { ifNoneExist: `_tag=${OUTBOX_TAG}|${key}` }),
  );

const idsOf = (bundle) => (bundle.entry ?? []).map((e) => e.resource.id).sort();

/** The index agrees with one built from scratch out of what is stored. */
function assertIndexMatchesStore(fhir) {
  const fresh = new TokenIndex();
  fresh.rebuild(fhir.repo.resources);
  assert.deepEqual(fhir.repo.tokens.dump(), fresh.dump());
}

describe('identifier and _tag index', () => {
  let fhir;
  let request;
  let close;

  /** Ids found by `GET [type]?query`; also checks total against the entries. */
  async function find(type, query) {
    const { status, body } = await request('GET', `/${type}?${query}&_count=100`);
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.total, body.entry?.length ?? 0);
    return idsOf(body);
  }

  before(async () => {
    ({ fhir, request, close } = await startServer());
    await fhir.seed([response('seeded', { id: 'qr-seeded' }), provenance('seeded', { id: 'prov-seeded' })]);
  });

  after(() => close());

  test('finds a seeded resource, and the seed is indexed', async () => {
    assert.deepEqual(await find(QR, `identifier=${KEYS}|seeded`), ['qr-seeded']);
    assert.deepEqual(await find('Provenance', `_tag=${OUTBOX_TAG}|seeded`), ['prov-seeded']);
    assertIndexMatchesStore(fhir);
  });

  test('create: every identifier and every tag finds the resource, nothing else does', async () => {
    const patient = {
      resourceType: 'Patient',
      identifier: [
        { system: KEYS, value: 'pat-1' },
        { system: OTHER, value: 'pat-1-other' },
      ],
      meta: { tag: [{ system: OUTBOX_TAG, code: 'pat-tag-1' }, { system: OTHER, code: 'pat-tag-2' }] },
    };
    const created = await request('POST', '/Patient', patient);
    assert.equal(created.status, 201);
    const { id } = created.body;
    assert.deepEqual(await find('Patient', `identifier=${KEYS}|pat-1`), [id]);
    assert.deepEqual(await find('Patient', `identifier=${OTHER}|pat-1-other`), [id]);
    assert.deepEqual(await find('Patient', `_tag=${OUTBOX_TAG}|pat-tag-1`), [id]);
    assert.deepEqual(await find('Patient', `_tag=${OTHER}|pat-tag-2`), [id]);
    assert.deepEqual(await find('Patient', `identifier=${OTHER}|pat-1`), []); // value of another system
    assert.deepEqual(await find('Patient', `identifier=${KEYS}|pat-1-other`), []);
    assert.deepEqual(await find(QR, `identifier=${KEYS}|pat-1`), []); // another type
    // Token matching is case-insensitive in Medplum; the index keeps that.
    assert.deepEqual(await find('Patient', `identifier=${KEYS.toUpperCase()}|PAT-1`), [id]);

    const qr = await request('POST', `/${QR}`, response('qr-1'));
    assert.deepEqual(await find(QR, `identifier=${KEYS}|qr-1`), [qr.body.id]);
    assertIndexMatchesStore(fhir);
  });

  test('update and patch: a changed identifier or tag is found by the new value only', async () => {
    const created = (await request('POST', `/${QR}`, response('upd-1'))).body;
    const renamed = { ...created, identifier: { system: KEYS, value: 'upd-2' } };
    const changed = await request('PUT', `/${QR}/${created.id}`, renamed);
    assert.equal(changed.status, 200);
    assert.deepEqual(await find(QR, `identifier=${KEYS}|upd-1`), []);
    assert.deepEqual(await find(QR, `identifier=${KEYS}|upd-2`), [created.id]);

    const patch = [{ op: 'replace', path: '/identifier/value', value: 'upd-3' }];
    const patched = await request('PATCH', `/${QR}/${created.id}`, patch, {
      'content-type': 'application/json-patch+json',
    });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    assert.deepEqual(await find(QR, `identifier=${KEYS}|upd-2`), []);
    assert.deepEqual(await find(QR, `identifier=${KEYS}|upd-3`), [created.id]);

    const { identifier, ...without } = patched.body;
    assert.equal((await request('PUT', `/${QR}/${created.id}`, without)).status, 200);
    assert.deepEqual(await find(QR, `identifier=${KEYS}|upd-3`), []);

    const prov = (await request('POST', '/Provenance', provenance('tag-1'))).body;
    const retagged = { ...prov, meta: { tag: [{ system: OUTBOX_TAG, code: 'tag-2' }] } };
    assert.equal((await request('PUT', `/Provenance/${prov.id}`, retagged)).status, 200);
    assert.deepEqual(await find('Provenance', `_tag=${OUTBOX_TAG}|tag-1`), []);
    assert.deepEqual(await find('Provenance', `_tag=${OUTBOX_TAG}|tag-2`), [prov.id]);
    assertIndexMatchesStore(fhir);
  });

  test('delete and expunge: the resource is no longer found, and a conditional create makes a new one', async () => {
    const created = (await request('POST', `/${QR}`, response('del-1'))).body;
    assert.equal((await request('DELETE', `/${QR}/${created.id}`)).status, 200);
    assert.deepEqual(await find(QR, `identifier=${KEYS}|del-1`), []);
    const again = await request('POST', `/${QR}`, response('del-1'), { 'if-none-exist': `identifier=${KEYS}|del-1` });
    assert.equal(again.status, 201);
    assert.notEqual(again.body.id, created.id);

    const prov = (await request('POST', '/Provenance', provenance('exp-1'))).body;
    await fhir.repo.expungeResources('Provenance', [prov.id]);
    assert.deepEqual(await find('Provenance', `_tag=${OUTBOX_TAG}|exp-1`), []);
    assertIndexMatchesStore(fhir);
  });

  test('a rolled-back transaction leaves nothing findable, and what it changed is found as before', async () => {
    const kept = (await request('POST', `/${QR}`, response('rb-kept'))).body;
    const doomed = (await request('POST', `/${QR}`, response('rb-doomed'))).body;
    const failed = await request('POST', '', transaction(
      post(response('rb-new'), { ifNoneExist: `identifier=${KEYS}|rb-new` }),
      post(provenance('rb-new'), { ifNoneExist: `_tag=${OUTBOX_TAG}|rb-new` }),
      {
        resource: { ...kept, identifier: { system: KEYS, value: 'rb-renamed' } },
        request: { method: 'PUT', url: `${QR}/${kept.id}` },
      },
      { request: { method: 'DELETE', url: `${QR}/${doomed.id}` } },
      post({ resourceType: 'Task', status: 'not-a-status', intent: 'order' }), // refused: rolls all back
    ));
    assert.equal(failed.status, 400, JSON.stringify(failed.body));
    assert.deepEqual(await find(QR, `identifier=${KEYS}|rb-new`), []);
    assert.deepEqual(await find('Provenance', `_tag=${OUTBOX_TAG}|rb-new`), []);
    assert.deepEqual(await find(QR, `identifier=${KEYS}|rb-renamed`), []);
    assert.deepEqual(await find(QR, `identifier=${KEYS}|rb-kept`), [kept.id]);
    assert.deepEqual(await find(QR, `identifier=${KEYS}|rb-doomed`), [doomed.id]);
    assertIndexMatchesStore(fhir);

    // The outbox sends it again: created now, once.
    const retried = await request('POST', '', outboxTransaction('rb-new'));
    assert.equal(retried.status, 200, JSON.stringify(retried.body));
    assert.deepEqual(retried.body.entry.map((e) => e.response.status), ['201', '201']);
    assert.deepEqual(await find(QR, `identifier=${KEYS}|rb-new`), [retried.body.entry[0].resource.id]);
    assertIndexMatchesStore(fhir);
  });

  test('conditional create twice stores one resource: POST, transaction, and conditional update', async () => {
    const headers = { 'if-none-exist': `identifier=${KEYS}|cc-1` };
    const first = await request('POST', `/${QR}`, response('cc-1'), headers);
    const second = await request('POST', `/${QR}`, response('cc-1'), headers);
    assert.deepEqual([first.status, second.status], [201, 200]);
    assert.equal(second.body.id, first.body.id);

    const tx1 = await request('POST', '', outboxTransaction('cc-2'));
    const tx2 = await request('POST', '', outboxTransaction('cc-2'));
    assert.deepEqual(tx1.body.entry.map((e) => e.response.status), ['201', '201']);
    assert.deepEqual(tx2.body.entry.map((e) => e.response.status), ['200', '200']);
    assert.deepEqual(idsOf(tx2.body), idsOf(tx1.body));
    assert.equal((await find(QR, `identifier=${KEYS}|cc-2`)).length, 1);
    assert.equal((await find('Provenance', `_tag=${OUTBOX_TAG}|cc-2`)).length, 1);

    const put1 = await request('PUT', `/${QR}?identifier=${KEYS}|cc-3`, response('cc-3'));
    const put2 = await request('PUT', `/${QR}?identifier=${KEYS}|cc-3`, response('cc-3', { status: 'amended' }));
    assert.deepEqual([put1.status, put2.status], [201, 200]);
    assert.equal(put2.body.id, put1.body.id);
    assert.deepEqual(await find(QR, `identifier=${KEYS}|cc-3`), [put1.body.id]);

    // Two matches: 412, as before.
    await request('POST', `/${QR}`, response('cc-twice'));
    await request('POST', `/${QR}`, response('cc-twice'));
    const ambiguous = await request('POST', `/${QR}`, response('cc-twice'), {
      'if-none-exist': `identifier=${KEYS}|cc-twice`,
    });
    assert.equal(ambiguous.status, 412);
    assertIndexMatchesStore(fhir);
  });

  test('paging, _sort, _elements and _count=0 work on indexed searches as on scanned ones', async () => {
    const tag = `${OUTBOX_TAG}|shared`;
    const shared = (code) => ({ meta: { tag: [{ system: OUTBOX_TAG, code: 'shared' }, { system: OTHER, code }] } });
    // Stored first, tagged last: the scan finds it first, the index learnt of it last.
    const late = (await request('POST', '/Provenance', provenance('late'))).body;
    const made = [late.id];
    for (const code of ['c', 'a', 'b']) {
      made.push((await request('POST', '/Provenance', provenance(code, shared(code)))).body.id);
    }
    assert.equal((await request('PUT', `/Provenance/${late.id}`, { ...late, ...shared('late') })).status, 200);
    const scanned = `_tag=${tag},${tag}`; // a comma (two values) is not indexed: the scan's answer
    const shapes = ['', '&_sort=-_lastUpdated', '&_sort=_id', '&_count=1&_offset=1', '&_count=0', '&_elements=id'];
    for (const extra of shapes) {
      const indexed = (await request('GET', `/Provenance?_tag=${tag}${extra}`)).body;
      const reference = (await request('GET', `/Provenance?${scanned}${extra}`)).body;
      assert.equal(indexed.total, 4);
      assert.deepEqual(indexed.entry?.map((e) => e.resource.id), reference.entry?.map((e) => e.resource.id), extra);
    }
    assert.deepEqual((await request('GET', `/Provenance?_tag=${tag}`)).body.entry.map((e) => e.resource.id), made);
  });

  test('other searches are evaluated as before', async () => {
    const a = (await request('POST', `/${QR}`, response('fb-1'))).body;
    const b = (await request('POST', `/${QR}`, response('fb-2', { status: 'amended' }))).body;
    const c = (await request('POST', `/${QR}`, { ...response(undefined), identifier: { value: 'fb-1' } })).body;
    // identifier plus another parameter
    assert.deepEqual(await find(QR, `identifier=${KEYS}|fb-1&status=completed`), [a.id]);
    assert.deepEqual(await find(QR, `identifier=${KEYS}|fb-1&status=amended`), []);
    assert.deepEqual(await find(QR, `identifier=${KEYS}|fb-2&status=amended`), [b.id]);
    // a value without a system, a system without a value, no system, several values, a modifier
    assert.deepEqual(await find(QR, 'identifier=fb-1'), [a.id, c.id].sort());
    assert.deepEqual(await find(QR, 'identifier=|fb-1'), [c.id]);
    assert.ok((await find(QR, `identifier=${KEYS}|`)).includes(b.id));
    assert.deepEqual(await find(QR, `identifier=${KEYS}|fb-1,${KEYS}|fb-2`), [a.id, b.id].sort());
    assert.ok(!(await find(QR, `identifier:not=${KEYS}|fb-1`)).includes(a.id));
    // a value with a second bar is split by Medplum as before (system|value, the rest dropped)
    assert.deepEqual(await find(QR, `identifier=${KEYS}|fb-1|x`), [a.id]);
  });
});

describe('identifier and _tag index after a restart from the journal', () => {
  let dir;
  const ids = {};

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sandbox-index-'));
    const { fhir, request, close } = await startServer(join(dir, 'fhir-journal.jsonl'));
    await fhir.seed([response('j-seeded', { id: 'qr-j-seeded' })]);
    const renamed = (await request('POST', `/${QR}`, response('j-old'))).body;
    await request('PUT', `/${QR}/${renamed.id}`, { ...renamed, identifier: { system: KEYS, value: 'j-new' } });
    ids.renamed = renamed.id;
    const deleted = (await request('POST', `/${QR}`, response('j-deleted'))).body;
    await request('DELETE', `/${QR}/${deleted.id}`);
    const tx = await request('POST', '', outboxTransaction('j-tx'));
    ids.tx = idsOf(tx.body);
    const failed = await request('POST', '', transaction(
      post(response('j-rolled-back')),
      post({ resourceType: 'Task', status: 'not-a-status', intent: 'order' }),
    ));
    assert.equal(failed.status, 400);
    await close();
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  test('the replayed store is indexed, and conditional creates find what is there', async () => {
    const { fhir, request, close } = await startServer(join(dir, 'fhir-journal.jsonl'));
    try {
      assert.equal(fhir.restored, true);
      assertIndexMatchesStore(fhir);
      const find = async (type, query) => idsOf((await request('GET', `/${type}?${query}`)).body);
      assert.deepEqual(await find(QR, `identifier=${KEYS}|j-seeded`), ['qr-j-seeded']);
      assert.deepEqual(await find(QR, `identifier=${KEYS}|j-old`), []);
      assert.deepEqual(await find(QR, `identifier=${KEYS}|j-new`), [ids.renamed]);
      assert.deepEqual(await find(QR, `identifier=${KEYS}|j-deleted`), []);
      assert.deepEqual(await find(QR, `identifier=${KEYS}|j-rolled-back`), []);
      const again = await request('POST', '', outboxTransaction('j-tx'));
      assert.deepEqual(again.body.entry.map((e) => e.response.status), ['200', '200']);
      assert.deepEqual(idsOf(again.body), ids.tx);
      const recreated = await request('POST', `/${QR}`, response('j-deleted'), {
        'if-none-exist': `identifier=${KEYS}|j-deleted`,
      });
      assert.equal(recreated.status, 201);
    } finally {
      await close();
    }
  });
});

describe('identifier and _tag index speed', () => {
  const SMALL = 100;
  const LARGE = 3000;
  const ROUNDS = 30;
  let small;
  let large;

  /** Store `n` QuestionnaireResponses and `n` Provenances with distinct keys. */
  async function fill(server, n) {
    for (let start = 0; start < n; start += 500) {
      const keys = Array.from({ length: Math.min(500, n - start) }, (_, i) => `fill-${start + i}`);
      await server.fhir.seed(keys.flatMap((key) => [response(key), provenance(key)]));
    }
  }

  before(async () => {
    [small, large] = await Promise.all([startServer(), startServer()]);
    await fill(small, SMALL);
    await fill(large, LARGE);
  });

  after(() => Promise.all([small.close(), large.close()]));

  const median = (values) => [...values].sort((x, y) => x - y)[Math.floor(values.length / 2)];

  async function timed(server, make) {
    const start = process.hrtime.bigint();
    const answer = await make(server.request);
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    assert.ok(answer.status === 200 || answer.status === 201, JSON.stringify(answer.body));
    return ms;
  }

  // The two stores are measured in turns, so that load from other tests falls on both alike;
  // the median leaves out the odd garbage collection (more of it with more stored).
  async function compare(name, make) {
    const times = { small: [], large: [] };
    for (let round = 0; round < ROUNDS; round++) {
      times.small.push(await timed(small, (request) => make(request, `${name}-${round}`)));
      times.large.push(await timed(large, (request) => make(request, `${name}-${round}`)));
    }
    const [s, l] = [median(times.small), median(times.large)];
    const ratio = l / s;
    console.log(`# ${name}: ${s.toFixed(2)} ms at ${SMALL}, ${l.toFixed(2)} ms at ${LARGE} (x${ratio.toFixed(2)})`);
    return ratio;
  }

  test(`a conditional create costs about the same with ${LARGE} stored as with ${SMALL}`, async () => {
    const ratio = await compare('conditional-create', (request, key) =>
      request('POST', `/${QR}`, response(key), { 'if-none-exist': `identifier=${KEYS}|${key}` }),
    );
    assert.ok(ratio < 3, `grew ${ratio.toFixed(1)} times`);
  });

  // Grew 13 times without the index. What still grows is the rollback snapshot, a copy of the
  // stored resources and history of both types (~2 ms at 3,000 each), so the bound is looser.
  test(`the outbox transaction (QuestionnaireResponse + Provenance) grows little`, async () => {
    const ratio = await compare('outbox-transaction', (request, key) => request('POST', '', outboxTransaction(key)));
    assert.ok(ratio < 4, `grew ${ratio.toFixed(1)} times`);
  });

  test('a search by identifier likewise', async () => {
    const ratio = await compare('search', (request, key) =>
      request('GET', `/${QR}?identifier=${KEYS}|${key.replace(/^search/, 'conditional-create')}`),
    );
    assert.ok(ratio < 3, `grew ${ratio.toFixed(1)} times`);
  });
});
