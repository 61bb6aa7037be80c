// Required terminology bindings checked against value sets expanded locally: the sandbox's
// server checks FHIR core's (src/fhir-server.mjs, item 2), the KT2 validation also the
// Koppeltaal IG's own (src/kt2-profiles.mjs). Medplum's validator only collects the codes of
// required bindings (validateResource's `collect.tokens`); this says which are outside.

/**
 * Required value sets, expanded on demand. Only value sets that expand completely from the
 * bundles given are checked (enumerated concepts, or whole CodeSystems with content
 * "complete"); filters, external systems (SNOMED CT, LOINC, BCP-47, UCUM) and unknown value
 * sets are skipped rather than guessed.
 */
export class RequiredBindings {
  /** From Bundles of ValueSets and CodeSystems (FHIR core's valuesets.json, a compiled IG's). */
  constructor(...bundles) {
    this.valueSets = new Map();
    this.codeSystems = new Map();
    for (const { resource } of bundles.flatMap((b) => b.entry ?? [])) {
      const index = resource.resourceType === 'ValueSet' ? this.valueSets : this.codeSystems;
      index.set(resource.url, resource);
    }
    this.expansions = new Map();
  }

  /** Issues for collected tokens (validateResource's `collect.tokens`) outside their value set. */
  check(tokens) {
    const issues = [];
    for (const [binding, values] of Object.entries(tokens)) {
      const url = binding.split('|')[0];
      const expansion = this.expand(url);
      if (!expansion) {
        continue;
      }
      for (const value of values) {
        if (!tokenInExpansion(value, expansion)) {
          issues.push(codeInvalid(url, value));
        }
      }
    }
    return issues;
  }

  /** Map system -> Set(codes), or null when the value set cannot be expanded locally. */
  expand(url) {
    if (!this.expansions.has(url)) {
      this.expansions.set(url, this.expandValueSet(this.valueSets.get(url), new Set([url])));
    }
    return this.expansions.get(url);
  }

  expandValueSet(valueSet, seen) {
    const compose = valueSet?.compose;
    if (!compose?.include?.length || compose.exclude?.length) {
      return null;
    }
    const expansion = new Map();
    for (const include of compose.include) {
      const part = this.expandInclude(include, seen);
      if (!part) {
        return null;
      }
      for (const [system, codes] of part) {
        expansion.set(system, new Set([...(expansion.get(system) ?? []), ...codes]));
      }
    }
    return expansion;
  }

  expandInclude(include, seen) {
    if (include.filter?.length || include.valueSet?.length) {
      return include.filter?.length ? null : this.expandNested(include.valueSet, seen);
    }
    if (include.concept?.length) {
      return new Map([[include.system, new Set(include.concept.map((c) => c.code))]]);
    }
    const codeSystem = this.codeSystems.get(include.system);
    if (codeSystem?.content !== 'complete') {
      return null;
    }
    return new Map([[include.system, new Set(allCodes(codeSystem.concept))]]);
  }

  expandNested(urls, seen) {
    const expansion = new Map();
    for (const url of urls) {
      if (seen.has(url)) {
        return null;
      }
      const part = this.expandValueSet(this.valueSets.get(url), new Set([...seen, url]));
      if (!part) {
        return null;
      }
      for (const [system, codes] of part) {
        expansion.set(system, new Set([...(expansion.get(system) ?? []), ...codes]));
      }
    }
    return expansion;
  }
}

function allCodes(concepts = []) {
  return concepts.flatMap((c) => [c.code, ...allCodes(c.concept)]);
}

function tokenInExpansion({ type, value }, expansion) {
  const codingIn = (coding) =>
    coding.system ? Boolean(expansion.get(coding.system)?.has(coding.code)) : codeIn(coding.code);
  const codeIn = (code) => [...expansion.values()].some((codes) => codes.has(code));
  switch (type) {
    case 'code':
      return codeIn(value);
    case 'Coding':
      return value.code === undefined || codingIn(value);
    case 'CodeableConcept':
      // Text-only concepts carry no code to check.
      return !value.coding?.length || value.coding.some((c) => c.code === undefined || codingIn(c));
    default:
      return true; // string, uri, Quantity: not checked
  }
}

function codeInvalid(url, { type, value, path }) {
  const shown = type === 'code' ? value : JSON.stringify(value);
  return {
    severity: 'error',
    code: 'code-invalid',
    details: { text: `Value ${shown} is not in the required value set ${url}` },
    expression: [path],
  };
}
