// The content of a slice in the KT2 profiles: Medplum's validator counts the values that match a
// slice, but does not check them against the slice's own elements (an extension's value[x]
// type, the cardinality, fixed values, patterns and bindings inside `useContext:koppeltaal-
// expansion`). Each slice gets a StructureDefinition of its own to validate its members with:
//   - an extension slice typed by an extension profile (`extension:endpoint`, type profile
//     KT2EndpointExtension): that extension's StructureDefinition;
//   - any other slice that constrains its children: one made of the slice's elements, rooted at
//     its data type (`ActivityDefinition.useContext:koppeltaal-expansion.code` becomes
//     `UsageContext.code`).
// A value is a member when it matches every discriminator (value or pattern; the slicings by
// resolved profile and by type are bridged in kt2-profiles.mjs).
import { deepEquals, deepIncludes } from '@medplum/core';
import { valuesWithPaths } from './element-values.mjs';

/**
 * The slices of a profile's snapshot (slicings of elements outside a slice) whose members can be
 * checked: [{id, path, discriminators, definition, synthetic}].
 */
export function sliceRules(profile, extensions) {
  const elements = profile.snapshot.element;
  const slicings = new Map(elements.filter((e) => e.slicing && !e.id.includes(':')).map((e) => [e.id, e]));
  return elements.flatMap((slice) => {
    const slicing = slice.sliceName && slicings.get(slice.id.slice(0, slice.id.lastIndexOf(':')));
    const discriminators = slicing?.slicing?.discriminator ?? [];
    if (!slicing || !discriminators.length || discriminators.some((d) => !['value', 'pattern'].includes(d.type))) {
      return [];
    }
    const extension = extensions.get(slice.type?.[0]?.profile?.[0]);
    const definition = extension ?? sliceDefinition(profile, slice, elements);
    return definition ? [{ id: slice.id, path: slice.path, discriminators, definition, synthetic: !extension }] : [];
  });
}

/** A StructureDefinition of the slice's own elements, rooted at its one data type; or none. */
function sliceDefinition(profile, slice, elements) {
  const type = slice.type?.length === 1 ? slice.type[0].code : undefined;
  const children = elements.filter((e) => e.id.startsWith(`${slice.id}.`));
  if (!type || !children.length) {
    return undefined;
  }
  const reroot = (element) => ({
    ...element,
    id: `${type}${element.id.slice(slice.id.length)}`,
    path: `${type}${element.path.slice(slice.path.length)}`,
  });
  return {
    resourceType: 'StructureDefinition',
    url: `${profile.url}#${slice.id}`,
    name: `${profile.name}.${slice.sliceName}`,
    status: profile.status,
    kind: 'complex-type',
    abstract: false,
    type,
    derivation: 'constraint',
    snapshot: { element: [{ id: type, path: type, min: 0, max: '*' }, ...children.map(reroot)] },
  };
}

/** The values of `resource` that are members of the slice: [{value, path}]. */
export function sliceMembers(resource, slice) {
  return valuesWithPaths(resource, slice.path).filter(({ value }) => isMember(value, slice));
}

function isMember(value, { discriminators, definition }) {
  return discriminators.every(({ path }) => {
    const element = definition.snapshot.element.find((e) => e.path === `${definition.type}.${path}`);
    const key = Object.keys(element ?? {}).find((k) => /^(fixed|pattern)[A-Z]/.test(k));
    if (!key) {
      return false; // nothing to match by: not ours to guess
    }
    const actual = path.split('.').reduce((v, name) => v?.[name], value);
    return key.startsWith('fixed') ? deepEquals(actual, element[key]) : deepIncludes(actual, element[key]);
  });
}
