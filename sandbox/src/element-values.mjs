// The values of a FHIR resource (or data type value) at an element path from a
// StructureDefinition (`ActivityDefinition.useContext.code`): what the KT2 checks that Medplum's
// validator leaves to us walk over.

/**
 * The values at a dotted element path whose first segment is the root's type, repetitions
 * flattened, each with its instance path (`ActivityDefinition.useContext[1].code`).
 */
export function valuesWithPaths(root, path) {
  const [rootName, ...names] = path.split('.');
  let found = [{ value: root, path: rootName }];
  for (const name of names) {
    found = found.flatMap(({ value, path: at }) => {
      const child = value && typeof value === 'object' ? value[name] : undefined;
      if (child === undefined || child === null) {
        return [];
      }
      return Array.isArray(child)
        ? child.map((item, i) => ({ value: item, path: `${at}.${name}[${i}]` }))
        : [{ value: child, path: `${at}.${name}` }];
    });
  }
  return found;
}

/** The values at a dotted element path, repetitions flattened. */
export function valuesAt(root, path) {
  return valuesWithPaths(root, path).map(({ value }) => value);
}
