// Tests for the Koppeltaal profile of the FHIR server (src/koppeltaal.mjs, item 15 of
// src/fhir-server.mjs): a real server on 127.0.0.1, port 0, with `koppeltaal: true`, the KT seed
// and a fake token verifier whose claims are the domain's roles; and the whole sandbox started
// with `koppeltaal: true` (main.mjs), for what its info and its real tokens say.
// Run: cd /work/main && sandbox/node_modules/.bin/node --test sandbox/test/koppeltaal-fhir.test.mjs
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { importJWK, SignJWT } from 'jose';
import { createFhirServer, parseScopes } from '../src/fhir-server.mjs';
import {
  KOPPELTAAL_ROLES, RESOURCE_ORIGIN_URL, INSTANTIATES_URL, ENDPOINT_EXTENSION_URL, PUBLISHER_ID_URL,
  CLIENT_ID_SYSTEM, kt2Issues, notificationNarrowing, profileUrl, scopeMayRead,
} from '../src/koppeltaal.mjs';
import { startSandbox } from '../src/main.mjs';
import { allSeedResources, seedResources } from '../src/seed.mjs';

// Test tokens -> claims, as the Koppeltaal auth server's verifyAccessToken returns them.
const TOKENS = {
  module: { scope: KOPPELTAAL_ROLES['fhir-burnout'], client_id: 'fhir-burnout' },
  portal: { scope: KOPPELTAAL_ROLES.portal, client_id: 'portal' },
  other: {
    scope: 'system/ActivityDefinition.cruds?resource-origin=Device/other-module ' +
      'system/Endpoint.cruds?resource-origin=Device/other-module system/Task.rus',
    client_id: 'other-module',
  },
  // A second module: its role grants only what it made itself, not the portal's Tasks.
  second: {
    scope: 'system/Subscription.cruds?resource-origin=Device/second-module ' +
      'system/Task.rs?resource-origin=Device/second-module system/Endpoint.cruds?resource-origin=Device/second-module',
    client_id: 'second-module',
  },
  // A scope narrowed to another Device than the token's own: it can never create.
  'wrong-narrowing': { scope: 'system/Endpoint.cruds?resource-origin=Device/portal', client_id: 'fhir-burnout' },
  admin: { scope: 'system/*.cruds', client_id: 'domain-admin' },
};

async function fakeVerify(token) {
  const claims = TOKENS[token];
  if (!claims) {
    throw new Error('invalid token');
  }
  return claims;
}

/** A FHIR server on port 0; returns { base, fhir, request, close }. */
async function startServer(options) {
  let fhir;
  const server = http.createServer((req, res) => fhir.handle(req, res));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}/fhir`;
  fhir = await createFhirServer({ baseUrl: base, verifyAccessToken: fakeVerify, ...options });
  async function request(method, path, { token = 'module', body, headers = {} } = {}) {
    const init = { method, headers: { ...headers } };
    if (token) init.headers.authorization = `Bearer ${token}`;
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers['content-type'] ??= 'application/fhir+json';
    }
    const response = await fetch(path.startsWith('http') ? path : base + path, init);
    const text = await response.text();
    return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined };
  }
  async function close() {
    fhir.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  return { base, fhir, request, close };
}

/**
 * A self-signed certificate for 127.0.0.1, made here with openssl: {cert, key} as PEM. The
 * Koppeltaal server notifies only https endpoints, so the test's receiver needs one.
 */
function loopbackCertificate() {
  const dir = mkdtempSync(path.join(tmpdir(), 'kt-tls-'));
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'),
    ], { stdio: 'ignore' });
    return { cert: readFileSync(path.join(dir, 'cert.pem'), 'utf8'), key: readFileSync(path.join(dir, 'key.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const origin = (resource) => resource.extension?.filter((e) => e.url === RESOURCE_ORIGIN_URL)
  .map((e) => e.valueReference.reference);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
/** A fresh identifier, and its `system|value` search string. */
function uniqueIdentifier() {
  const identifier = { system: 'https://module.example/endpoint', value: randomUUID() };
  return [[identifier], encodeURIComponent(`${identifier.system}|${identifier.value}`)];
}
const expressions = (outcome) => outcome.issue.flatMap((i) => i.expression ?? []);

function endpoint(extra = {}) {
  return {
    resourceType: 'Endpoint',
    meta: { profile: [profileUrl('Endpoint')] },
    status: 'active',
    connectionType: {
      system: 'http://vzvz.nl/fhir/CodeSystem/koppeltaal-endpoint-connection-type',
      code: 'hti-smart-on-fhir',
    },
    payloadType: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/endpoint-payload-type', code: 'any' }] }],
    address: 'https://module.example/koppeltaal/launch',
    ...extra,
  };
}

function activityDefinition(endpointId, extra = {}) {
  return {
    resourceType: 'ActivityDefinition',
    meta: { profile: [profileUrl('ActivityDefinition')] },
    extension: [
      { url: ENDPOINT_EXTENSION_URL, valueReference: { reference: `Endpoint/${endpointId}` } },
      { url: PUBLISHER_ID_URL, valueId: 'fhir-burnout' },
    ],
    url: `https://fhir-burnout.example/ActivityDefinition/${randomUUID()}`,
    title: 'Lichaamssignalen herkennen',
    status: 'active',
    ...extra,
  };
}

function task(definitionId, extra = {}) {
  return {
    resourceType: 'Task',
    meta: { profile: [profileUrl('Task')] },
    extension: [{ url: INSTANTIATES_URL, valueReference: { reference: `ActivityDefinition/${definitionId}` } }],
    identifier: [{ system: 'http://fhir-burnout.example/portal-task', value: randomUUID() }],
    status: 'ready',
    intent: 'order',
    priority: 'routine',
    for: { reference: 'Patient/pat-01' },
    owner: { reference: 'Patient/pat-01' },
    requester: { reference: 'Practitioner/prac-1' },
    ...extra,
  };
}

