// The sandbox EHR: a FHIR R4 server, a SMART authorization server and an EHR launcher on
// one local port. Usage:
//   node src/main.mjs [--port N] [--host 127.0.0.1] [--info FILE] [--client-config FILE]
//                     [--app-url URL] [--consent] [--data DIR] [--token-ttl SECONDS]
//                     [--rate-limit N] [--resource URL]... [--koppeltaal] [--discovery MODE]
//                     [--profile-claim] [--strict-scopes]
// Prints the URLs, writes --info (JSON) once everything answers, stops on SIGINT/SIGTERM.
//   --data DIR           keep the FHIR store and the generated credentials in DIR: every
//                        committed write is journaled (fsync before the answer) and replayed on
//                        the next start, which then adds no seed; client secrets and keys and
//                        the token signing key are made once and reused
//   --token-ttl SECONDS  lifetime of every access token (default 3600; backend services 300)
//   --rate-limit N       at most N FHIR requests per second per client, else 429 + Retry-After
//   --resource URL       (repeatable) another resource server clients may ask a token for
//                        (RFC 8707 `resource` or SMART `aud`); the app's own URL (--app-url)
//                        always is one: its APIs ($apply, /referrals) take tokens meant for it
//   --koppeltaal         a Koppeltaal 2.0 domain instead of a SMART EHR: KT2 seed, the module
//                        and portal Devices as clients, the FHIR server's Koppeltaal rules
//                        (koppeltaal.mjs) and the portal (see /work/briefs/kt-contract.md)
// To play other EHRs (auth-server.mjs):
//   --discovery MODE     full (default) | metadata-only (no .well-known/smart-configuration:
//                        the endpoints only in /metadata) | no-issuer (no `issuer` in it)
//   --profile-claim      id_tokens carry a v1 `profile` claim instead of `fhirUser`
//   --strict-scopes      a scope outside the client's registration is refused (invalid_scope)
import { randomBytes } from 'node:crypto';
import { readFileSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { exportJWK, generateKeyPair } from 'jose';
import { createAuthServer } from './auth-server.mjs';
import { Credentials, JOURNAL_FILE, lockDataDir } from './data-dir.mjs';
import { createFhirServer } from './fhir-server.mjs';
import { createLauncher } from './launcher.mjs';
import { createPortal } from './portal.mjs';
import { KOPPELTAAL_ROLES } from './koppeltaal.mjs';
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
async function defaultClients(appUrl, credentials) {
  // Made once per data directory (or per start without one), like a real EHR's registrations.
  const remember = (name, generate) => credentials.remember(name, generate);
  const rs384 = await remember('client/fhir-burnout-worker/RS384', () => keyPair('RS384', 'worker-rs384'));
  const es384 = await remember('client/fhir-burnout-worker/ES384', () => keyPair('ES384', 'worker-es384'));
  const referralSecret = await remember('client/referral-system/secret', () => randomBytes(24).toString('base64url'));
  const clients = [
    {
      client_id: 'fhir-burnout',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: [`${appUrl}/callback`],
      launch_uri: `${appUrl}/launch`,
      // The patient portal launches the app as the patient, at its own launch URL.
      portal_launch_uri: `${appUrl}/launch/patient`,
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
      client_secret: referralSecret,
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: 'system/ServiceRequest.cruds system/Patient.cruds system/Bundle.cruds system/CarePlan.cruds',
    },
  ];
  const privateKeys = { 'fhir-burnout-worker': [rs384.priv, es384.priv] };
  return { clients, privateKeys };
}

/**
 * The clients of a Koppeltaal domain: the module (Device/fhir-burnout, private_key_jwt with an
 * RS512 key, the HTI launch and backend services) and the portal (Device/portal, whose key
 * the sandbox holds to sign launch tokens). Each one's scope is its role (KOPPELTAAL_ROLES).
 */
async function koppeltaalClients(appUrl, credentials) {
  const remember = (name, generate) => credentials.remember(name, generate);
  const moduleKeys = await remember('client/fhir-burnout/koppeltaal/RS512', () => keyPair('RS512', 'fhir-burnout-rs512'));
  const moduleEc = await remember('client/fhir-burnout/koppeltaal/ES384', () => keyPair('ES384', 'fhir-burnout-es384'));
  const portal = await remember('client/portal/koppeltaal/RS512', () => keyPair('RS512', 'portal-rs512'));
  // The RSA key is registered without `alg`, so assertions signed with it in RS384 pass too
  // (a Koppeltaal auth service takes RS512, RS384 and ES384); ES384 has a key of its own.
  const anyRsaAlg = ({ alg, ...jwk }) => jwk;
  const clients = [
    {
      client_id: 'fhir-burnout',
      token_endpoint_auth_method: 'private_key_jwt',
      grant_types: ['authorization_code', 'client_credentials'],
      response_types: ['code'],
      redirect_uris: [`${appUrl}/koppeltaal/callback`],
      launch_uri: `${appUrl}/koppeltaal/launch`,
      jwks: { keys: [anyRsaAlg(moduleKeys.pub), moduleEc.pub] },
      scope: `launch openid fhirUser ${KOPPELTAAL_ROLES['fhir-burnout']}`,
    },
    {
      client_id: 'portal',
      token_endpoint_auth_method: 'private_key_jwt',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      jwks: { keys: [portal.pub] },
      scope: KOPPELTAAL_ROLES.portal,
    },
  ];
  const privateKeys = { 'fhir-burnout': [moduleKeys.priv, moduleEc.priv], portal: [portal.priv] };
  return { clients, privateKeys };
}

function readClientConfig(path) {
  if (!path) return [];
  const data = JSON.parse(readFileSync(path, 'utf8'));
  return Array.isArray(data) ? data : data.clients ?? [];
}

/** A whole number >= `min` from an option, or undefined when it is absent. */
function wholeNumber(values, name, min) {
  const text = values[name];
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < min) {
    throw new Error(`--${name} must be a whole number >= ${min}, got ${JSON.stringify(text)}`);
  }
  return Number(text);
}

