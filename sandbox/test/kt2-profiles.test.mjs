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
import { NL_CORE_BASED, UNCOMPILED_TARGETS } from '../src/kt2-references.mjs';

const KT2 = 'http://koppeltaal.nl/fhir/StructureDefinition';
const FSH = join(COMPILED_DIR, '..', 'input', 'fsh');
const INSTANTIATES = 'http://vzvz.nl/fhir/StructureDefinition/instantiates';
const DCM = 'http://dicom.nema.org/resources/ontology/DCM';
const USAGE_CONTEXT_TYPE = 'http://terminology.hl7.org/CodeSystem/usage-context-type';
const KT2_USAGE_CONTEXT_TYPE = 'http://vzvz.nl/fhir/CodeSystem/koppeltaal-usage-context-type';
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

function task(extra = {}) {
  return {
    resourceType: 'Task',
    meta: { profile: [`${KT2}/KT2Task`] },
    extension: [{ url: INSTANTIATES, valueReference: { reference: 'ActivityDefinition/a1' } }],
    identifier: [{ system: 'https://module.example/task', value: 't1' }],
    status: 'ready',
    intent: 'order',
    for: { reference: 'Patient/p1' },
    owner: { reference: 'Patient/p1' },
    ...extra,
  };
}

function auditEvent(who) {
  return {
    resourceType: 'AuditEvent',
    meta: { profile: [`${KT2}/KT2AuditEvent`] },
    type: { system: DCM, code: '110100' },
    action: 'E',
    recorded: '2026-03-01T09:30:00Z',
    outcome: '0',
    agent: [{ type: { coding: [{ system: DCM, code: '110150' }] }, who, requestor: false }],
    source: { site: 'module.example', observer: { reference: 'Device/fhir-burnout' } },
    entity: [{ what: { reference: 'Task/t1/_history/2' } }],
  };
}

/** A useContext of the koppeltaal-expansion slice (code fixed by pattern) with `value`. */
function expansion(value) {
  return { code: { system: KT2_USAGE_CONTEXT_TYPE, code: 'koppeltaal-expansion' }, ...value };
}

/** Each `* path only Reference(A or B)` rule of the FSH profile `name`: [{path, targets, nested}]. */
function fshReferenceRules(name) {
  const text = readFileSync(join(FSH, 'profiles', `${name}.fsh`), 'utf8');
  return [...text.matchAll(/^( *)\* (\S+) only Reference\((.+)\)\s*$/gm)].map(([, indent, path, targets]) => ({
    path, nested: indent.length > 0, targets: targets.split(' or ').map((t) => t.trim()),
  }));
}

