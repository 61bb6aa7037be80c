// The target profiles of references in the KT2 profiles (`Task.owner only Reference(KT2_CareTeam
// or ...)`, `AuditEvent.agent.who only Reference(KT2_Device)`): Medplum's validator only warns
// about a wrong target type, and only for FHIR core's profiles; a KT2 target profile it skips.
//
// What can be checked without a server: the resource type a reference names, from its literal
// `reference` (`Type/id`, an absolute URL ending so, `Type?search`) or its `type` element,
// against the types of the allowed target profiles. Where the target is a KT2 profile, only its
// type is checked: the resource itself is not resolved, so whether it conforms to that profile
// is the target server's business. A reference naming no type (`urn:uuid:`, `#contained`, an
// identifier only) is left alone.
import { valuesWithPaths } from './element-values.mjs';

const KT2 = 'http://koppeltaal.nl/fhir/StructureDefinition';

/**
 * The KT2 profiles built on Nictiz nl-core, which are not compiled (koppeltaal-ig/README.md),
 * by canonical: their resource type.
 */
export const NL_CORE_BASED = new Map([
  [`${KT2}/KT2CareTeam`, 'CareTeam'],
  [`${KT2}/KT2Organization`, 'Organization'],
  [`${KT2}/KT2Patient`, 'Patient'],
  [`${KT2}/KT2Practitioner`, 'Practitioner'],
  [`${KT2}/KT2RelatedPerson`, 'RelatedPerson'],
]);

/**
 * The `only Reference(...)` rules SUSHI cannot compile because their targets are built on
 * nl-core (it keeps the base resource's targets, `compile.mjs` EXPECTED_ERRORS), as the FSH says
 * them (IG 0.16.3; kt2-profiles.test.mjs checks this table against the FSH).
 */
export const UNCOMPILED_TARGETS = {
  'Device.owner': [`${KT2}/KT2Organization`], // KT2_Device.fsh: owner only Reference(KT2_Organization)
  'DocumentReference.subject': [`${KT2}/KT2Patient`], // KT2_DocumentReference.fsh
  'Endpoint.managingOrganization': [`${KT2}/KT2Organization`], // KT2_Endpoint.fsh
  'Task.for': [`${KT2}/KT2Patient`], // KT2_Task.fsh
  'Task.owner': [`${KT2}/KT2CareTeam`, `${KT2}/KT2Patient`, `${KT2}/KT2Practitioner`, `${KT2}/KT2RelatedPerson`], // KT2_Task.fsh
  'Task.requester': [`${KT2}/KT2Practitioner`], // KT2_Task.fsh
};

const LITERAL = /^(?:[a-z][a-z0-9+.-]*:\/\/[^?#]*\/)?([A-Z][A-Za-z]+)(?:\/[A-Za-z0-9\-.]{1,64}(?:\/_history\/[A-Za-z0-9\-.]{1,64})?|\?.*)$/;

/** The resource type a profile canonical constrains: ours, nl-core-based, or core's last segment. */
export function targetType(canonical, typeOf) {
  const url = String(canonical).split('|')[0];
  return typeOf.get(url) ?? NL_CORE_BASED.get(url) ?? url.split('/').pop();
}

/**
 * The reference rules of a StructureDefinition's snapshot: [{path, types, targets}] for each
 * element outside a slice whose references are limited to some target profiles.
 */
export function referenceRules(definition, typeOf) {
  return definition.snapshot.element
    .filter((element) => !element.id.includes(':') && element.max !== '0')
    .flatMap((element) => {
      const targets = UNCOMPILED_TARGETS[element.path]
        ?? (element.type ?? []).filter((t) => t.code === 'Reference').flatMap((t) => t.targetProfile ?? []);
      const types = [...new Set(targets.map((t) => targetType(t, typeOf)))];
      return types.length && !types.includes('Resource') ? [{ path: element.path, types, targets }] : [];
    });
}

/** The references whose type is not one of their rule's: [{expression, message}]. */
export function referenceIssues(value, rules) {
  const issues = [];
  for (const { path, types, targets } of rules) {
    const at = path.endsWith('[x]') ? `${path.slice(0, -3)}Reference` : path;
    for (const { value: reference, path: expression } of valuesWithPaths(value, at)) {
      const literal = LITERAL.exec(String(reference?.reference ?? ''))?.[1];
      const named = reference?.type;
      if (literal && named && literal !== named) {
        issues.push({ expression, message: `type ${named} but a reference to a ${literal}` });
      }
      const type = literal ?? named; // the literal reference is what a server resolves
      if (type && !types.includes(type)) {
        const profiles = targets.map((t) => String(t).split('|')[0].split('/').pop()).join(', ');
        issues.push({ expression, message: `must reference ${types.join(' or ')} (${profiles}), not ${type}` });
      }
    }
  }
  return issues;
}
