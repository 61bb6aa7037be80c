// Tests for src/fhir-server.mjs: a real server on 127.0.0.1, port 0, with a fake token verifier;
// and its journal (src/data-dir.mjs): a server is written to, closed, and built again from it.
// Run: cd /work/main && sandbox/node_modules/.bin/node --test sandbox/test/fhir-server.test.mjs
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Journal } from '../src/data-dir.mjs';
import { createFhirServer, createRateLimiter, parseScopes } from '../src/fhir-server.mjs';

const PATIENT_A = 'pat-a';
const PATIENT_B = 'pat-b';

// Test tokens -> claims, as the auth server's verifyAccessToken would return them.
const TOKENS = {
  admin: { scope: 'system/*.cruds', client_id: 'backend' },
  'patient-a': { scope: 'launch/patient openid fhirUser patient/*.rs', patient: PATIENT_A, client_id: 'app' },
  'patient-a-v1': { scope: 'patient/*.read', patient: PATIENT_A, client_id: 'app' },
  'patient-a-writer': { scope: 'patient/Observation.cruds patient/Patient.rs', patient: PATIENT_A, client_id: 'app' },
  'patient-a-all': { scope: 'patient/*.cruds', patient: PATIENT_A, client_id: 'app' },
  'patient-no-context': { scope: 'patient/*.rs', client_id: 'app' },
  'user-observations': { scope: 'user/Observation.rs', fhirUser: 'Practitioner/doc', client_id: 'app' },
  'user-task-cu': { scope: 'user/Task.cu', fhirUser: 'Practitioner/doc', client_id: 'app' },
  'user-v1-write': { scope: 'user/*.write', fhirUser: 'Practitioner/doc', client_id: 'app' },
};

async function fakeVerify(token) {
  const claims = TOKENS[token];
  if (!claims) {
    throw new Error('invalid token');
  }
  return claims;
}

const smartConfiguration = () => ({
  authorization_endpoint: 'http://127.0.0.1:1/auth/authorize',
  token_endpoint: 'http://127.0.0.1:1/auth/token',
  capabilities: ['launch-ehr'],
});