function writeAtomically(path, data) {
  // Readers poll for the file: it must appear whole or not at all.
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(data, null, 2) + '\n');
  renameSync(tmp, path);
}

/**
 * Start a sandbox: the command line's options in camelCase (`clientConfig` is a file name,
 * `dataDir` a directory). Resolves once everything answers, to `{info, close}`: `info` is what
 * --info holds, `close()` stops the server and releases the data directory. Tests use this to
 * run (and restart) a sandbox in their own process.
 */
export async function startSandbox({
  port = 0,
  host = '127.0.0.1',
  clientConfig,
  appUrl = 'http://127.0.0.1:8000',
  consent = false,
  dataDir,
  tokenTtl,
  rateLimit,
  koppeltaal = false,
  resources = [],
  discovery = 'full',
  profileClaim = false,
  strictScopes = false,
} = {}) {
  dataDir = dataDir && resolve(dataDir);
  const unlock = dataDir ? lockDataDir(dataDir) : () => {};
  let dispatch = async (_req, res) => {
    res.writeHead(503).end('starting');
  };
  const server = createServer((req, res) => {
    dispatch(req, res).catch((err) => {
      console.error('sandbox: unhandled error', err?.message ?? err);
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end('internal error');
    });
  });
  let fhir;
  async function close() {
    const closed = new Promise((done) => server.close(done));
    server.closeAllConnections();
    await closed;
    fhir?.close(); // every commit is already fsynced: closing loses nothing
    unlock();
  }
  try {
    await new Promise((done, fail) => {
      server.once('error', fail);
      server.listen(port, host, done);
    });
    const origin = `http://${host}:${server.address().port}`;
    const fhirBase = `${origin}/fhir`;
    const issuer = `${origin}/auth`;
    const launcherUrl = `${origin}/launcher`;

    const portalUrl = `${origin}/portal`;

    const seed = seedResources({ koppeltaal });
    const credentials = new Credentials(dataDir);
    const makeClients = koppeltaal ? koppeltaalClients : defaultClients;
    const { clients: defaults, privateKeys } = await makeClients(appUrl.replace(/\/$/, ''), credentials);
    const clients = [...defaults, ...readClientConfig(clientConfig)];
    const { practitioners, patients } = seedSummary(seed);
    const people = { practitioners, patients };
    const auth = await createAuthServer({
      issuer, fhirBase, clients, consent, seed: people, tokenTtl, credentials, koppeltaal,
      resources: [appUrl, ...resources], discovery, profileClaim, strictScopes,
    });
    credentials.save();
    fhir = await createFhirServer({
      baseUrl: fhirBase,
      verifyAccessToken: (token) => auth.verifyAccessToken(token),
      smartConfiguration: () => auth.smartConfiguration(),
      // Definitions and the care team are not in a patient's compartment, yet a patient-facing
      // app must read them (a real EHR grants patient/Questionnaire.rs the same way).
      sharedTypes: [
        'Questionnaire', 'PlanDefinition', 'ActivityDefinition', 'Library', 'CodeSystem', 'ValueSet',
        'StructureDefinition', 'Practitioner', 'PractitionerRole', 'Organization',
      ],
      journalFile: dataDir && join(dataDir, JOURNAL_FILE),
      rateLimit,
      koppeltaal,
      wellKnown: discovery !== 'metadata-only',
    });
    const launcher = createLauncher({ launcherUrl, fhirBase, auth, clients: auth.clients, seed: people });
    const portal = koppeltaal
      ? createPortal({ portalUrl, fhirBase, tokenUrl: `${issuer}/token`, privateJwk: privateKeys.portal[0] })
      : undefined;
    if (!fhir.restored) {
      await fhir.seed(allSeedResources(seed)); // journaled too, when there is a journal
    }

    dispatch = async (req, res) => {
      const path = req.url.split('?')[0];
      if (path === '/fhir' || path.startsWith('/fhir/')) return fhir.handle(req, res);
      if (path === '/auth' || path.startsWith('/auth/')) return auth.handle(req, res);
      if (path === '/launcher' || path.startsWith('/launcher/')) return launcher.handle(req, res);
      if (portal && (path === '/portal' || path.startsWith('/portal/'))) return portal.handle(req, res);
      if (path === '/') {
        res.writeHead(302, { Location: portal ? portalUrl : launcherUrl }).end();
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
        portal_launch_uri: c.portal_launch_uri,
        scope: c.scope,
        private_keys: privateKeys[c.client_id],
      })),
      seed: seedSummary(seed),
      data_dir: dataDir,
      restored: fhir.restored,
      token_ttl: tokenTtl,
      rate_limit: rateLimit,
      resources: [appUrl.replace(/\/+$/, ''), ...resources],
      koppeltaal,
      discovery,
      portal: koppeltaal ? portalUrl : undefined,
      pid: process.pid,
    };
    return { info, close };
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
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
      data: { type: 'string' },
      'token-ttl': { type: 'string' },
      'rate-limit': { type: 'string' },
      koppeltaal: { type: 'boolean', default: false },
      resource: { type: 'string', multiple: true, default: [] },
      discovery: { type: 'string', default: 'full' },
      'profile-claim': { type: 'boolean', default: false },
      'strict-scopes': { type: 'boolean', default: false },
    },
  });
  const { info, close } = await startSandbox({
    port: wholeNumber(values, 'port', 0),
    host: values.host,
    clientConfig: values['client-config'],
    appUrl: values['app-url'],
    consent: values.consent,
    dataDir: values.data,
    tokenTtl: wholeNumber(values, 'token-ttl', 1),
    rateLimit: wholeNumber(values, 'rate-limit', 1),
    koppeltaal: values.koppeltaal,
    resources: values.resource,
    discovery: values.discovery,
    profileClaim: values['profile-claim'],
    strictScopes: values['strict-scopes'],
  });
  // Handlers first: whoever reads the ready line may stop us at once.
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    if (values.info) rmSync(values.info, { force: true });
    close().finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  if (values.info) writeAtomically(values.info, info);
  console.log(`FHIR server:          ${info.fhir_base}`);
  console.log(`Authorization server: ${info.issuer}`);
  console.log(`EHR launcher:         ${info.launcher}`);
  if (info.koppeltaal) console.log(`Koppeltaal portal:    ${info.portal}`);
  if (info.data_dir) console.log(`Data directory:       ${info.data_dir}${info.restored ? ' (restored)' : ''}`);
  if (values.info) console.log(`Info file:            ${values.info}`);
}

// Run only as the program (node src/main.mjs), not when a test imports startSandbox.
if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  main().catch((err) => {
    console.error(`sandbox: failed to start: ${err?.stack ?? err}`);
    process.exit(1);
  });
}
