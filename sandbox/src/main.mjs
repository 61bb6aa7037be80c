// The sandbox EHR: a FHIR R4 server, a SMART authorization server and an EHR launcher on
// one local port. Usage:
//   node src/main.mjs [--port N] [--host 127.0.0.1] [--info FILE] [--client-config FILE]
//                     [--app-url URL] [--consent]
// Prints the URLs, writes --info (JSON) once everything answers, stops on SIGINT/SIGTERM.
import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { exportJWK, generateKeyPair } from 'jose';
import { createAuthServer } from './auth-server.mjs';
import { createFhirServer } from './fhir-server.mjs';
import { createLauncher } from './launcher.mjs';
import { allSeedResources, seedResources, seedSummary } from './seed.mjs';

const USER_SCOPES =
  'openid fhirUser offline_access launch launch/patient launch/encounter ' +
  'patient/*.cruds user/*.cruds patient/*.read patient/*.write user/*.read user/*.write';

async function keyPair(alg, kid) {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const pub = { ...(await exportJWK(publicKey)), alg, kid, use: 'sig' };
  const priv = { ...(await exportJWK(privateKey)), alg, kid, use: 'sig' };
  return { pub, priv };
}

/** The test clients every sandbox registers; --client-config adds more. */
async function defaultClients(appUrl) {
  const rs384 = await keyPair('RS384', 'worker-rs384');
  const es384 = await keyPair('ES384', 'worker-es384');
  const clients = [
    {
      client_id: 'fhir-burnout',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: [`${appUrl}/callback`],
      launch_uri: `${appUrl}/launch`,
      scope: USER_SCOPES,
    },
    {
      client_id: 'fhir-burnout-worker',
      token_endpoint_auth_method: 'private_key_jwt',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      jwks: { keys: [rs384.pub, es384.pub] },
      scope: 'system/*.cruds system/*.read system/*.write',
    },
    {
      client_id: 'referral-system',
      client_secret: randomBytes(24).toString('base64url'),
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: 'system/ServiceRequest.cruds system/Patient.cruds system/Bundle.cruds',
    },
  ];
  const privateKeys = { 'fhir-burnout-worker': [rs384.priv, es384.priv] };
  return { clients, privateKeys };
}

function readClientConfig(path) {
  if (!path) return [];
  const data = JSON.parse(readFileSync(path, 'utf8'));
  return Array.isArray(data) ? data : data.clients ?? [];
}

function writeAtomically(path, data) {
  // Readers poll for the file: it must appear whole or not at all.
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(data, null, 2) + '\n');
  renameSync(tmp, path);
}

async function main() {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '0' },
      host: { type: 'string', default: '127.0.0.1' },
      info: { type: 'string' },
      'client-config': { type: 'string' },
      'app-url': { type: 'string', default: 'http://127.0.0.1:8000' },
      consent: { type: 'boolean', default: false },
    },
  });
  let dispatch = (_req, res) => {
    res.writeHead(503).end('starting');
  };
  const server = createServer((req, res) => {
    dispatch(req, res).catch((err) => {
      console.error('sandbox: unhandled error', err?.message ?? err);
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end('internal error');
    });
  });
  await new Promise((resolve) => server.listen(Number(values.port), values.host, resolve));
  const { port } = server.address();
  const origin = `http://${values.host}:${port}`;
  const fhirBase = `${origin}/fhir`;
  const issuer = `${origin}/auth`;
  const launcherUrl = `${origin}/launcher`;

  const seed = seedResources();
  const { clients: defaults, privateKeys } = await defaultClients(values['app-url'].replace(/\/$/, ''));
  const clients = [...defaults, ...readClientConfig(values['client-config'])];
  const people = {
    practitioners: seed.practitioners.map((p) => ({ id: p.id, name: p.name[0].text })),
    patients: seed.patients.map((p) => ({ id: p.id, name: p.name[0].text })),
  };
  const auth = await createAuthServer({ issuer, fhirBase, clients, consent: values.consent, seed: people });
  const fhir = await createFhirServer({
    baseUrl: fhirBase,
    verifyAccessToken: (token) => auth.verifyAccessToken(token),
    smartConfiguration: () => auth.smartConfiguration(),
    // Definitions and the care team are not in a patient's compartment, yet a patient-facing
    // app must read them (a real EHR grants patient/Questionnaire.rs the same way).
    sharedTypes: [
      'Questionnaire', 'PlanDefinition', 'ActivityDefinition', 'Library', 'CodeSystem', 'ValueSet',
      'StructureDefinition', 'Practitioner', 'PractitionerRole', 'Organization',
    ],
  });
  const launcher = createLauncher({ launcherUrl, fhirBase, auth, clients: auth.clients, seed: people });
  await fhir.seed(allSeedResources(seed));

  dispatch = async (req, res) => {
    const path = req.url.split('?')[0];
    if (path === '/fhir' || path.startsWith('/fhir/')) return fhir.handle(req, res);
    if (path === '/auth' || path.startsWith('/auth/')) return auth.handle(req, res);
    if (path === '/launcher' || path.startsWith('/launcher/')) return launcher.handle(req, res);
    if (path === '/') {
      res.writeHead(302, { Location: launcherUrl }).end();
      return;
    }
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
  };

  const info = {
    fhir_base: fhirBase,
    issuer,
    launcher: launcherUrl,
    smart_configuration: `${fhirBase}/.well-known/smart-configuration`,
    clients: auth.clients.map((c) => ({
      client_id: c.client_id,
      token_endpoint_auth_method: c.token_endpoint_auth_method,
      client_secret: c.client_secret,
      redirect_uris: c.redirect_uris,
      launch_uri: c.launch_uri,
      scope: c.scope,
      private_keys: privateKeys[c.client_id],
    })),
    seed: seedSummary(seed),
    pid: process.pid,
  };
  // Handlers first: whoever reads the ready line may stop us at once.
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    if (values.info) rmSync(values.info, { force: true });
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  if (values.info) writeAtomically(values.info, info);
  console.log(`FHIR server:          ${fhirBase}`);
  console.log(`Authorization server: ${issuer}`);
  console.log(`EHR launcher:         ${launcherUrl}`);
  if (values.info) console.log(`Info file:            ${values.info}`);

}

main().catch((err) => {
  console.error(`sandbox: failed to start: ${err?.stack ?? err}`);
  process.exit(1);
});
