// Tests for the compiled KT2 profiles (koppeltaal-ig/) and the validation against them
// (src/kt2-profiles.mjs): the committed StructureDefinitions are what SUSHI makes of the pinned
// FSH, and each gap of Medplum's validator we bridge still catches what the profile forbids.
// Run: sandbox/node_modules/.bin/node --test sandbox/test/kt2-profiles.test.mjs
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { compile } from '../koppeltaal-ig/compile.mjs';
import { COMPILED_DIR, kt2ProfileIssues, kt2Profiles } from '../src/kt2-profiles.mjs';

const KT2 = 'http://koppeltaal.nl/fhir/StructureDefinition';
const expressions = (issues) => issues.map((i) => i.expression);

function endpoint(extra = {}) {
  return {
    resourceType: 'Endpoint',
    meta: { profile: [`${KT2}/KT2Endpoint`] },
    status: 'active',
    connectionType: { system: 'http://vzvz.nl/fhir/CodeSystem/koppeltaal-endpoint-connection-type', code: 'hti-smart-on-fhir' },
    payloadType: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/endpoint-payload-type', code: 'any' }] }],
    address: 'https://module.example/koppeltaal/launch',
    ...extra,
  };
}

function activityDefinition(extra = {}) {
  return {
    resourceType: 'ActivityDefinition',
    meta: { profile: [`${KT2}/KT2ActivityDefinition`] },
    extension: [
      { url: `${KT2}/KT2EndpointExtension`, valueReference: { reference: 'Endpoint/e1' } },
      { url: `${KT2}/KT2PublisherId`, valueId: 'fhir-burnout' },
    ],
    url: 'https://module.example/ActivityDefinition/m1',
    title: 'Module 1',
    status: 'active',
    ...extra,
  };
}

function documentReference(related) {
  return {
    resourceType: 'DocumentReference',
    meta: { profile: [`${KT2}/KT2DocumentReference`] },
    status: 'current',
    type: { coding: [{ system: 'http://loinc.org', code: '11506-3' }] },
    subject: { reference: 'Patient/p1' },
    date: '2026-03-01T09:30:00Z',
    content: [{ attachment: { url: 'https://module.example/results/1' } }],
    context: { related },
  };
}

describe('the compiled KT2 profiles', () => {
  test('are what SUSHI compiles from the pinned FSH (koppeltaal-ig/compile.mjs)', () => {
    const out = mkdtempSync(join(tmpdir(), 'kt2-compiled-'));
    try {
      const { written, errors } = compile(out);
      assert.deepEqual(errors, []);
      assert.deepEqual(written, readdirSync(COMPILED_DIR).sort());
      for (const file of written) {
        assert.equal(readFileSync(join(out, file), 'utf8'), readFileSync(join(COMPILED_DIR, file), 'utf8'), file);
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  test('cover every type the module writes to a domain, as IG 0.16.3 has them', () => {
    const types = [...kt2Profiles().keys()].sort();
    for (const type of ['ActivityDefinition', 'AuditEvent', 'DocumentReference', 'Endpoint', 'Subscription', 'Task']) {
      assert.ok(types.includes(type), `${type} in ${types}`);
    }
    const endpointProfile = JSON.parse(readFileSync(join(COMPILED_DIR, 'StructureDefinition-KT2Endpoint.json'), 'utf8'));
    assert.equal(endpointProfile.url, `${KT2}/KT2Endpoint`);
    assert.equal(endpointProfile.version, '0.8.1'); // KT2_Endpoint's own version in IG 0.16.3
  });
});

describe('validation against the KT2 profiles', () => {
  test('a KT2_Endpoint as the IG describes it conforms', () => {
    assert.deepEqual(kt2ProfileIssues(endpoint()), []);
  });

  test('connectionType is fixed exactly: a display is refused', () => {
    const connectionType = { ...endpoint().connectionType, display: 'HTI Smart on FHIR' };
    assert.deepEqual(expressions(kt2ProfileIssues(endpoint({ connectionType }))), ['Endpoint.connectionType']);
  });

  test('the profile must be declared in meta.profile', () => {
    assert.deepEqual(expressions(kt2ProfileIssues(endpoint({ meta: undefined }))), ['Endpoint.meta.profile']);
  });

  test('a fixed value on a repeating element is checked on each repetition (payloadType 1..*)', () => {
    const other = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/endpoint-payload-type', code: 'none' }] };
    const issues = kt2ProfileIssues(endpoint({ payloadType: [endpoint().payloadType[0], other] }));
    assert.deepEqual(expressions(issues), ['Endpoint.payloadType[1]']);
  });

  test('an extension slice is matched by its url: the required endpoint extension', () => {
    assert.deepEqual(kt2ProfileIssues(activityDefinition()), []);
    const withoutEndpoint = activityDefinition({ extension: [{ url: `${KT2}/KT2PublisherId`, valueId: 'fhir-burnout' }] });
    const issues = kt2ProfileIssues(withoutEndpoint);
    assert.ok(issues.some((i) => /endpoint/.test(i.text)), JSON.stringify(issues));
  });

  test('a type slice inside a slice is read as the type of that choice (useContext koppeltaal-expansion)', () => {
    const code = { system: 'http://vzvz.nl/fhir/CodeSystem/koppeltaal-usage-context-type', code: 'koppeltaal-expansion' };
    const valueCodeableConcept = { coding: [{ system: 'http://vzvz.nl/fhir/CodeSystem/koppeltaal-expansion', code: '026-RolvdNaaste' }] };
    assert.deepEqual(kt2ProfileIssues(activityDefinition({ useContext: [{ code, valueCodeableConcept }] })), []);
  });

  test('a DocumentReference needs its Task in context.related (a slice by resolved profile)', () => {
    assert.deepEqual(kt2ProfileIssues(documentReference([{ reference: 'Task/t1' }])), []);
    const issues = kt2ProfileIssues(documentReference([{ reference: 'Patient/p1' }]));
    assert.deepEqual(expressions(issues), ['DocumentReference.context.related:task']);
  });

  test('types without a compiled KT2 profile are left to the sandbox\'s own rules', () => {
    assert.deepEqual(kt2ProfileIssues({ resourceType: 'Patient' }), []);
  });
});