/** FSH profile names (KT2_Patient) to their canonicals, from each profile's `Id:`. */
function fshCanonicals() {
  const canonicals = new Map();
  for (const file of readdirSync(join(FSH, 'profiles'))) {
    const text = readFileSync(join(FSH, 'profiles', file), 'utf8');
    canonicals.set(/^Profile: *(\S+)/m.exec(text)[1], `${KT2}/${/^Id: *(\S+)/m.exec(text)[1]}`);
  }
  return canonicals;
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

describe('required bindings: FHIR core\'s value sets and the IG\'s own', () => {
  test('the compiled IG holds every KT2 value set the profiles bind, and its code systems', () => {
    const compiled = readdirSync(COMPILED_DIR).map((f) => JSON.parse(readFileSync(join(COMPILED_DIR, f), 'utf8')));
    const valueSets = new Set(compiled.filter((r) => r.resourceType === 'ValueSet').map((r) => r.url));
    const bound = compiled
      .filter((r) => r.resourceType === 'StructureDefinition')
      .flatMap((d) => d.snapshot.element.map((e) => e.binding?.valueSet).filter(Boolean))
      .map((url) => url.split('|')[0])
      .filter((url) => !url.startsWith('http://hl7.org/') && !url.startsWith('http://terminology.hl7.org/'));
    assert.ok(bound.length > 0);
    for (const url of bound) {
      assert.ok(valueSets.has(url), url);
    }
    const systems = new Set(compiled.filter((r) => r.resourceType === 'CodeSystem').map((r) => r.url));
    assert.ok(systems.has(KT2_USAGE_CONTEXT_TYPE));
    assert.ok(systems.has('http://vzvz.nl/fhir/CodeSystem/koppeltaal-expansion'));
  });

  test('a code outside a FHIR core required value set is refused (Task.status)', () => {
    assert.deepEqual(kt2ProfileIssues(task()), []);
    const issues = kt2ProfileIssues(task({ status: 'finished' }));
    assert.deepEqual(expressions(issues), ['Task.status']);
    assert.match(issues[0].text, /task-status/);
  });

  test('a code outside the IG\'s own required value set is refused (useContext.code)', () => {
    const program = { code: { system: USAGE_CONTEXT_TYPE, code: 'program' }, valueCodeableConcept: { text: 'Burn-out' } };
    assert.deepEqual(kt2ProfileIssues(activityDefinition({ useContext: [program] })), []);
    const unknown = { code: { system: KT2_USAGE_CONTEXT_TYPE, code: 'koppeltaal-expansie' }, valueCodeableConcept: { text: 'x' } };
    const issues = kt2ProfileIssues(activityDefinition({ useContext: [program, unknown] }));
    assert.deepEqual(expressions(issues), ['ActivityDefinition.useContext[1].code']);
    assert.match(issues[0].text, /koppeltaal-use-context-type/);
  });

  test('extensible and preferred bindings are no errors (topic, Task.code)', () => {
    const topic = [{ coding: [{ system: 'https://module.example/topic', code: 'burn-out' }] }];
    assert.deepEqual(kt2ProfileIssues(activityDefinition({ topic })), []);
    const code = { coding: [{ system: 'https://module.example/task-code', code: 'lesson' }] };
    assert.deepEqual(kt2ProfileIssues(task({ code })), []);
  });
});

describe('the content of a slice: its members against the slice\'s own elements', () => {
  test('an extension slice\'s value type (extension:endpoint value[x] only Reference)', () => {
    const extension = [{ url: `${KT2}/KT2EndpointExtension`, valueUri: 'https://module.example/launch' }];
    const issues = kt2ProfileIssues(activityDefinition({ extension }));
    assert.deepEqual(expressions(issues), ['ActivityDefinition.extension[0].valueUri']);
    assert.match(issues[0].text, /^ActivityDefinition\.extension:endpoint\.valueUri .*may only be Reference, not uri/);
  });

  test('an extension slice\'s value type (extension:publisherId value[x] only id)', () => {
    const [endpoint] = activityDefinition().extension;
    const extension = [endpoint, { url: `${KT2}/KT2PublisherId`, valueString: 'fhir burnout' }];
    const issues = kt2ProfileIssues(activityDefinition({ extension }));
    assert.deepEqual(expressions(issues), ['ActivityDefinition.extension[1].valueString']);
    assert.match(issues[0].text, /^ActivityDefinition\.extension:publisherId\.valueString /);
  });

  test('the binding inside a slice (useContext:koppeltaal-expansion value from KoppeltaalExpansion_VS)', () => {
    const system = 'http://vzvz.nl/fhir/CodeSystem/koppeltaal-expansion';
    const good = expansion({ valueCodeableConcept: { coding: [{ system, code: '026-RolvdNaaste' }] } });
    assert.deepEqual(kt2ProfileIssues(activityDefinition({ useContext: [good] })), []);
    const bad = expansion({ valueCodeableConcept: { coding: [{ system, code: '027-Onbekend' }] } });
    const issues = kt2ProfileIssues(activityDefinition({ useContext: [good, bad] }));
    assert.deepEqual(expressions(issues), ['ActivityDefinition.useContext[1].value[x]']);
    assert.match(issues[0].text, /^ActivityDefinition\.useContext:koppeltaal-expansion\.value\[x\] .*koppeltaal-expansion/);
  });

  test('the type inside a slice (useContext:koppeltaal-expansion value[x] only CodeableConcept)', () => {
    const issues = kt2ProfileIssues(activityDefinition({ useContext: [expansion({ valueQuantity: { value: 26 } })] }));
    assert.deepEqual(expressions(issues), ['ActivityDefinition.useContext[0].valueQuantity']);
    assert.match(issues[0].text, /^ActivityDefinition\.useContext:koppeltaal-expansion\.valueQuantity /);
  });
});

describe('the target profiles of references, by the type they name', () => {
  for (const owner of ['Patient/p1', 'Practitioner/pr1', 'RelatedPerson/rp1', 'CareTeam/ct1']) {
    test(`Task.owner may be a ${owner.split('/')[0]}`, () => {
      assert.deepEqual(kt2ProfileIssues(task({ owner: { reference: owner } })), []);
    });
  }

  const wrongOwners = [
    ['a literal reference', { reference: 'Organization/o1' }],
    ['an absolute URL at a version', { reference: 'https://domain.example/fhir/Organization/o1/_history/2' }],
    ['a conditional reference', { reference: 'Organization?identifier=urn:oid:2.16.528.1.1007.3.3|1234' }],
    ['the type element alone', { type: 'Device', identifier: { value: 'module' } }],
  ];
  for (const [how, owner] of wrongOwners) {
    test(`Task.owner naming another type by ${how} is refused`, () => {
      const issues = kt2ProfileIssues(task({ owner }));
      assert.deepEqual(expressions(issues), ['Task.owner']);
      assert.match(issues[0].text, /must reference CareTeam or Patient or Practitioner or RelatedPerson/);
    });
  }

  test('a type element that contradicts the literal reference is refused', () => {
    const issues = kt2ProfileIssues(task({ for: { type: 'Patient', reference: 'RelatedPerson/rp1' } }));
    assert.deepEqual(expressions(issues), ['Task.for', 'Task.for']);
    assert.match(issues[0].text, /type Patient but a reference to a RelatedPerson/);
  });

  test('a reference that names no type cannot be checked without resolving it', () => {
    assert.deepEqual(kt2ProfileIssues(task({ owner: { reference: 'urn:uuid:0b9c4f0e-7d5e-4c38-9f5a-2f9a1d0e8b11' } })), []);
  });

  test('a KT2 target profile inside a repeating element (AuditEvent.agent.who only KT2_Device)', () => {
    assert.deepEqual(kt2ProfileIssues(auditEvent({ reference: 'Device/fhir-burnout' })), []);
    const issues = kt2ProfileIssues(auditEvent({ reference: 'Practitioner/pr1' }));
    assert.deepEqual(expressions(issues), ['AuditEvent.agent[0].who']);
    assert.match(issues[0].text, /must reference Device \(KT2Device\), not Practitioner/);
  });

  test('a KT2 target profile in an extension\'s value (instantiates only KT2_ActivityDefinition)', () => {
    const extension = [{ url: INSTANTIATES, valueReference: { reference: 'Task/t0' } }];
    const issues = kt2ProfileIssues(task({ extension }));
    assert.deepEqual(expressions(issues), ['Task.extension[0].valueReference']);
    assert.match(issues[0].text, /^Task\.extension:instantiates\.valueReference .*must reference ActivityDefinition/);
  });

  test('the targets SUSHI cannot compile (built on nl-core) are those the FSH names', () => {
    const canonicals = fshCanonicals();
    const expected = {};
    for (const profile of kt2Profiles().values()) {
      const name = profile.name;
      for (const { path, targets, nested } of fshReferenceRules(name)) {
        const urls = targets.map((t) => canonicals.get(t) ?? t);
        if (urls.some((url) => NL_CORE_BASED.has(url))) {
          assert.equal(nested, false, `${name}: ${path}: a nested rule the table cannot hold`);
          expected[`${profile.definition.type}.${path}`] = urls;
        }
      }
    }
    assert.deepEqual(UNCOMPILED_TARGETS, expected);
  });
});