/** Start a server on port 0; returns { base, fhir, close }. */
async function startServer(options) {
  let fhir;
  const server = http.createServer((req, res) => fhir.handle(req, res));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}/fhir`;
  fhir = await createFhirServer({ baseUrl: base, ...options });
  return { base, fhir, close: () => new Promise((resolve) => server.close(resolve)) };
}

function client(base) {
  return async function request(method, path, { token = 'admin', body, headers = {} } = {}) {
    const url = path.startsWith('http') ? path : base + path;
    const init = { method, headers: { ...headers } };
    if (token) {
      init.headers.authorization = `Bearer ${token}`;
    }
    if (body !== undefined) {
      init.body = typeof body === 'string' ? body : JSON.stringify(body);
      init.headers['content-type'] ??= 'application/fhir+json';
    }
    const response = await fetch(url, init);
    const text = await response.text();
    return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined };
  };
}

const observation = (patientId, extra = {}) => ({
  resourceType: 'Observation',
  status: 'final',
  code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] },
  subject: { reference: `Patient/${patientId}` },
  ...extra,
});

const ids = (bundle) => (bundle.entry ?? []).map((e) => `${e.resource.resourceType}/${e.resource.id}`);

describe('FHIR server', () => {
  let server;
  let request;

  before(async () => {
    server = await startServer({ verifyAccessToken: fakeVerify, smartConfiguration });
    request = client(server.base);
    await server.fhir.seed([
      { resourceType: 'Patient', id: PATIENT_A, gender: 'female', name: [{ family: 'Aaltje' }] },
      { resourceType: 'Patient', id: PATIENT_B, gender: 'male', name: [{ family: 'Bartje' }] },
      observation(PATIENT_A, { id: 'obs-a' }),
      observation(PATIENT_B, { id: 'obs-b' }),
      { resourceType: 'Questionnaire', id: 'q1', status: 'active' },
    ]);
  });

  after(() => server.close());

  describe('discovery', () => {
    test('metadata is public and advertises SMART endpoints', async () => {
      const { status, body } = await request('GET', '/metadata', { token: null });
      assert.equal(status, 200);
      assert.equal(body.resourceType, 'CapabilityStatement');
      assert.equal(body.fhirVersion, '4.0.1');
      const rest = body.rest[0];
      const oauth = rest.security.extension.find((e) => e.url.endsWith('/oauth-uris'));
      const uris = Object.fromEntries(oauth.extension.map((e) => [e.url, e.valueUri]));
      assert.deepEqual(uris, {
        authorize: 'http://127.0.0.1:1/auth/authorize',
        token: 'http://127.0.0.1:1/auth/token',
      });
      const patient = rest.resource.find((r) => r.type === 'Patient');
      assert.ok(patient.interaction.some((i) => i.code === 'search-type'));
      assert.ok(patient.searchParam.some((p) => p.name === 'identifier'));
      assert.ok(rest.interaction.some((i) => i.code === 'transaction'));
    });

    test('smart-configuration is public', async () => {
      const { status, body } = await request('GET', '/.well-known/smart-configuration', { token: null });
      assert.equal(status, 200);
      assert.equal(body.token_endpoint, 'http://127.0.0.1:1/auth/token');
    });
  });

  describe('create, read and versions', () => {
    test('create answers 201 with Location, ETag and Last-Modified, and read agrees', async () => {
      const created = await request('POST', '/Patient', { body: { resourceType: 'Patient', gender: 'other' } });
      assert.equal(created.status, 201);
      const { id, meta } = created.body;
      assert.equal(created.headers.get('location'), `${server.base}/Patient/${id}/_history/${meta.versionId}`);
      assert.equal(created.headers.get('etag'), `W/"${meta.versionId}"`);
      assert.ok(created.headers.get('last-modified'));

      const read = await request('GET', `/Patient/${id}`);
      assert.equal(read.status, 200);
      assert.equal(read.body.gender, 'other');
      assert.equal(read.headers.get('etag'), `W/"${meta.versionId}"`);

      const vread = await request('GET', `/Patient/${id}/_history/${meta.versionId}`);
      assert.equal(vread.status, 200);
      assert.equal(vread.body.meta.versionId, meta.versionId);
    });

    test('an update with a stale If-Match is refused with 412', async () => {
      const created = await request('POST', '/Patient', { body: { resourceType: 'Patient', gender: 'male' } });
      const stale = created.headers.get('etag');
      const first = await request('PUT', `/Patient/${created.body.id}`, {
        body: { ...created.body, gender: 'female' },
        headers: { 'if-match': stale },
      });
      assert.equal(first.status, 200);
      const second = await request('PUT', `/Patient/${created.body.id}`, {
        body: { ...created.body, gender: 'unknown' },
        headers: { 'if-match': stale },
      });
      assert.equal(second.status, 412);
      assert.equal(second.body.resourceType, 'OperationOutcome');
    });

    test('history is newest first and stable across calls', async () => {
      const created = await request('POST', '/Patient', { body: { resourceType: 'Patient', gender: 'male' } });
      let current = created.body;
      for (const gender of ['female', 'other']) {
        current = (await request('PUT', `/Patient/${current.id}`, { body: { ...current, gender } })).body;
      }
      const first = await request('GET', `/Patient/${current.id}/_history`);
      const second = await request('GET', `/Patient/${current.id}/_history`);
      const genders = (bundle) => bundle.entry.map((e) => e.resource.gender);
      assert.deepEqual(genders(first.body), ['other', 'female', 'male']);
      assert.deepEqual(genders(second.body), ['other', 'female', 'male']);
      assert.equal(first.body.type, 'history');
    });
  });

  describe('conditional create', () => {
    test('returns the existing resource with 200 and the same id', async () => {
      const headers = { 'if-none-exist': 'identifier=urn:test:cc|one' };
      const body = { resourceType: 'Patient', identifier: [{ system: 'urn:test:cc', value: 'one' }] };
      const first = await request('POST', '/Patient', { body, headers });
      const second = await request('POST', '/Patient', { body, headers });
      assert.equal(first.status, 201);
      assert.equal(second.status, 200);
      assert.equal(second.body.id, first.body.id);
    });

    test('64 concurrent identical conditional creates store exactly one', async () => {
      const headers = { 'if-none-exist': 'identifier=urn:test:cc|race' };
      const body = { resourceType: 'Patient', identifier: [{ system: 'urn:test:cc', value: 'race' }] };
      const create = () => request('POST', '/Patient', { body, headers });
      const answers = await Promise.all(Array.from({ length: 64 }, create));
      assert.equal(answers.filter((a) => a.status === 201).length, 1);
      assert.equal(answers.filter((a) => a.status === 200).length, 63);
      assert.equal(new Set(answers.map((a) => a.body.id)).size, 1);
      const found = await request('GET', '/Patient?identifier=urn:test:cc|race');
      assert.equal(found.body.total, 1);
    });
  });

  describe('validation', () => {
    const cases = [
      ['an unknown property', { resourceType: 'Patient', favouriteColour: 'blue' }],
      ['a bad gender code', { resourceType: 'Patient', gender: 'femal' }],
      ['a bad Task.status', { resourceType: 'Task', status: 'bogus', intent: 'order' }],
      ['a bad Task.intent', { resourceType: 'Task', status: 'ready', intent: 'wish' }],
      ['a bad QuestionnaireResponse.status', { resourceType: 'QuestionnaireResponse', status: 'done' }],
      ['a bad publication status', { resourceType: 'Questionnaire', status: 'live' }],
      ['a missing required element', { resourceType: 'Observation', status: 'final' }],
      ['a malformed date', { resourceType: 'Patient', birthDate: '12-05-1980' }],
    ];
    for (const [name, resource] of cases) {
      test(`a resource with ${name} is refused with 400 and an OperationOutcome`, async () => {
        const { status, body } = await request('POST', `/${resource.resourceType}`, { body: resource });
        assert.equal(status, 400);
        assert.equal(body.resourceType, 'OperationOutcome');
        assert.equal(body.issue[0].severity, 'error');
      });
    }

    test('bad JSON is refused with 400', async () => {
      const { status, body } = await request('POST', '/Patient', { body: '{"resourceType": "Patient",' });
      assert.equal(status, 400);
      assert.equal(body.resourceType, 'OperationOutcome');
    });

    test('valid codes pass the binding check', async () => {
      const task = { resourceType: 'Task', status: 'ready', intent: 'order', for: { reference: 'Patient/pat-a' } };
      assert.equal((await request('POST', '/Task', { body: task })).status, 201);
    });
  });

  describe('transactions', () => {
    test('a failed transaction leaves nothing behind', async () => {
      const bundle = {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          {
            fullUrl: 'urn:uuid:11111111-1111-4111-8111-111111111111',
            resource: { resourceType: 'Patient', identifier: [{ system: 'urn:test:tx', value: 'rollback' }] },
            request: { method: 'POST', url: 'Patient' },
          },
          {
            resource: observation('x', {
              subject: { reference: 'urn:uuid:11111111-1111-4111-8111-111111111111' },
              status: 'nonsense', // refused by the required binding, after the Patient was written
            }),
            request: { method: 'POST', url: 'Observation' },
          },
        ],
      };
      const { status, body } = await request('POST', '', { body: bundle });
      assert.equal(status, 400);
      assert.equal(body.resourceType, 'OperationOutcome');
      const found = await request('GET', '/Patient?identifier=urn:test:tx|rollback');
      assert.equal(found.body.total, 0);
    });

    test('a transaction resolves urn:uuid references and answers per entry', async () => {
      const bundle = {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          {
            fullUrl: 'urn:uuid:22222222-2222-4222-8222-222222222222',
            resource: { resourceType: 'Patient', identifier: [{ system: 'urn:test:tx', value: 'ok' }] },
            request: { method: 'POST', url: 'Patient' },
          },
          {
            resource: observation('x', { subject: { reference: 'urn:uuid:22222222-2222-4222-8222-222222222222' } }),
            request: { method: 'POST', url: 'Observation' },
          },
        ],
      };
      const { status, body } = await request('POST', '', { body: bundle });
      assert.equal(status, 200);
      assert.equal(body.type, 'transaction-response');
      assert.deepEqual(body.entry.map((e) => e.response.status), ['201', '201']);
      const patientId = body.entry[0].resource.id;
      assert.equal(body.entry[1].resource.subject.reference, `Patient/${patientId}`);
      assert.ok(body.entry[0].response.etag.startsWith('W/"'));
    });

    test('a transaction with more than 8 entries and a conditional create is accepted', async () => {
      const entry = Array.from({ length: 10 }, (_, i) => ({
        resource: { resourceType: 'Patient', identifier: [{ system: 'urn:test:tx-many', value: String(i) }] },
        request: { method: 'POST', url: 'Patient', ifNoneExist: `identifier=urn:test:tx-many|${i}` },
      }));
      const bundle = { resourceType: 'Bundle', type: 'transaction', entry };
      assert.equal((await request('POST', '', { body: bundle })).status, 200);
      const again = await request('POST', '', { body: bundle });
      assert.deepEqual(new Set(again.body.entry.map((e) => e.response.status)), new Set(['200']));
      assert.equal((await request('GET', '/Patient?identifier=urn:test:tx-many|&_count=0')).body.total, 10);
    });
  });

  describe('search', () => {
    before(async () => {
      const code = { coding: [{ system: 'urn:test:paging', code: 'p' }] };
      await server.fhir.seed(Array.from({ length: 25 }, () => observation(PATIENT_A, { code })));
    });

    test('pages of 20 by default, with absolute next and previous links', async () => {
      const first = await request('GET', '/Observation?code=urn:test:paging|p');
      assert.equal(first.body.total, 25);
      assert.equal(first.body.entry.length, 20);
      const link = (bundle, relation) => bundle.link.find((l) => l.relation === relation)?.url;
      assert.ok(link(first.body, 'self').startsWith(`${server.base}/Observation?`));
      assert.equal(link(first.body, 'previous'), undefined);
      const second = await request('GET', link(first.body, 'next'));
      assert.equal(second.body.entry.length, 5);
      assert.equal(link(second.body, 'next'), undefined);
      const back = await request('GET', link(second.body, 'previous'));
      assert.deepEqual(ids(back.body), ids(first.body));
      const all = new Set([...ids(first.body), ...ids(second.body)]);
      assert.equal(all.size, 25);
      const fullUrl = (e) => `${server.base}/${e.resource.resourceType}/${e.resource.id}`;
      assert.ok(first.body.entry.every((e) => e.fullUrl === fullUrl(e)));
    });

    test('_include adds the referenced resource', async () => {
      const { body } = await request('GET', '/Observation?_id=obs-a&_include=Observation:subject');
      assert.deepEqual(ids(body), ['Observation/obs-a', `Patient/${PATIENT_A}`]);
      assert.equal(body.entry[1].search.mode, 'include');
    });

    test('POST _search takes a form body', async () => {
      const { status, body } = await request('POST', '/Observation/_search', {
        body: 'subject=Patient/pat-b',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      assert.equal(status, 200);
      assert.deepEqual(ids(body), ['Observation/obs-b']);
    });

    test('unknown parameters are ignored, or refused with handling=strict', async () => {
      const lenient = await request('GET', '/Observation?_id=obs-a&colour=blue');
      assert.deepEqual(ids(lenient.body), ['Observation/obs-a']);
      const headers = { prefer: 'handling=strict' };
      const strict = await request('GET', '/Observation?_id=obs-a&colour=blue', { headers });
      assert.equal(strict.status, 400);
    });
  });

  describe('authorisation', () => {
    test('a request without a token gets 401 with a Bearer challenge', async () => {
      const { status, headers, body } = await request('GET', `/Patient/${PATIENT_A}`, { token: null });
      assert.equal(status, 401);
      assert.match(headers.get('www-authenticate'), /^Bearer/);
      assert.equal(body.resourceType, 'OperationOutcome');
    });

    test('an invalid token gets 401', async () => {
      const { status, headers } = await request('GET', `/Patient/${PATIENT_A}`, { token: 'forged' });
      assert.equal(status, 401);
      assert.match(headers.get('www-authenticate'), /^Bearer error="invalid_token"/);
    });

    test('a scope for another type or interaction gets 403', async () => {
      const read = (path, token) => request('GET', path, { token }).then((r) => r.status);
      assert.equal(await read('/Observation/obs-a', 'user-observations'), 200);
      assert.equal(await read(`/Patient/${PATIENT_A}`, 'user-observations'), 403);
      assert.equal(await read('/Patient', 'user-observations'), 403);
      const write = await request('POST', '/Observation', { token: 'user-observations', body: observation(PATIENT_A) });
      assert.equal(write.status, 403);
      assert.equal(write.body.resourceType, 'OperationOutcome');

      const task = { resourceType: 'Task', status: 'ready', intent: 'order' };
      const created = await request('POST', '/Task', { token: 'user-task-cu', body: task });
      assert.equal(created.status, 201);
      assert.equal(await read(`/Task/${created.body.id}`, 'user-task-cu'), 403);
      assert.equal(await read('/Task', 'user-task-cu'), 403);
    });

    test('v1 write scopes allow create but not read', async () => {
      const created = await request('POST', '/Observation', { token: 'user-v1-write', body: observation(PATIENT_B) });
      assert.equal(created.status, 201);
      assert.equal((await request('GET', `/Observation/${created.body.id}`, { token: 'user-v1-write' })).status, 403);
    });

    for (const token of ['patient-a', 'patient-a-v1']) {
      test(`a patient A token (${TOKENS[token].scope.split(' ').at(-1)}) cannot read patient B`, async () => {
        const status = (path) => request('GET', path, { token }).then((r) => r.status);
        assert.equal(await status(`/Patient/${PATIENT_A}`), 200);
        assert.equal(await status('/Observation/obs-a'), 200);
        assert.equal(await status(`/Patient/${PATIENT_B}`), 403);
        assert.equal(await status('/Observation/obs-b'), 403);
        assert.equal(await status(`/Patient/${PATIENT_B}/_history`), 403);
      });

      test(`a patient A token (${TOKENS[token].scope.split(' ').at(-1)}) cannot find patient B by search`, async () => {
        const search = (path) => request('GET', path, { token }).then((r) => r.body);
        assert.deepEqual(ids(await search('/Patient')), [`Patient/${PATIENT_A}`]);
        assert.deepEqual(ids(await search(`/Patient?_id=${PATIENT_B}`)), []);
        assert.equal((await search('/Patient?gender=male')).total, 0);
        assert.deepEqual(ids(await search(`/Observation?subject=Patient/${PATIENT_B}`)), []);
        const all = await search('/Observation?_count=1000');
        assert.ok(all.entry.every((e) => e.resource.subject.reference === `Patient/${PATIENT_A}`));
        const included = await search('/Observation?_id=obs-b&_include=Observation:subject');
        assert.deepEqual(ids(included), []);
        const revincluded = await search(`/Patient?_id=${PATIENT_A}&_revinclude=Observation:subject&_count=1000`);
        assert.ok(!ids(revincluded).includes('Observation/obs-b'));
      });
    }

    test('a patient scope writes only inside its compartment', async () => {
      const own = await request('POST', '/Observation', { token: 'patient-a-writer', body: observation(PATIENT_A) });
      assert.equal(own.status, 201);
      const other = await request('POST', '/Observation', { token: 'patient-a-writer', body: observation(PATIENT_B) });
      assert.equal(other.status, 403);
      const obsB = (await request('GET', '/Observation/obs-b')).body;
      const hijack = await request('PUT', '/Observation/obs-b', {
        token: 'patient-a-writer',
        body: { ...obsB, subject: { reference: `Patient/${PATIENT_A}` } },
      });
      assert.equal(hijack.status, 403);
      assert.equal((await request('DELETE', '/Observation/obs-b', { token: 'patient-a-writer' })).status, 403);
    });

    test('each transaction entry is checked, and a refused entry undoes the rest', async () => {
      const bundle = {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          {
            resource: observation(PATIENT_A, { note: [{ text: 'tx-scope' }] }),
            request: { method: 'POST', url: 'Observation' },
          },
          { resource: observation(PATIENT_B), request: { method: 'POST', url: 'Observation' } },
        ],
      };
      const { status } = await request('POST', '', { token: 'patient-a-writer', body: bundle });
      assert.equal(status, 403);
      const all = await request('GET', '/Observation?_count=1000');
      assert.ok(!all.body.entry.some((e) => e.resource.note?.[0]?.text === 'tx-scope'));
    });

    test('a patient scope does not reach types outside the compartment by default', async () => {
      assert.equal((await request('GET', '/Questionnaire/q1', { token: 'patient-a' })).status, 403);
      assert.equal((await request('GET', '/Questionnaire', { token: 'patient-a' })).body.total, 0);
    });

    test('a patient scope without a patient in the token reaches nothing', async () => {
      const { body } = await request('GET', '/Patient', { token: 'patient-no-context' });
      assert.equal(body.total, 0);
      assert.equal((await request('GET', `/Patient/${PATIENT_A}`, { token: 'patient-no-context' })).status, 403);
    });
  });
});

describe('FHIR server without auth', () => {
  test('serves requests without a token', async () => {
    const server = await startServer({});
    try {
      const request = client(server.base);
      const created = await request('POST', '/Patient', { token: null, body: { resourceType: 'Patient' } });
      assert.equal(created.status, 201);
      assert.equal((await request('GET', `/Patient/${created.body.id}`, { token: null })).status, 200);
      const metadata = await request('GET', '/metadata', { token: null });
      assert.equal(metadata.body.rest[0].security, undefined);
    } finally {
      await server.close();
    }
  });
});

describe('FHIR server with shared types', () => {
  test('patient scopes read shared types in full but cannot write them', async () => {
    const server = await startServer({ verifyAccessToken: fakeVerify, sharedTypes: ['Questionnaire'] });
    try {
      const request = client(server.base);
      const [questionnaire] = await server.fhir.seed([{ resourceType: 'Questionnaire', status: 'active' }]);
      const path = `/Questionnaire/${questionnaire.id}`;
      assert.equal((await request('GET', path, { token: 'patient-a' })).status, 200);
      assert.equal((await request('GET', '/Questionnaire', { token: 'patient-a' })).body.total, 1);
      const retired = { ...questionnaire, status: 'retired' };
      const update = await request('PUT', path, { token: 'patient-a-all', body: retired });
      assert.equal(update.status, 403);
      assert.match(update.body.issue[0].details.text, /outside the patient compartment/);
    } finally {
      await server.close();
    }
  });
});

describe('parseScopes', () => {
  test('reads SMART v2 and v1 scopes and ignores the rest', () => {
    const grants = parseScopes('openid launch patient/Observation.rs user/*.write system/*.* patient/Task.rs?code=x');
    assert.deepEqual(grants, [
      { context: 'patient', type: 'Observation', letters: 'rs' },
      { context: 'user', type: '*', letters: 'cud' },
      { context: 'system', type: '*', letters: 'cruds' },
    ]);
  });
});

describe('rate limit', () => {
  test('a fixed one-second window per client; refused requests do not count', () => {
    let now = 10_000;
    const take = createRateLimiter(2, { now: () => now });
    assert.equal(take('a'), 0);
    now += 300;
    assert.equal(take('a'), 0);
    assert.equal(take('b'), 0); // another client has its own window
    assert.equal(take('a'), 1); // Retry-After in whole seconds, at least 1
    now += 699;
    assert.equal(take('a'), 1);
    now += 1; // the window that opened at 10_000 has ended
    assert.equal(take('a'), 0);
    assert.equal(take('a'), 0);
    assert.equal(take('a'), 1);
  });

  test('over the limit: 429, Retry-After and a throttled OperationOutcome; discovery is exempt', async () => {
    const server = await startServer({ verifyAccessToken: fakeVerify, smartConfiguration, rateLimit: 2 });
    try {
      const request = client(server.base);
      assert.equal((await request('GET', '/Patient', { token: 'admin' })).status, 200);
      assert.equal((await request('GET', '/Patient', { token: 'admin' })).status, 200);
      const refused = await request('GET', '/Patient', { token: 'admin' });
      assert.equal(refused.status, 429);
      assert.equal(refused.headers.get('retry-after'), '1');
      assert.equal(refused.body.resourceType, 'OperationOutcome');
      assert.equal(refused.body.issue[0].code, 'throttled');
      assert.equal((await request('GET', '/Patient', { token: 'user-observations' })).status, 403); // other client
      assert.equal((await request('GET', '/metadata', { token: undefined })).status, 200);
      assert.equal((await request('GET', '/.well-known/smart-configuration', { token: undefined })).status, 200);
      assert.equal((await request('GET', '/Patient', { token: 'nope' })).status, 401); // auth comes first
    } finally {
      await server.close();
    }
  });

  test('without auth the limit is per remote address', async () => {
    const server = await startServer({ rateLimit: 1 });
    try {
      const request = client(server.base);
      assert.equal((await request('GET', '/Patient', { token: undefined })).status, 200);
      assert.equal((await request('GET', '/Patient', { token: undefined })).status, 429);
    } finally {
      await server.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// The journal (--data)

const JOURNAL_SYSTEM = 'urn:test:journal';

/** A FHIR server without auth on port 0, journaled to `journalFile`. */
async function startJournaledServer(journalFile) {
  let fhir;
  const server = http.createServer((req, res) => fhir.handle(req, res));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}/fhir`;
  fhir = await createFhirServer({ baseUrl: base, journalFile });
  async function request(method, path, body, headers = {}) {
    const init = { method, headers: { ...headers } };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers['content-type'] = 'application/fhir+json';
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

const journalPatient = (value, extra = {}) => ({
  resourceType: 'Patient',
  identifier: [{ system: JOURNAL_SYSTEM, value }],
  ...extra,
});

function transactionOf(...entries) {
  return { resourceType: 'Bundle', type: 'transaction', entry: entries };
}

const post = (resource, extra = {}) => ({
  fullUrl: `urn:uuid:${crypto.randomUUID()}`,
  resource,
  request: { method: 'POST', url: resource.resourceType, ...extra },
});

const versionsOf = (bundle) => bundle.entry.map((e) => [e.resource.meta.versionId, e.resource.meta.lastUpdated]);

describe('FHIR journal', () => {
  let dir;
  let journalFile;
  const written = {};

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sandbox-journal-'));
    journalFile = join(dir, 'fhir-journal.jsonl');
    const first = await startJournaledServer(journalFile);
    const { fhir, request } = first;
    assert.equal(fhir.restored, false);
    await fhir.seed([
      { resourceType: 'Organization', id: 'org-1', name: 'Seeded' },
      { resourceType: 'Practitioner', id: 'prac-1', name: [{ family: 'Seeded' }] },
    ]);

    const created = await request('POST', '/Patient', journalPatient('kept'));
    assert.equal(created.status, 201);
    const updated = await request('PUT', `/Patient/${created.body.id}`, { ...created.body, active: true });
    assert.equal(updated.status, 200);
    const patch = [{ op: 'add', path: '/gender', value: 'female' }];
    const patched = await request('PATCH', `/Patient/${created.body.id}`, patch, {
      'content-type': 'application/json-patch+json',
    });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    written.kept = patched.body;
    written.keptHistory = (await request('GET', `/Patient/${created.body.id}/_history`)).body;

    const doomed = await request('POST', '/Patient', journalPatient('deleted'));
    assert.equal((await request('DELETE', `/Patient/${doomed.body.id}`)).status, 200);
    written.deleted = doomed.body.id;

    const conditional = await request('POST', '/Patient', journalPatient('conditional'), {
      'if-none-exist': `identifier=${JOURNAL_SYSTEM}|conditional`,
    });
    assert.equal(conditional.status, 201);
    written.conditional = conditional.body.id;

    const committed = await request('POST', '', transactionOf(
      post(journalPatient('tx-ok')),
      post(journalPatient('tx-ok-2')),
    ));
    assert.equal(committed.status, 200, JSON.stringify(committed.body));
    written.transaction = committed.body.entry.map((e) => e.resource.id);

    const failed = await request('POST', '', transactionOf(
      post(journalPatient('tx-rolled-back')),
      post({ resourceType: 'Task', status: 'not-a-status', intent: 'order' }),
    ));
    assert.equal(failed.status, 400);
    await first.close();
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  test('holds one record per commit, and nothing of a rolled-back transaction', () => {
    const text = readFileSync(journalFile, 'utf8');
    const commits = text.trimEnd().split('\n').map((line) => JSON.parse(line));
    // seed, create, update, patch, create, delete, conditional create, transaction
    assert.equal(commits.length, 8);
    assert.deepEqual(commits.map((c) => c.writes.length), [2, 1, 1, 1, 1, 1, 1, 2]);
    assert.equal(commits[5].writes[0].op, 'delete');
    assert.ok(commits[1].writes[0].resource.meta.versionId);
    assert.ok(!text.includes('tx-rolled-back'));
    assert.ok(!text.includes('not-a-status'));
  });

  test('is replayed on the next start: same ids, versions, history; deletes stay deleted', async () => {
    const second = await startJournaledServer(journalFile);
    try {
      assert.equal(second.fhir.restored, true);
      const { request } = second;
      const kept = await request('GET', `/Patient/${written.kept.id}`);
      assert.deepEqual(kept.body, written.kept);
      const history = (await request('GET', `/Patient/${written.kept.id}/_history`)).body;
      assert.equal(history.entry.length, 3);
      assert.deepEqual(versionsOf(history), versionsOf(written.keptHistory));
      const first = written.keptHistory.entry.at(-1).resource.meta.versionId;
      assert.equal((await request('GET', `/Patient/${written.kept.id}/_history/${first}`)).status, 200);
      assert.equal((await request('GET', `/Patient/${written.deleted}`)).status, 404);
      for (const id of [written.conditional, ...written.transaction]) {
        assert.equal((await request('GET', `/Patient/${id}`)).status, 200);
      }
      const rolledBack = await request('GET', `/Patient?identifier=${JOURNAL_SYSTEM}|tx-rolled-back`);
      assert.equal(rolledBack.body.total, 0);
      const again = await request('POST', '/Patient', journalPatient('conditional'), {
        'if-none-exist': `identifier=${JOURNAL_SYSTEM}|conditional`,
      });
      assert.equal(again.status, 200);
      assert.equal(again.body.id, written.conditional);
      assert.equal((await request('GET', '/Organization')).body.total, 1);
      // Writes after a restart go to the same journal.
      assert.equal((await request('POST', '/Patient', journalPatient('after-restart'))).status, 201);
    } finally {
      await second.close();
    }
    const lines = readFileSync(journalFile, 'utf8').trimEnd().split('\n');
    assert.equal(lines.length, 9);
  });

  test('a record cut short by a crash is dropped, and the journal goes on after it', async () => {
    const before = statSync(journalFile).size;
    appendFileSync(journalFile, '{"writes":[{"op":"put","resource":{"resourceType":"Patient","id":"torn"');
    const third = await startJournaledServer(journalFile);
    try {
      assert.equal(statSync(journalFile).size, before);
      assert.equal((await third.request('GET', '/Patient/torn')).status, 404);
      const created = await third.request('POST', '/Patient', journalPatient('after-torn'));
      assert.equal(created.status, 201);
    } finally {
      await third.close();
    }
    const journal = new Journal(journalFile);
    journal.close();
    assert.equal(journal.commits.at(-1).writes[0].resource.identifier[0].value, 'after-torn');
  });

  test('a damaged record before the end is an error, not silently skipped', () => {
    const damaged = join(dir, 'damaged.jsonl');
    appendFileSync(damaged, '{"writes":[]}\nnot json\n{"writes":[]}\n');
    assert.throws(() => new Journal(damaged), /line 2 is not a journal record/);
  });
});