describe('Koppeltaal FHIR rules', () => {
  let server;
  let request;
  let definitionId;
  let endpointId;
  const tls = loopbackCertificate();

  before(async () => {
    server = await startServer({ koppeltaal: true, subscriptionDelivery: { ca: tls.cert } });
    request = server.request;
    await server.fhir.seed(allSeedResources(seedResources({ koppeltaal: true })));
    const ep = await request('POST', '/Endpoint', { body: endpoint() });
    assert.equal(ep.status, 201, JSON.stringify(ep.body));
    endpointId = ep.body.id;
    const ad = await request('POST', '/ActivityDefinition', { body: activityDefinition(endpointId) });
    assert.equal(ad.status, 201, JSON.stringify(ad.body));
    definitionId = ad.body.id;
  });

  after(() => server?.close());

  describe('ids and create', () => {
    test('a POST create gets a server-assigned UUIDv4 id and resource-origin of the token\'s Device', async () => {
      const created = await request('POST', '/Endpoint', { body: endpoint({ id: 'my-own-id' }) });
      assert.equal(created.status, 201);
      assert.match(created.body.id, UUID);
      assert.notEqual(created.body.id, 'my-own-id');
      assert.deepEqual(origin(created.body), ['Device/fhir-burnout']);
      assert.match(created.headers.get('location'), new RegExp(`/Endpoint/${created.body.id}/_history/`));
      const read = await request('GET', `/Endpoint/${created.body.id}`);
      assert.deepEqual(origin(read.body), ['Device/fhir-burnout']);
      assert.equal((await request('GET', '/Endpoint/my-own-id')).status, 404);
    });

    test('a create that carries resource-origin is refused with 400 and nothing is stored', async () => {
      const url = `https://fhir-burnout.example/ActivityDefinition/${randomUUID()}`;
      const body = activityDefinition(endpointId, { url });
      body.extension.push({ url: RESOURCE_ORIGIN_URL, valueReference: { reference: 'Device/fhir-burnout' } });
      const refused = await request('POST', '/ActivityDefinition', { body });
      assert.equal(refused.status, 400);
      assert.match(refused.body.issue[0].details.text, /resource-origin is set by the server/);
      assert.equal((await request('GET', `/ActivityDefinition?url=${encodeURIComponent(url)}`)).body.total, 0);
    });

    test('PUT to an id that does not exist is refused with 405 (PUT-create) and creates nothing', async () => {
      const refused = await request('PUT', '/Endpoint/chosen-by-client', { body: endpoint({ id: 'chosen-by-client' }) });
      assert.equal(refused.status, 405);
      assert.match(refused.body.issue[0].details.text, /PUT-create is not allowed/);
      assert.equal((await request('GET', '/Endpoint/chosen-by-client')).status, 404);
    });

    test('a conditional PUT that matches nothing is a PUT-create too: 405', async () => {
      const [identifier, search] = uniqueIdentifier();
      const refused = await request('PUT', `/Endpoint?identifier=${search}`, { body: endpoint({ identifier }) });
      assert.equal(refused.status, 405);
      assert.equal((await request('GET', `/Endpoint?identifier=${search}`)).body.total, 0);
    });

    test('a transaction\'s POST entries get server ids, origin and their urn:uuid references resolved', async () => {
      const placeholder = `urn:uuid:${randomUUID()}`;
      const answer = await request('POST', '', {
        body: {
          resourceType: 'Bundle',
          type: 'transaction',
          entry: [
            { fullUrl: placeholder, resource: endpoint(), request: { method: 'POST', url: 'Endpoint' } },
            {
              resource: activityDefinition('placeholder', {
                extension: [{ url: ENDPOINT_EXTENSION_URL, valueReference: { reference: placeholder } }],
              }),
              request: { method: 'POST', url: 'ActivityDefinition' },
            },
          ],
        },
      });
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      const [epLocation, adLocation] = answer.body.entry.map((e) => e.response.location);
      const ep = await request('GET', `/${epLocation.split('/_history')[0]}`);
      const ad = await request('GET', `/${adLocation.split('/_history')[0]}`);
      assert.match(ep.body.id, UUID);
      assert.deepEqual(origin(ep.body), ['Device/fhir-burnout']);
      assert.deepEqual(origin(ad.body), ['Device/fhir-burnout']);
      assert.equal(ad.body.extension[0].valueReference.reference, `Endpoint/${ep.body.id}`);
    });

    test('a transaction with a PUT-create entry is refused whole: its POST entry is not kept', async () => {
      const [identifier, search] = uniqueIdentifier();
      const answer = await request('POST', '', {
        body: {
          resourceType: 'Bundle',
          type: 'transaction',
          entry: [
            { resource: endpoint({ identifier }), request: { method: 'POST', url: 'Endpoint' } },
            { resource: endpoint({ id: 'tx-put-create' }), request: { method: 'PUT', url: 'Endpoint/tx-put-create' } },
          ],
        },
      });
      assert.equal(answer.status, 405, JSON.stringify(answer.body));
      assert.equal((await request('GET', `/Endpoint?identifier=${search}`)).body.total, 0);
      assert.equal((await request('GET', '/Endpoint/tx-put-create')).status, 404);
    });
  });

  describe('batches', () => {
    test('each batch entry gets its own answer: 201 for a POST, 412 without If-Match, 405 for a PUT-create', async () => {
      const stored = (await request('POST', '/Endpoint', { body: endpoint() })).body;
      const answer = await request('POST', '', {
        body: {
          resourceType: 'Bundle',
          type: 'batch',
          entry: [
            { resource: endpoint(), request: { method: 'POST', url: 'Endpoint' } },
            { resource: { ...stored, name: 'x' }, request: { method: 'PUT', url: `Endpoint/${stored.id}` } },
            { resource: endpoint({ id: 'batch-put-create' }), request: { method: 'PUT', url: 'Endpoint/batch-put-create' } },
          ],
        },
      });
      assert.equal(answer.status, 200);
      assert.deepEqual(answer.body.entry.map((e) => e.response.status), ['201', '412', '405']);
    });
  });

  describe('updates', () => {
    async function freshEndpoint() {
      return (await request('POST', '/Endpoint', { body: endpoint() })).body;
    }

    test('a PUT without If-Match is refused with 412, as the reference does, and changes nothing', async () => {
      const stored = await freshEndpoint();
      const refused = await request('PUT', `/Endpoint/${stored.id}`, { body: { ...stored, name: 'zonder If-Match' } });
      assert.equal(refused.status, 412);
      assert.match(refused.body.issue[0].details.text, /If-Match/);
      assert.equal((await request('GET', `/Endpoint/${stored.id}`)).body.name, undefined);
    });

    test('a PUT with a stale If-Match is refused with 412; with the current one it is stored, origin kept', async () => {
      const stored = await freshEndpoint();
      const first = await request('PUT', `/Endpoint/${stored.id}`, {
        body: { ...stored, name: 'eerste' },
        headers: { 'if-match': `W/"${stored.meta.versionId}"` },
      });
      assert.equal(first.status, 200);
      assert.deepEqual(origin(first.body), ['Device/fhir-burnout']);
      const stale = await request('PUT', `/Endpoint/${stored.id}`, {
        body: { ...stored, name: 'verouderd' },
        headers: { 'if-match': `W/"${stored.meta.versionId}"` },
      });
      assert.equal(stale.status, 412);
      assert.equal((await request('GET', `/Endpoint/${stored.id}`)).body.name, 'eerste');
    });

    test('an update that changes resource-origin is refused with 403; the stored one stays', async () => {
      const stored = await freshEndpoint();
      const ifMatch = { 'if-match': `W/"${stored.meta.versionId}"` };
      const changed = {
        ...stored,
        extension: [{ url: RESOURCE_ORIGIN_URL, valueReference: { reference: 'Device/portal' } }],
      };
      const refused = await request('PUT', `/Endpoint/${stored.id}`, { body: changed, headers: ifMatch });
      assert.equal(refused.status, 403, JSON.stringify(refused.body));
      assert.match(refused.body.issue[0].details.text, /resource-origin may not be changed/);
      const twice = { ...stored, extension: [...stored.extension, ...stored.extension] };
      assert.equal((await request('PUT', `/Endpoint/${stored.id}`, { body: twice, headers: ifMatch })).status, 400);
      const read = await request('GET', `/Endpoint/${stored.id}`);
      assert.deepEqual(origin(read.body), ['Device/fhir-burnout']);
      assert.equal(read.body.meta.versionId, stored.meta.versionId);
    });

    test('an update that leaves resource-origin out is stored with the stored one put back', async () => {
      const stored = await freshEndpoint();
      const { extension: _origin, ...withoutOrigin } = stored;
      const updated = await request('PUT', `/Endpoint/${stored.id}`, {
        body: { ...withoutOrigin, name: 'zonder herkomst' },
        headers: { 'if-match': `W/"${stored.meta.versionId}"` },
      });
      assert.equal(updated.status, 200, JSON.stringify(updated.body));
      assert.deepEqual(origin(updated.body), ['Device/fhir-burnout']);
      const read = (await request('GET', `/Endpoint/${stored.id}`)).body;
      assert.equal(read.name, 'zonder herkomst');
      assert.deepEqual(origin(read), ['Device/fhir-burnout']);
    });

    test('PATCH needs If-Match and may not touch resource-origin either', async () => {
      const stored = await freshEndpoint();
      const patch = [{ op: 'add', path: '/name', value: 'gepatcht' }];
      const headers = { 'content-type': 'application/json-patch+json' };
      const missing = await request('PATCH', `/Endpoint/${stored.id}`, { body: patch, headers });
      assert.equal(missing.status, 412);
      const ifMatch = { ...headers, 'if-match': `W/"${stored.meta.versionId}"` };
      const originPatch = [{ op: 'remove', path: '/extension' }];
      assert.equal((await request('PATCH', `/Endpoint/${stored.id}`, { body: originPatch, headers: ifMatch })).status, 403);
      const ok = await request('PATCH', `/Endpoint/${stored.id}`, { body: patch, headers: ifMatch });
      assert.equal(ok.status, 200);
      assert.equal(ok.body.name, 'gepatcht');
      assert.deepEqual(origin(ok.body), ['Device/fhir-burnout']);
    });
  });

  describe('the scopes\' resource-origin narrowing', () => {
    test('another module may not read, find, update or delete this module\'s ActivityDefinition', async () => {
      const stored = (await request('GET', `/ActivityDefinition/${definitionId}`)).body;
      const read = await request('GET', `/ActivityDefinition/${definitionId}`, { token: 'other' });
      assert.equal(read.status, 403);
      assert.match(read.body.issue[0].details.text, /only with resource-origin Device\/other-module/);
      const found = await request('GET', `/ActivityDefinition?_id=${definitionId}`, { token: 'other' });
      assert.equal(found.status, 200);
      assert.equal(found.body.total ?? found.body.entry?.length ?? 0, 0);
      const update = await request('PUT', `/ActivityDefinition/${definitionId}`, {
        token: 'other',
        body: { ...stored, title: 'overgenomen' },
        headers: { 'if-match': `W/"${stored.meta.versionId}"` },
      });
      assert.equal(update.status, 403);
      assert.equal((await request('DELETE', `/ActivityDefinition/${definitionId}`, { token: 'other' })).status, 403);
      assert.equal((await request('GET', `/ActivityDefinition/${definitionId}`)).body.title, stored.title);
    });

    test('the owner may delete its own Endpoint; a create under a scope narrowed to another Device is 403', async () => {
      const own = (await request('POST', '/Endpoint', { body: endpoint() })).body;
      const deleted = await request('DELETE', `/Endpoint/${own.id}`);
      assert.equal(deleted.status, 200);
      assert.equal((await request('GET', `/Endpoint/${own.id}`)).status, 404);
      const refused = await request('POST', '/Endpoint', { token: 'wrong-narrowing', body: endpoint() });
      assert.equal(refused.status, 403);
    });

    test('the module may update a portal Task\'s status (Task.rus is not narrowed), but not create Tasks', async () => {
      const created = await request('POST', '/Task', { token: 'portal', body: task(definitionId) });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      assert.deepEqual(origin(created.body), ['Device/portal']);
      const started = await request('PUT', `/Task/${created.body.id}`, {
        body: { ...created.body, status: 'in-progress' },
        headers: { 'if-match': `W/"${created.body.meta.versionId}"` },
      });
      assert.equal(started.status, 200, JSON.stringify(started.body));
      assert.deepEqual(origin(started.body), ['Device/portal']);
      assert.equal((await request('POST', '/Task', { body: task(definitionId) })).status, 403);
    });

    test('the portal reads the module\'s DocumentReferences (Documenten Delen) but writes none', async () => {
      const document = {
        resourceType: 'DocumentReference',
        meta: { profile: [profileUrl('DocumentReference')] },
        status: 'current',
        type: { coding: [{ system: 'http://loinc.org', code: '11506-3' }] },
        subject: { reference: 'Patient/pat-01' },
        date: '2026-06-09T10:00:00+02:00',
        content: [{ attachment: { contentType: 'text/html', url: 'https://module.example/results/1' } }],
        context: { related: [{ reference: 'Task/kt-task-1' }] }, // KT2_DocumentReference: 1..1 Task
      };
      const created = await request('POST', '/DocumentReference', { body: document });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const read = await request('GET', `/DocumentReference/${created.body.id}`, { token: 'portal' });
      assert.equal(read.status, 200, JSON.stringify(read.body));
      const found = await request('GET', '/DocumentReference?subject=Patient/pat-01', { token: 'portal' });
      assert.ok(found.body.entry.some((e) => e.resource.id === created.body.id));
      assert.equal((await request('POST', '/DocumentReference', { token: 'portal', body: document })).status, 403);
    });

    test('outside KT mode a narrowed scope grants nothing, as before', () => {
      const scope = 'system/Endpoint.cruds?resource-origin=Device/x system/Task.rs';
      assert.deepEqual(parseScopes(scope).map((g) => g.type), ['Task']);
      assert.deepEqual(
        parseScopes(scope, { originNarrowing: true }).map((g) => [g.type, g.origin]),
        [['Endpoint', 'Device/x'], ['Task', undefined]],
      );
      assert.deepEqual(parseScopes('system/Task.rs?status=ready', { originNarrowing: true }), []);
    });
  });

  describe('KT2 validation (422 naming the element)', () => {
    const cases = [
      ['Task with input', () => ['portal', task(definitionId, { input: [{ type: { text: 'q' }, valueString: 'x' }] })], 'Task.input'],
      ['Task with output', () => ['portal', task(definitionId, { output: [{ type: { text: 'q' }, valueString: 'x' }] })], 'Task.output'],
      ['Task with basedOn', () => ['portal', task(definitionId, { basedOn: [{ reference: 'CarePlan/x' }] })], 'Task.basedOn'],
      ['Task with note', () => ['portal', task(definitionId, { note: [{ text: 'x' }] })], 'Task.note'],
      ['Task with businessStatus', () => ['portal', task(definitionId, { businessStatus: { text: 'x' } })], 'Task.businessStatus'],
      ['Task without identifier', () => ['portal', task(definitionId, { identifier: undefined })], 'Task.identifier'],
      ['Task without owner', () => ['portal', task(definitionId, { owner: undefined })], 'Task.owner'],
      ['Task for a Practitioner', () => ['portal', task(definitionId, { for: { reference: 'Practitioner/prac-1' } })], 'Task.for'],
      ['Task with priority stat', () => ['portal', task(definitionId, { priority: 'stat' })], 'Task.priority'],
      ['Task without instantiates', () => ['portal', task(definitionId, { extension: [] })], `Task.extension('${INSTANTIATES_URL}')`],
      ['Task without meta.profile', () => ['portal', task(definitionId, { meta: undefined })], 'Task.meta.profile'],
      ['ActivityDefinition with publisher', () => ['module', activityDefinition(endpointId, { publisher: 'X' })], 'ActivityDefinition.publisher'],
      ['ActivityDefinition with kind', () => ['module', activityDefinition(endpointId, { kind: 'Task' })], 'ActivityDefinition.kind'],
      ['ActivityDefinition without title', () => ['module', activityDefinition(endpointId, { title: undefined })], 'ActivityDefinition.title'],
      ['ActivityDefinition without endpoint', () => ['module', activityDefinition(endpointId, { extension: [] })], `ActivityDefinition.extension('${ENDPOINT_EXTENSION_URL}')`],
      ['Endpoint with another connectionType', () => ['module', endpoint({ connectionType: { system: 'http://terminology.hl7.org/CodeSystem/endpoint-connection-type', code: 'hl7-fhir-rest' } })], 'Endpoint.connectionType'],
      ['Endpoint with a payloadMimeType', () => ['module', endpoint({ payloadMimeType: ['text/html'] })], 'Endpoint.payloadMimeType'],
      // Caught only by the compiled KT2 StructureDefinitions (src/kt2-profiles.mjs), issue 19:
      ['Endpoint with a connectionType display', () => ['module', endpoint({ connectionType: { ...endpoint().connectionType, display: 'HTI Smart on FHIR' } })], 'Endpoint.connectionType'],
      ['Endpoint without meta.profile', () => ['module', endpoint({ meta: undefined })], 'Endpoint.meta.profile'],
      ['DocumentReference without its Task', () => ['module', { resourceType: 'DocumentReference', meta: { profile: [profileUrl('DocumentReference')] }, status: 'current', type: { text: 'x' }, subject: { reference: 'Patient/pat-01' }, date: '2026-03-01T09:30:00Z', content: [{ attachment: { url: 'https://module.example/r/1' } }], context: { related: [{ reference: 'Patient/pat-01' }] } }], 'DocumentReference.context.related:task'],
      ['Endpoint on plain http elsewhere', () => ['module', endpoint({ address: 'http://module.example/launch' })], 'Endpoint.address'],
      ['AuditEvent by a Practitioner', () => ['module', auditEvent({ agent: [{ type: { text: 'x' }, who: { reference: 'Practitioner/prac-1' }, requestor: true }] })], 'AuditEvent.agent[0].who'],
      ['AuditEvent without entity', () => ['module', auditEvent({ entity: undefined })], 'AuditEvent.entity'],
      ['Subscription with a payload', () => ['module', subscription({ payload: 'application/fhir+json' })], 'Subscription.channel.payload'],
      ['Patient with communication', () => ['portal', patient({ communication: [{ language: { text: 'nl' } }] })], 'Patient.communication'],
      ['Patient name without use', () => ['portal', patient({ name: [{ family: 'Proef', given: ['Piet'] }] })], 'Patient.name[0].use'],
      ['Practitioner without email', () => ['portal', practitioner({ telecom: [{ system: 'phone', value: '+31 20 000 0000' }] })], 'Practitioner.telecom'],
    ];
    for (const [name, make, element] of cases) {
      test(`${name}: 422 naming ${element}`, async () => {
        const [token, body] = make();
        const refused = await request('POST', `/${body.resourceType}`, { token, body });
        assert.equal(refused.status, 422, JSON.stringify(refused.body));
        assert.ok(expressions(refused.body).includes(element), JSON.stringify(refused.body));
      });
    }

    test('the valid KT2 resources of each profile are accepted', async () => {
      for (const [token, body] of [
        ['portal', task(definitionId)], ['module', auditEvent()], ['module', subscription()],
        ['portal', patient()], ['portal', practitioner()],
      ]) {
        const created = await request('POST', `/${body.resourceType}`, { token, body });
        assert.equal(created.status, 201, `${body.resourceType}: ${JSON.stringify(created.body)}`);
      }
    });

    test('an update is validated too: a Task status change that adds output is 422', async () => {
      const created = (await request('POST', '/Task', { token: 'portal', body: task(definitionId) })).body;
      const refused = await request('PUT', `/Task/${created.id}`, {
        body: { ...created, status: 'completed', output: [{ type: { text: 'score' }, valueInteger: 3 }] },
        headers: { 'if-match': `W/"${created.meta.versionId}"` },
      });
      assert.equal(refused.status, 422);
      assert.deepEqual(expressions(refused.body), ['Task.output']);
      assert.equal((await request('GET', `/Task/${created.id}`)).body.status, 'ready');
    });

    test('the KT seed is valid KT2 itself', () => {
      for (const resource of allSeedResources(seedResources({ koppeltaal: true }))) {
        assert.deepEqual(kt2Issues(resource), [], `${resource.resourceType}/${resource.id}`);
      }
    });
  });

  describe('as the reference domain answers', () => {
    test('a Subscription to a plain-http endpoint is refused with 422, on create and on update', async () => {
      const refused = await request('POST', '/Subscription', { body: subscription({ endpoint: 'http://127.0.0.1:9/notify' }) });
      assert.equal(refused.status, 422, JSON.stringify(refused.body));
      assert.deepEqual(expressions(refused.body), ['Subscription.channel.endpoint']);
      assert.match(refused.body.issue[0].details.text, /must start with https:\/\//);
      const created = (await request('POST', '/Subscription', { body: subscription() })).body;
      const downgraded = await request('PUT', `/Subscription/${created.id}`, {
        body: { ...created, channel: { ...created.channel, endpoint: 'http://127.0.0.1:9/notify' } },
        headers: { 'if-match': `W/"${created.meta.versionId}"` },
      });
      assert.equal(downgraded.status, 422);
      assert.equal((await request('GET', `/Subscription/${created.id}`)).body.channel.endpoint, created.channel.endpoint);
    });

    test('a type the domain does not serve is 404, whatever the scopes; /metadata lists only its types', async () => {
      const observation = { resourceType: 'Observation', status: 'final', code: { text: 'x' } };
      for (const [method, url, body] of [
        ['GET', '/Observation/x'], ['GET', '/Observation?code=x'], ['POST', '/Observation', observation],
        ['GET', '/Questionnaire'],
      ]) {
        const answer = await request(method, url, { token: 'admin', body });
        assert.equal(answer.status, 404, `${method} ${url}: ${JSON.stringify(answer.body)}`);
        assert.match(answer.body.issue[0].details.text, /Unknown resource type/);
      }
      const batch = await request('POST', '', {
        token: 'admin',
        body: { resourceType: 'Bundle', type: 'batch', entry: [{ resource: observation, request: { method: 'POST', url: 'Observation' } }] },
      });
      assert.deepEqual(batch.body.entry.map((e) => e.response.status), ['404']);
      const types = (await request('GET', '/metadata')).body.rest[0].resource.map((r) => r.type);
      assert.ok(types.includes('Task') && types.includes('CareTeam'));
      assert.ok(!types.includes('Observation') && !types.includes('Questionnaire'));
    });

    test('reads and searches are narrowed to the origins the role names: the module sees the portal\'s Tasks only', async () => {
      const portalTask = (await request('POST', '/Task', { token: 'portal', body: task(definitionId) })).body;
      const strangerTask = await request('POST', '/Task', { token: 'admin', body: task(definitionId) });
      assert.equal(strangerTask.status, 201, JSON.stringify(strangerTask.body));
      assert.equal((await request('GET', `/Task/${portalTask.id}`)).status, 200);
      const read = await request('GET', `/Task/${strangerTask.body.id}`);
      assert.equal(read.status, 403);
      assert.match(read.body.issue[0].details.text, /only with resource-origin Device\/portal/);
      assert.equal((await request('GET', `/Task/${strangerTask.body.id}/_history`)).status, 403);
      const ids = `${portalTask.id},${strangerTask.body.id}`;
      const found = await request('GET', `/Task?_id=${ids}`);
      assert.deepEqual(found.body.entry.map((e) => e.resource.id), [portalTask.id]);
      const byAdmin = await request('GET', `/Task?_id=${ids}`, { token: 'admin' });
      assert.equal(byAdmin.body.entry.length, 2);
      // A role without narrowing for the type (the module's CareTeam.rs) reads all of them.
      const team = await request('POST', '/CareTeam', { token: 'admin', body: { resourceType: 'CareTeam', status: 'active' } });
      assert.equal((await request('GET', `/CareTeam/${team.body.id}`)).status, 200);
    });
  });

  describe('care teams', () => {
    test('the module reads a care professional\'s CareTeams: who treats whom, as the portal made them', async () => {
      const found = await request('GET', '/CareTeam?participant=Practitioner/prac-1&status=active');
      assert.equal(found.status, 200, JSON.stringify(found.body));
      const teams = found.body.entry.map((e) => e.resource);
      // pat-05's team is inactive (not found); pat-06's is active but its period ended: the
      // reader checks the period itself (the IG's CareTeam notes).
      assert.deepEqual(teams.map((t) => t.subject.reference).sort(), ['Patient/pat-01', 'Patient/pat-02', 'Patient/pat-06']);
      assert.ok(teams.every((t) => origin(t).includes('Device/portal')));
      const other = await request('GET', '/CareTeam?participant=Practitioner/prac-2&status=active');
      assert.deepEqual(other.body.entry.map((e) => e.resource.subject.reference), ['Patient/pat-03']);
    });

    test('the module may not write CareTeams: they are the portal\'s', async () => {
      const team = (await request('GET', '/CareTeam/careteam-pat-01')).body;
      const put = await request('PUT', '/CareTeam/careteam-pat-01', {
        body: { ...team, status: 'inactive' },
        headers: { 'if-match': `W/"${team.meta.versionId}"` },
      });
      assert.equal(put.status, 403);
    });
  });

  describe('AuditEvents are never updated or deleted', () => {
    test('PUT and DELETE of an AuditEvent are 405, even with a scope that allows them', async () => {
      const created = (await request('POST', '/AuditEvent', { body: auditEvent() })).body;
      assert.deepEqual(origin(created), ['Device/fhir-burnout']);
      const put = await request('PUT', `/AuditEvent/${created.id}`, {
        token: 'admin',
        body: { ...created, outcome: '8' },
        headers: { 'if-match': `W/"${created.meta.versionId}"` },
      });
      assert.equal(put.status, 405);
      assert.equal((await request('DELETE', `/AuditEvent/${created.id}`, { token: 'admin' })).status, 405);
      assert.equal((await request('GET', `/AuditEvent/${created.id}`, { token: 'admin' })).body.outcome, '0');
    });
  });

  describe('trace headers', () => {
    test('every answer has a new X-Request-Id; X-Trace-Id is echoed, or made when absent', async () => {
      const answers = [
        await request('GET', '/metadata', { token: undefined }),
        await request('GET', '/Patient', { token: 'NOOP' }), // 401: NOOP is no FHIR token
        await request('GET', '/Patient/pat-01'),
        await request('PUT', '/Patient/nobody', { token: 'portal', body: patient({ id: 'nobody' }) }), // 405
      ];
      assert.deepEqual(answers.map((a) => a.status), [200, 401, 200, 405]);
      const requestIds = answers.map((a) => a.headers.get('x-request-id'));
      requestIds.forEach((id) => assert.match(id, UUID));
      assert.equal(new Set(requestIds).size, requestIds.length);
      answers.forEach((a) => assert.match(a.headers.get('x-trace-id'), UUID));
      const traced = await request('GET', '/Patient/pat-01', { headers: { 'x-trace-id': 'launch-jti-123' } });
      assert.equal(traced.headers.get('x-trace-id'), 'launch-jti-123');
      assert.equal(traced.headers.get('x-correlation-id'), null);
    });

    test('a client\'s own X-Request-Id is the request\'s id, and its X-Correlation-Id is echoed', async () => {
      const requestId = randomUUID();
      const answer = await request('GET', '/Patient/pat-01', {
        headers: { 'x-request-id': requestId, 'x-correlation-id': 'notification-42' },
      });
      assert.equal(answer.headers.get('x-request-id'), requestId);
      assert.equal(answer.headers.get('x-correlation-id'), 'notification-42');
      const unsafe = await request('GET', '/Patient/pat-01', { headers: { 'x-request-id': 'two words' } });
      assert.match(unsafe.headers.get('x-request-id'), UUID);
    });

    test('a notification carries a new X-Request-Id, the write\'s X-Trace-Id, and the write\'s request id as X-Correlation-Id', async () => {
      const received = [];
      const receiver = https.createServer(tls, (req, res) => {
        received.push(req.headers);
        res.writeHead(200).end();
      });
      await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
      try {
        const marker = randomUUID();
        const sub = await request('POST', '/Subscription', {
          body: subscription({
            endpoint: `https://127.0.0.1:${receiver.address().port}/notify`,
            criteria: `Task?identifier=http://fhir-burnout.example/portal-task|${marker}`,
          }),
        });
        assert.equal(sub.status, 201, JSON.stringify(sub.body));
        const write = await request('POST', '/Task', {
          token: 'portal',
          body: task(definitionId, { identifier: [{ system: 'http://fhir-burnout.example/portal-task', value: marker }] }),
          headers: { 'x-trace-id': 'trace-of-the-assignment', 'x-request-id': 'assignment-request' },
        });
        assert.equal(write.status, 201);
        assert.equal(write.headers.get('x-request-id'), 'assignment-request');
        for (let i = 0; i < 100 && !received.length; i += 1) await sleep(20);
        assert.equal(received.length, 1);
        const [headers] = received;
        assert.equal(headers['x-trace-id'], 'trace-of-the-assignment');
        assert.equal(headers['x-correlation-id'], write.headers.get('x-request-id'));
        assert.match(headers['x-request-id'], UUID);
        assert.notEqual(headers['x-request-id'], write.headers.get('x-request-id'));
      } finally {
        receiver.closeAllConnections();
        await new Promise((resolve) => receiver.close(resolve));
      }
    });

    test('a portal Task notifies the module its role grants it to, not a second module whose role does not', async () => {
      await server.fhir.seed([{
        resourceType: 'Device', id: 'second-module', meta: { profile: [profileUrl('Device')] },
        identifier: [{ system: CLIENT_ID_SYSTEM, value: 'second-module' }], status: 'active',
      }]);
      const received = [];
      const receiver = https.createServer(tls, (req, res) => {
        received.push(req.url);
        res.writeHead(200).end();
      });
      await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
      const at = (where) => `https://127.0.0.1:${receiver.address().port}/${where}`;
      try {
        const marker = randomUUID();
        const tasks = `Task?identifier=http://fhir-burnout.example/portal-task|${marker}`;
        for (const [token, where, criteria] of [
          ['module', 'module', tasks],
          ['second', 'second', tasks],
          // The second module's own Endpoints: it is notified of what it may read.
          ['second', 'second-endpoint', `Endpoint?identifier=https://module.example/endpoint|${marker}`],
        ]) {
          const sub = await request('POST', '/Subscription', { token, body: subscription({ endpoint: at(where), criteria }) });
          assert.equal(sub.status, 201, JSON.stringify(sub.body));
        }
        const write = await request('POST', '/Task', {
          token: 'portal',
          body: task(definitionId, { identifier: [{ system: 'http://fhir-burnout.example/portal-task', value: marker }] }),
        });
        assert.equal(write.status, 201, JSON.stringify(write.body));
        const own = await request('POST', '/Endpoint', {
          token: 'second', body: endpoint({ identifier: [{ system: 'https://module.example/endpoint', value: marker }] }),
        });
        assert.equal(own.status, 201, JSON.stringify(own.body));
        for (let i = 0; i < 100 && received.length < 2; i += 1) await sleep(20);
        await sleep(100); // a notification that should not come has had its time too
        assert.deepEqual(received.sort(), ['/module', '/second-endpoint']);
        // As the reads: the second module may not read that Task either.
        const read = await request('GET', `/Task/${write.body.id}`, { token: 'second' });
        assert.equal(read.status, 403);
      } finally {
        receiver.closeAllConnections();
        await new Promise((resolve) => receiver.close(resolve));
      }
    });
  });
});

describe('notification narrowing (SubscriptionNarrowingInterceptor)', () => {
  const byPortal = { resourceType: 'Task', extension: [{ url: RESOURCE_ORIGIN_URL, valueReference: { reference: 'Device/portal' } }] };

  test('a role may read a resource with a system/ scope of its type (or *) with r, unnarrowed or narrowed to its origin', () => {
    assert.equal(scopeMayRead(KOPPELTAAL_ROLES['fhir-burnout'], byPortal), true);
    assert.equal(scopeMayRead('system/Task.rus', byPortal), true);
    assert.equal(scopeMayRead('system/*.r', byPortal), true);
    assert.equal(scopeMayRead(TOKENS.second.scope, byPortal), false);
    assert.equal(scopeMayRead('system/Task.s', byPortal), false); // a search scope alone: no r
    assert.equal(scopeMayRead('system/Task.rs?resource-origin=Device/portal2', byPortal), false);
    assert.equal(scopeMayRead('system/Patient.rs', byPortal), false);
  });

  test('where the reference cannot tell who subscribed or what it may read, it still notifies', () => {
    const stored = {
      'Subscription/mine': { extension: byPortal.extension.map((e) => ({ ...e, valueReference: { reference: 'Device/second-module' } })) },
      'Subscription/no-origin': {},
      'Subscription/no-device': { extension: [{ url: RESOURCE_ORIGIN_URL, valueReference: { reference: 'Device/gone' } }] },
      'Device/second-module': { identifier: [{ system: CLIENT_ID_SYSTEM, value: 'second-module' }] },
    };
    const narrowing = notificationNarrowing((type, id) => stored[`${type}/${id}`]);
    assert.equal(narrowing.mayNotify('mine', byPortal), true, 'no token of that app seen yet');
    narrowing.remember('second-module', TOKENS.second.scope);
    assert.equal(narrowing.mayNotify('mine', byPortal), false);
    assert.equal(narrowing.mayNotify('mine', { resourceType: 'Task' }), true, 'a resource without origin');
    assert.equal(narrowing.mayNotify('no-origin', byPortal), true);
    assert.equal(narrowing.mayNotify('no-device', byPortal), true);
    narrowing.remember('second-module', 'system/Task.rs');
    assert.equal(narrowing.mayNotify('mine', byPortal), true, 'the scope of the last token counts');
  });
});

describe('plain mode (no koppeltaal) is unaffected', () => {
  let server;
  before(async () => {
    server = await startServer({});
  });
  after(() => server?.close());

  test('PUT-create works, a PUT needs no If-Match, no resource-origin is added, no trace headers', async () => {
    const created = await server.request('PUT', '/Endpoint/client-chosen', { token: 'admin', body: endpoint({ id: 'client-chosen' }) });
    assert.equal(created.status, 200); // Medplum answers a PUT-create with 200 (SANDBOX.md)
    assert.equal(created.body.id, 'client-chosen');
    assert.equal(origin(created.body), undefined);
    assert.equal(created.headers.get('x-request-id'), null);
    const updated = await server.request('PUT', '/Endpoint/client-chosen', { token: 'admin', body: { ...created.body, name: 'x' } });
    assert.equal(updated.status, 200);
    const withOutput = await server.request('POST', '/Task', {
      token: 'admin',
      body: task('x', { output: [{ type: { text: 'score' }, valueInteger: 3 }] }),
    });
    assert.equal(withOutput.status, 201);
  });
});

describe('the sandbox started with koppeltaal: true', () => {
  let sandbox;
  before(async () => {
    sandbox = await startSandbox({ koppeltaal: true, appUrl: 'http://127.0.0.1:8123' });
  });
  after(() => sandbox?.close());

  test('its info names the mode, the portal and the two Koppeltaal clients with RS512 keys', () => {
    const { info } = sandbox;
    assert.equal(info.koppeltaal, true);
    assert.match(info.portal, /^http:\/\/127\.0\.0\.1:\d+\/portal$/);
    const byId = Object.fromEntries(info.clients.map((c) => [c.client_id, c]));
    assert.deepEqual(Object.keys(byId).sort(), ['fhir-burnout', 'portal']);
    const module = byId['fhir-burnout'];
    assert.equal(module.token_endpoint_auth_method, 'private_key_jwt');
    assert.deepEqual(module.redirect_uris, ['http://127.0.0.1:8123/koppeltaal/callback']);
    assert.equal(module.launch_uri, 'http://127.0.0.1:8123/koppeltaal/launch');
    assert.equal(module.private_keys[0].alg, 'RS512');
    assert.ok(module.private_keys[0].kid);
    assert.ok(module.private_keys[0].d, 'a private key');
    assert.deepEqual(info.seed.devices.map((d) => d.id), ['fhir-burnout', 'portal']);
    assert.deepEqual(info.seed.referrals, []);
  });

  test('NOOP is not a FHIR token: 401', async () => {
    const answer = await fetch(`${sandbox.info.fhir_base}/Patient`, { headers: { authorization: 'Bearer NOOP' } });
    assert.equal(answer.status, 401);
    assert.match(answer.headers.get('x-request-id'), UUID);
  });

  /** A backend token for a client of the sandbox, its assertion signed with `key` in `alg`. */
  async function backendToken(clientId, key, alg) {
    const smart = await (await fetch(`${sandbox.info.fhir_base}/.well-known/smart-configuration`)).json();
    const assertion = await new SignJWT({})
      .setProtectedHeader({ alg, kid: key.kid, typ: 'JWT' })
      .setIssuer(clientId).setSubject(clientId).setAudience(smart.token_endpoint)
      .setJti(randomUUID()).setIssuedAt().setExpirationTime('4m')
      .sign(await importJWK({ ...key, alg }, alg));
    return fetch(smart.token_endpoint, {
      method: 'POST',
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        scope: 'system/Patient.rs',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: assertion,
      }),
    });
  }

  test('the module\'s keys sign assertions in RS512, RS384 (the same RSA key) and ES384', async () => {
    const [rsa, ec] = sandbox.info.clients.find((c) => c.client_id === 'fhir-burnout').private_keys;
    assert.equal(ec.alg, 'ES384');
    for (const [key, alg] of [[rsa, 'RS512'], [rsa, 'RS384'], [ec, 'ES384']]) {
      const answer = await backendToken('fhir-burnout', key, alg);
      assert.equal(answer.status, 200, `${alg}: ${await answer.text()}`);
    }
  });

  test('with a real portal token: the seeded Devices and KT2 Patients are there, made by the portal', async () => {
    const key = sandbox.info.clients.find((c) => c.client_id === 'portal').private_keys[0];
    const tokenAnswer = await backendToken('portal', key, 'RS512');
    assert.equal(tokenAnswer.status, 200, await tokenAnswer.clone().text());
    const { access_token: token } = await tokenAnswer.json();
    const read = async (path) => (await fetch(`${sandbox.info.fhir_base}/${path}`, {
      headers: { authorization: `Bearer ${token}` },
    })).json();
    const device = await read('Device/fhir-burnout');
    assert.equal(device.identifier[0].value, 'fhir-burnout');
    const patient = await read('Patient/pat-01');
    assert.deepEqual(patient.meta.profile, [profileUrl('Patient')]);
    assert.deepEqual(origin(patient), ['Device/portal']);
    assert.equal(patient.communication, undefined);
  });
});

function auditEvent(extra = {}) {
  return {
    resourceType: 'AuditEvent',
    meta: { profile: [profileUrl('AuditEvent')] },
    type: { system: 'http://dicom.nema.org/resources/ontology/DCM', code: '110100' },
    subtype: [{ system: 'http://dicom.nema.org/resources/ontology/DCM', code: '110120' }],
    action: 'E',
    recorded: new Date().toISOString(),
    outcome: '0',
    agent: [{
      type: { coding: [{ system: 'http://dicom.nema.org/resources/ontology/DCM', code: '110150' }] },
      who: { reference: 'Device/fhir-burnout' },
      requestor: false,
    }],
    source: { observer: { reference: 'Device/fhir-burnout' } },
    entity: [{ what: { reference: 'Task/x' } }],
    ...extra,
  };
}

function subscription({ payload, endpoint: url = 'https://127.0.0.1:9/notify', criteria = 'Task?status=ready' } = {}) {
  return {
    resourceType: 'Subscription',
    meta: { profile: [profileUrl('Subscription')] },
    status: 'off',
    reason: 'Nieuwe taken voor fhir-burnout',
    criteria,
    channel: { type: 'rest-hook', endpoint: url, ...(payload ? { payload } : {}) },
    ...(url.endsWith(':9/notify') ? {} : { status: 'requested' }),
  };
}

function patient(extra = {}) {
  return {
    resourceType: 'Patient',
    meta: { profile: [profileUrl('Patient')] },
    identifier: [{ system: 'https://fhir-burnout.org/fhir/sandbox/identifier', value: randomUUID() }],
    active: true,
    name: [{ use: 'official', family: 'Proefpersoon', given: ['Piet'] }],
    gender: 'male',
    birthDate: '1980-01-01',
    ...extra,
  };
}

function practitioner(extra = {}) {
  return {
    resourceType: 'Practitioner',
    meta: { profile: [profileUrl('Practitioner')] },
    identifier: [{ system: 'https://fhir-burnout.org/fhir/sandbox/identifier', value: randomUUID() }],
    active: true,
    name: [{ use: 'official', family: 'Behandelaar', given: ['Bea'] }],
    telecom: [{ system: 'email', value: 'bea@sandbox.fhir-burnout.example' }],
    ...extra,
  };
}
