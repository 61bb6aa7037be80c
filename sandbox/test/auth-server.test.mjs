// Real OAuth 2 / SMART App Launch flows against the sandbox authorization server and launcher:
// fetch with manual redirects and a small cookie jar stand in for the browser.
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import * as jose from 'jose';

import { createAuthServer, parseSmartScope, scopeCovers } from '../src/auth-server.mjs';
import { Credentials, lockDataDir } from '../src/data-dir.mjs';
import { createLauncher } from '../src/launcher.mjs';

const APP_ORIGIN = 'http://127.0.0.1:9'; // never contacted: redirects to it are read, not followed
const CALLBACK = `${APP_ORIGIN}/app/callback`;

const SEED = {
  practitioners: [{ id: 'dr-test-jansen', name: 'Dr. T. Jansen (fictitious)' }],
  patients: [
    { id: 'pat-een', name: 'Test Patiënt Een' },
    { id: 'pat-twee', name: '<b>Twee</b> & "quotes"' },
  ],
};

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

async function backendKey(alg) {
  const { publicKey, privateKey } = await jose.generateKeyPair(alg, { extractable: true });
  const jwk = await jose.exportJWK(publicKey);
  const kid = await jose.calculateJwkThumbprint(jwk);
  return { alg, kid, privateKey, publicJwk: { ...jwk, alg, kid, use: 'sig' } };
}

function testClients(keys) {
  const backend = (clientId, key) => ({
    client_id: clientId,
    token_endpoint_auth_method: 'private_key_jwt',
    grant_types: ['client_credentials'],
    redirect_uris: [],
    jwks: { keys: [key.publicJwk] },
    scope: 'system/*.rs',
  });
  return [
    {
      client_id: 'ehr-app',
      client_name: 'Burn-out <App>',
      token_endpoint_auth_method: 'none',
      redirect_uris: [CALLBACK],
      launch_uri: `${APP_ORIGIN}/app/launch?tenant=x`,
      grant_types: ['authorization_code', 'refresh_token'],
      scope: 'openid fhirUser launch launch/patient launch/encounter offline_access patient/*.rs user/*.rs user/Task.cu',
    },
    {
      client_id: 'portal-app',
      token_endpoint_auth_method: 'none',
      redirect_uris: [CALLBACK],
      grant_types: ['authorization_code', 'refresh_token'],
      scope: 'openid fhirUser launch/patient patient/*.rs',
    },
    {
      client_id: 'confidential-app',
      token_endpoint_auth_method: 'client_secret_basic',
      client_secret: 'test-secret-not-real',
      redirect_uris: [CALLBACK],
      grant_types: ['authorization_code'],
      scope: 'openid fhirUser launch patient/*.cruds',
    },
    backend('backend-rs384', keys.rs384),
    backend('backend-es384', keys.es384),
    {
      client_id: 'backend-generated',
      token_endpoint_auth_method: 'private_key_jwt',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      scope: 'system/Observation.rs',
    },
  ];
}

/** One HTTP server with the sandbox's mounts: /auth, /launcher and FHIR discovery. */
async function startSandbox({ consent = false, tokenTtl, resources, ...variants } = {}) {
  const server = http.createServer();
  await new Promise((resolve) => { server.listen(0, '127.0.0.1', resolve); });
  const base = `http://127.0.0.1:${server.address().port}`;
  const fhirBase = `${base}/fhir`;
  const issuer = `${base}/auth`;
  const keys = { rs384: await backendKey('RS384'), es384: await backendKey('ES384') };
  const auth = await createAuthServer({
    issuer, fhirBase, clients: testClients(keys), consent, seed: SEED, tokenTtl, resources,
    ...variants,
  });
  const launcher = createLauncher({
    launcherUrl: `${base}/launcher`, fhirBase, auth, clients: auth.clients, seed: SEED,
  });
  server.on('request', (req, res) => {
    const { pathname } = new URL(req.url, base);
    if (pathname.startsWith('/auth')) return auth.handle(req, res);
    if (pathname.startsWith('/launcher')) return launcher.handle(req, res);
    if (pathname === '/fhir/.well-known/smart-configuration') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify(auth.smartConfiguration()));
    }
    res.writeHead(404);
    return res.end();
  });
  return {
    base,
    fhirBase,
    issuer,
    auth,
    keys,
    tokenUrl: `${issuer}/token`,
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => { server.close(resolve); });
    },
  };
}

/** fetch with manual redirects and a path-aware cookie jar, like a browser without JS. */
class Browser {
  #cookies = new Map();

  async fetch(url, init = {}) {
    const target = new URL(url);
    const headers = new Headers(init.headers);
    const cookie = [...this.#cookies.values()]
      .filter((c) => target.pathname.startsWith(c.path))
      .map((c) => `${c.name}=${c.value}`).join('; ');
    if (cookie) headers.set('cookie', cookie);
    const res = await fetch(target, { ...init, headers, redirect: 'manual' });
    res.headers.getSetCookie().forEach((line) => this.#store(line));
    return res;
  }

  #store(line) {
    const [pair, ...attributes] = line.split(';').map((part) => part.trim());
    const name = pair.slice(0, pair.indexOf('='));
    const value = pair.slice(pair.indexOf('=') + 1);
    const attr = (key) => attributes.find((a) => a.toLowerCase().startsWith(`${key}=`))?.split('=')[1];
    const path = attr('path') ?? '/';
    const expires = attr('expires');
    const expired = value === '' || (expires && Date.parse(expires) < Date.now());
    if (expired) this.#cookies.delete(`${name}|${path}`);
    else this.#cookies.set(`${name}|${path}`, { name, value, path });
  }

  /** Follow redirects until one leaves for `stopAt` (returned) or a page answers. */
  async follow(url, stopAt = APP_ORIGIN, init = {}) {
    let current = new URL(url);
    let options = init;
    for (let hop = 0; hop < 10; hop += 1) {
      const res = await this.fetch(current, options);
      const location = res.headers.get('location');
      if (res.status < 300 || res.status >= 400 || !location) {
        return { res, body: await res.text() };
      }
      await res.arrayBuffer();
      current = new URL(location, current);
      options = {};
      if (current.href.startsWith(stopAt)) {
        return { redirect: current };
      }
    }
    throw new Error('too many redirects');
  }
}

function pkce() {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

function authorizeUrl(sandbox, params) {
  const query = new URLSearchParams({
    response_type: 'code',
    redirect_uri: CALLBACK,
    state: randomUUID(),
    aud: sandbox.fhirBase,
    ...params,
  });
  return `${sandbox.issuer}/authorize?${query}`;
}

/** Run an authorization request to its end; returns the callback's query parameters. */
async function authorize(sandbox, browser, params) {
  const { redirect, res, body } = await browser.follow(authorizeUrl(sandbox, params));
  assert.ok(redirect, `expected a redirect to the app, got ${res?.status}: ${body}`);
  assert.equal(redirect.origin + redirect.pathname, CALLBACK);
  return redirect.searchParams;
}

async function token(sandbox, form, headers = {}) {
  const res = await fetch(sandbox.tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(form),
  });
  return { status: res.status, body: await res.json() };
}

/** Authorize with PKCE and exchange the code: the whole authorization code flow. */
async function codeFlow(sandbox, browser, params) {
  const { verifier, challenge } = pkce();
  const callback = await authorize(sandbox, browser, {
    code_challenge: challenge, code_challenge_method: 'S256', ...params,
  });
  assert.equal(callback.get('error'), null, callback.get('error_description'));
  return token(sandbox, {
    grant_type: 'authorization_code',
    code: callback.get('code'),
    redirect_uri: CALLBACK,
    client_id: params.client_id,
    code_verifier: verifier,
  });
}

async function launchFromEhr(sandbox, browser, query) {
  const res = await browser.fetch(`${sandbox.base}/launcher?${new URLSearchParams(query)}`);
  assert.equal(res.status, 302, await res.text());
  const launchUri = new URL(res.headers.get('location'));
  assert.equal(launchUri.searchParams.get('iss'), sandbox.fhirBase);
  return launchUri;
}

async function clientAssertion(sandbox, clientId, key, { lifetime = 300, jti = randomUUID() } = {}) {
  const now = Math.floor(Date.now() / 1000);
  return new jose.SignJWT({})
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
    .setIssuer(clientId)
    .setSubject(clientId)
    .setAudience(sandbox.tokenUrl)
    .setJti(jti)
    .setIssuedAt(now)
    .setExpirationTime(now + lifetime)
    .sign(key.privateKey);
}

function backendToken(sandbox, clientId, assertion, scope = 'system/Observation.rs', more = {}) {
  return token(sandbox, {
    grant_type: 'client_credentials',
    scope,
    ...more,
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: assertion,
  });
}

function scopesOf(body) {
  return new Set(body.scope.split(' '));
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

describe('SMART authorization server', () => {
  let sandbox;
  before(async () => { sandbox = await startSandbox(); });
  after(() => sandbox.close());

  test('smart-configuration is served at the issuer and matches the provider', async () => {
    const smart = await (await fetch(`${sandbox.issuer}/.well-known/smart-configuration`)).json();
    const oidc = await (await fetch(`${sandbox.issuer}/.well-known/openid-configuration`)).json();
    assert.deepEqual(smart, sandbox.auth.smartConfiguration());
    assert.equal(smart.issuer, sandbox.issuer);
    assert.equal(smart.authorization_endpoint, oidc.authorization_endpoint);
    assert.equal(smart.token_endpoint, `${sandbox.issuer}/token`);
    assert.equal(smart.jwks_uri, oidc.jwks_uri);
    assert.deepEqual(smart.code_challenge_methods_supported, ['S256']);
    assert.equal(smart.registration_endpoint, undefined);
    for (const capability of ['launch-ehr', 'launch-standalone', 'client-confidential-asymmetric',
      'context-ehr-patient', 'permission-v1', 'permission-v2', 'sso-openid-connect', 'authorize-post']) {
      assert.ok(smart.capabilities.includes(capability), capability);
    }
    for (const scope of ['openid', 'launch/patient', 'patient/Observation.rs', 'user/Task.cu',
      'system/*.read', 'patient/QuestionnaireResponse.cruds']) {
      assert.ok(smart.scopes_supported.includes(scope), scope);
    }
  });

  test('EHR launch: launcher, PKCE, auto-login, token with context, refresh keeps it', async () => {
    const browser = new Browser();
    const launchUri = await launchFromEhr(sandbox, browser, {
      app: 'ehr-app', practitioner: 'dr-test-jansen', patient: 'pat-een',
    });
    assert.equal(launchUri.searchParams.get('tenant'), 'x');

    const first = await codeFlow(sandbox, browser, {
      client_id: 'ehr-app',
      scope: 'launch openid fhirUser offline_access patient/*.rs user/Task.cu',
      aud: launchUri.searchParams.get('iss'),
      launch: launchUri.searchParams.get('launch'),
    });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const tokens = first.body;
    assert.equal(tokens.patient, 'pat-een');
    assert.equal(tokens.fhirUser, `${sandbox.fhirBase}/Practitioner/dr-test-jansen`);
    assert.equal(tokens.need_patient_banner, true);
    assert.equal(tokens.smart_style_url, `${sandbox.issuer}/smart-style.json`);
    assert.deepEqual(scopesOf(tokens), new Set(['launch', 'openid', 'fhirUser', 'offline_access', 'patient/*.rs', 'user/Task.cu']));
    assert.ok(tokens.refresh_token, 'offline_access gives a refresh token without prompt=consent');

    const jwks = jose.createRemoteJWKSet(new URL(`${sandbox.issuer}/jwks`));
    const { payload: idToken, protectedHeader } = await jose.jwtVerify(tokens.id_token, jwks, {
      issuer: sandbox.issuer, audience: 'ehr-app',
    });
    assert.equal(protectedHeader.alg, 'RS256');
    assert.equal(idToken.fhirUser, `${sandbox.fhirBase}/Practitioner/dr-test-jansen`);

    const claims = await sandbox.auth.verifyAccessToken(tokens.access_token);
    assert.deepEqual(claims, {
      scope: 'patient/*.rs user/Task.cu',
      client_id: 'ehr-app',
      sub: 'Practitioner/dr-test-jansen',
      patient: 'pat-een',
      fhirUser: 'Practitioner/dr-test-jansen',
    });

    const refreshed = await token(sandbox, {
      grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: 'ehr-app',
    });
    assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
    assert.equal(refreshed.body.patient, 'pat-een');
    assert.equal(refreshed.body.fhirUser, tokens.fhirUser);
    assert.deepEqual(scopesOf(refreshed.body), scopesOf(tokens));
    assert.notEqual(refreshed.body.refresh_token, tokens.refresh_token, 'refresh tokens rotate');
    assert.equal((await sandbox.auth.verifyAccessToken(refreshed.body.access_token)).patient, 'pat-een');

    const reused = await token(sandbox, {
      grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: 'ehr-app',
    });
    assert.equal(reused.body.error, 'invalid_grant');
  });

  test('patient-portal launch: without a practitioner the patient is the user', async () => {
    const browser = new Browser();
    const launchUri = await launchFromEhr(sandbox, browser, { app: 'ehr-app', patient: 'pat-twee' });
    const { status, body } = await codeFlow(sandbox, browser, {
      client_id: 'ehr-app',
      scope: 'launch openid fhirUser patient/*.rs',
      launch: launchUri.searchParams.get('launch'),
    });
    assert.equal(status, 200);
    assert.equal(body.patient, 'pat-twee');
    assert.equal(body.fhirUser, `${sandbox.fhirBase}/Patient/pat-twee`);
    assert.equal(body.refresh_token, undefined, 'no offline_access, no refresh token');
  });

  test('one browser can launch as a practitioner, then as a patient; contexts stay apart', async () => {
    const browser = new Browser();
    const scope = 'launch openid fhirUser offline_access patient/*.rs';
    const asDoctor = await launchFromEhr(sandbox, browser, {
      app: 'ehr-app', practitioner: 'dr-test-jansen', patient: 'pat-een', encounter: 'enc-1', intent: 'reconcile',
    });
    const doctor = await codeFlow(sandbox, browser, {
      client_id: 'ehr-app', scope, launch: asDoctor.searchParams.get('launch'),
    });
    assert.equal(doctor.body.encounter, 'enc-1');
    assert.equal(doctor.body.intent, 'reconcile');

    const asPatient = await launchFromEhr(sandbox, browser, { app: 'ehr-app', patient: 'pat-twee' });
    const patient = await codeFlow(sandbox, browser, {
      client_id: 'ehr-app', scope, launch: asPatient.searchParams.get('launch'),
    });
    assert.equal(patient.status, 200, JSON.stringify(patient.body));
    assert.equal(patient.body.fhirUser, `${sandbox.fhirBase}/Patient/pat-twee`);
    assert.equal(patient.body.patient, 'pat-twee');

    const doctorAgain = await token(sandbox, {
      grant_type: 'refresh_token', refresh_token: doctor.body.refresh_token, client_id: 'ehr-app',
    });
    assert.equal(doctorAgain.body.patient, 'pat-een', 'an older grant keeps its own launch context');
  });

  test('standalone launch: login_hint=Patient/ID selects the patient', async () => {
    const { status, body } = await codeFlow(sandbox, new Browser(), {
      client_id: 'portal-app',
      scope: 'launch/patient openid fhirUser patient/*.rs',
      login_hint: 'Patient/pat-een',
    });
    assert.equal(status, 200);
    assert.equal(body.patient, 'pat-een');
    assert.equal(body.fhirUser, `${sandbox.fhirBase}/Patient/pat-een`);
    assert.equal(body.need_patient_banner, true);
  });

  test('standalone launch without a hint shows an escaped patient picker', async () => {
    const browser = new Browser();
    const { verifier, challenge } = pkce();
    const { res, body } = await browser.follow(authorizeUrl(sandbox, {
      client_id: 'portal-app',
      scope: 'launch/patient openid patient/*.rs',
      code_challenge: challenge,
      code_challenge_method: 'S256',
    }));
    assert.equal(res.status, 200);
    assert.match(body, /&#60;b&#62;Twee&#60;\/b&#62; &#38; &#34;quotes&#34;/);
    assert.doesNotMatch(body, /<b>Twee/);
    const action = /<form method="post" action="([^"]+)"/.exec(body)[1];

    const { redirect } = await browser.follow(new URL(action, sandbox.base), APP_ORIGIN, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'patient=pat-twee',
    });
    const exchanged = await token(sandbox, {
      grant_type: 'authorization_code',
      code: redirect.searchParams.get('code'),
      redirect_uri: CALLBACK,
      client_id: 'portal-app',
      code_verifier: verifier,
    });
    assert.equal(exchanged.body.patient, 'pat-twee');
  });

  test('authorize by POST (authorize-post) also honours offline_access', async () => {
    const browser = new Browser();
    const launchUri = await launchFromEhr(sandbox, browser, { app: 'ehr-app', patient: 'pat-een' });
    const { verifier, challenge } = pkce();
    const { redirect, res, body: page } = await browser.follow(`${sandbox.issuer}/authorize`, APP_ORIGIN, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        response_type: 'code',
        client_id: 'ehr-app',
        redirect_uri: CALLBACK,
        scope: 'launch offline_access patient/*.rs',
        aud: sandbox.fhirBase,
        launch: launchUri.searchParams.get('launch'),
        state: 'post',
        code_challenge: challenge,
        code_challenge_method: 'S256',
      }),
    });
    assert.ok(redirect, `${res?.status} ${page}`);
    const { body } = await token(sandbox, {
      grant_type: 'authorization_code',
      code: redirect.searchParams.get('code'),
      redirect_uri: CALLBACK,
      client_id: 'ehr-app',
      code_verifier: verifier,
    });
    assert.ok(body.refresh_token);
    assert.equal(body.patient, 'pat-een');
  });

  test('PKCE is required: a missing or plain challenge is invalid_request', async () => {
    const cases = [
      { client_id: 'ehr-app' },
      { client_id: 'confidential-app' },
      { client_id: 'ehr-app', code_challenge: 'x'.repeat(43), code_challenge_method: 'plain' },
    ];
    for (const params of cases) {
      const callback = await authorize(sandbox, new Browser(), {
        scope: 'openid patient/*.rs', login_hint: 'Patient/pat-een', ...params,
      });
      assert.equal(callback.get('error'), 'invalid_request', JSON.stringify(params));
      assert.equal(callback.get('code'), null);
    }
  });

  test('a wrong code_verifier is invalid_grant, and a code works only once', async () => {
    const browser = new Browser();
    const { verifier, challenge } = pkce();
    const callback = await authorize(sandbox, browser, {
      client_id: 'portal-app',
      scope: 'openid patient/*.rs',
      login_hint: 'Patient/pat-een',
      code_challenge: challenge,
      code_challenge_method: 'S256',
    });
    const exchange = (codeVerifier) => token(sandbox, {
      grant_type: 'authorization_code',
      code: callback.get('code'),
      redirect_uri: CALLBACK,
      client_id: 'portal-app',
      code_verifier: codeVerifier,
    });
    assert.equal((await exchange(pkce().verifier)).body.error, 'invalid_grant');
    assert.equal((await exchange(verifier)).status, 200);
    assert.equal((await exchange(verifier)).body.error, 'invalid_grant');
  });

  test('an aud other than the FHIR base is invalid_target; an unknown launch is refused', async () => {
    const { challenge } = pkce();
    const common = {
      client_id: 'ehr-app', scope: 'launch patient/*.rs', code_challenge: challenge, code_challenge_method: 'S256',
    };
    const wrongAud = await authorize(sandbox, new Browser(), {
      ...common, aud: 'http://127.0.0.1:1/other-fhir', login_hint: 'Patient/pat-een',
    });
    assert.equal(wrongAud.get('error'), 'invalid_target');
    const unknownLaunch = await authorize(sandbox, new Browser(), { ...common, launch: 'no-such-launch' });
    assert.equal(unknownLaunch.get('error'), 'invalid_request');
  });

  test('a client never gets a scope outside its registration', async () => {
    const { status, body } = await codeFlow(sandbox, new Browser(), {
      client_id: 'portal-app',
      scope: 'openid launch/patient offline_access launch patient/*.rs patient/*.cruds user/*.rs system/*.rs',
      login_hint: 'Patient/pat-een',
    });
    assert.equal(status, 200);
    assert.deepEqual(scopesOf(body), new Set(['openid', 'launch/patient', 'patient/*.rs']));
    assert.equal(body.refresh_token, undefined);
    assert.equal((await sandbox.auth.verifyAccessToken(body.access_token)).scope, 'patient/*.rs');

    // A narrower scope than the registration's wildcard is fine.
    const narrow = await codeFlow(sandbox, new Browser(), {
      client_id: 'portal-app', scope: 'patient/Observation.r patient/Patient.read', login_hint: 'Patient/pat-een',
    });
    assert.deepEqual(scopesOf(narrow.body), new Set(['patient/Observation.r', 'patient/Patient.read']));
  });

  test('a confidential client authenticates with its secret', async () => {
    const basic = `Basic ${Buffer.from('confidential-app:test-secret-not-real').toString('base64')}`;
    const { verifier, challenge } = pkce();
    const callback = await authorize(sandbox, new Browser(), {
      client_id: 'confidential-app', scope: 'openid patient/*.cruds', login_hint: 'Patient/pat-een',
      code_challenge: challenge, code_challenge_method: 'S256',
    });
    const form = {
      grant_type: 'authorization_code', code: callback.get('code'), redirect_uri: CALLBACK, code_verifier: verifier,
    };
    assert.equal((await token(sandbox, form, { authorization: 'Basic eDp5' })).body.error, 'invalid_client');
    const { status, body } = await token(sandbox, form, { authorization: basic });
    assert.equal(status, 200);
    assert.equal(body.scope, 'openid patient/*.cruds');
  });

  for (const [clientId, keyName] of [['backend-rs384', 'rs384'], ['backend-es384', 'es384']]) {
    test(`backend services: ${clientId} gets a system-scoped token`, async () => {
      const key = sandbox.keys[keyName];
      const { status, body } = await backendToken(sandbox, clientId, await clientAssertion(sandbox, clientId, key));
      assert.equal(status, 200, JSON.stringify(body));
      assert.equal(body.scope, 'system/Observation.rs');
      assert.equal(body.refresh_token, undefined);
      assert.ok(body.expires_in <= 300);
      const claims = await sandbox.auth.verifyAccessToken(body.access_token);
      assert.deepEqual(claims, { scope: 'system/Observation.rs', client_id: clientId, sub: clientId });
    });
  }

  test('backend services: wrong key, replayed jti and a long-lived assertion are invalid_client', async () => {
    const { rs384, es384 } = sandbox.keys;
    const wrongKey = await clientAssertion(sandbox, 'backend-rs384', { ...(await backendKey('RS384')), kid: rs384.kid });
    assert.equal((await backendToken(sandbox, 'backend-rs384', wrongKey)).body.error, 'invalid_client');
    const otherClientsKey = await clientAssertion(sandbox, 'backend-rs384', es384);
    assert.equal((await backendToken(sandbox, 'backend-rs384', otherClientsKey)).body.error, 'invalid_client');

    const assertion = await clientAssertion(sandbox, 'backend-rs384', rs384);
    assert.equal((await backendToken(sandbox, 'backend-rs384', assertion)).status, 200);
    assert.equal((await backendToken(sandbox, 'backend-rs384', assertion)).body.error, 'invalid_client');

    const hourLong = await clientAssertion(sandbox, 'backend-rs384', rs384, { lifetime: 3600 });
    assert.equal((await backendToken(sandbox, 'backend-rs384', hourLong)).body.error, 'invalid_client');
  });

  test('backend services: scopes beyond the registration are not granted', async () => {
    const { rs384 } = sandbox.keys;
    const assertion = await clientAssertion(sandbox, 'backend-rs384', rs384);
    const { body } = await backendToken(sandbox, 'backend-rs384', assertion, 'system/Patient.rs system/Task.cruds patient/*.rs');
    assert.equal(body.scope, 'system/Patient.rs');
  });

  test('a private_key_jwt client without keys gets a generated key pair', async () => {
    const client = sandbox.auth.clients.find((c) => c.client_id === 'backend-generated');
    assert.equal(client.jwks.keys.length, 1);
    assert.equal(client.jwks.keys[0].d, undefined, 'only the public key is registered');
    const key = {
      alg: client.private_jwk.alg,
      kid: client.private_jwk.kid,
      privateKey: await jose.importJWK(client.private_jwk, client.private_jwk.alg),
    };
    const { status, body } = await backendToken(sandbox, 'backend-generated', await clientAssertion(sandbox, 'backend-generated', key));
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.scope, 'system/Observation.rs');
  });

  test('verifyAccessToken accepts a real token and rejects a tampered or foreign one', async () => {
    const { body } = await codeFlow(sandbox, new Browser(), {
      client_id: 'portal-app', scope: 'patient/*.rs', login_hint: 'Patient/pat-een',
    });
    assert.equal((await sandbox.auth.verifyAccessToken(body.access_token)).patient, 'pat-een');

    const [header, payload, signature] = body.access_token.split('.');
    const claims = JSON.parse(Buffer.from(payload, 'base64url'));
    const forged = Buffer.from(JSON.stringify({ ...claims, patient: 'pat-twee' })).toString('base64url');
    await assert.rejects(sandbox.auth.verifyAccessToken(`${header}.${forged}.${signature}`));

    const other = await startSandbox();
    try {
      const { body: foreign } = await codeFlow(other, new Browser(), {
        client_id: 'portal-app', scope: 'patient/*.rs', login_hint: 'Patient/pat-een',
      });
      await assert.rejects(sandbox.auth.verifyAccessToken(foreign.access_token));
    } finally {
      await other.close();
    }
  });

  test('an interaction page without its cookie is a readable 400', async () => {
    const res = await fetch(`${sandbox.issuer}/interaction/abc`);
    assert.equal(res.status, 400);
    assert.match(await res.text(), /start the launch again/);
  });

  test('registerLaunch refuses a launch without a patient or practitioner', () => {
    assert.throws(() => sandbox.auth.registerLaunch({}), TypeError);
    assert.throws(() => sandbox.auth.registerLaunch({ patient: 'a/b' }), TypeError);
  });
});

describe('further resource servers (started with resources)', () => {
  const API = `${APP_ORIGIN}/app-api`;
  let sandbox;
  before(async () => { sandbox = await startSandbox({ resources: [API] }); });
  after(() => sandbox.close());

  const audienceOf = (accessToken) => jose.decodeJwt(accessToken).aud;

  test('a backend token names its resource server; an unknown one is invalid_target', async () => {
    const key = sandbox.keys.rs384;
    const assert_ = () => clientAssertion(sandbox, 'backend-rs384', key);
    const forApi = await backendToken(sandbox, 'backend-rs384', await assert_(), undefined, { resource: API });
    assert.equal(forApi.status, 200, JSON.stringify(forApi.body));
    assert.equal(audienceOf(forApi.body.access_token), API);
    // A token for the app's API is not one for the FHIR server.
    await assert.rejects(sandbox.auth.verifyAccessToken(forApi.body.access_token));
    const plain = await backendToken(sandbox, 'backend-rs384', await assert_());
    assert.equal(audienceOf(plain.body.access_token), sandbox.fhirBase);
    const unknown = await backendToken(sandbox, 'backend-rs384', await assert_(), undefined, {
      resource: 'http://127.0.0.1:1/elsewhere',
    });
    assert.equal(unknown.body.error, 'invalid_target');
  });

  test('a person\'s token may be asked for it with aud, with the scopes they may have', async () => {
    const { status, body } = await codeFlow(sandbox, new Browser(), {
      client_id: 'ehr-app', scope: 'openid user/Task.cu', aud: API, login_hint: 'Patient/pat-een',
    });
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(audienceOf(body.access_token), API);
    assert.ok(scopesOf(body).has('user/Task.cu'));
  });
});

describe('EHR launcher', () => {
  let sandbox;
  before(async () => { sandbox = await startSandbox(); });
  after(() => sandbox.close());

  test('the page lists apps, practitioners and patients, escaped', async () => {
    const res = await fetch(`${sandbox.base}/launcher`);
    assert.equal(res.status, 200);
    const html = await res.text();
    assert.match(html, /value="ehr-app">Burn-out &#60;App&#62;/);
    assert.doesNotMatch(html, /portal-app|backend-rs384/, 'only clients with a launch_uri');
    assert.match(html, /Dr\. T\. Jansen/);
    assert.match(html, /&#60;b&#62;Twee/);
    assert.doesNotMatch(html, /<b>Twee/);
    assert.match(html, /patient portal/);
  });

  test('a scripted launch redirects to launch_uri with iss and launch', async () => {
    const res = await fetch(`${sandbox.base}/launcher?app=ehr-app&practitioner=dr-test-jansen&patient=pat-een`, { redirect: 'manual' });
    assert.equal(res.status, 302);
    const location = new URL(res.headers.get('location'));
    assert.equal(location.origin + location.pathname, `${APP_ORIGIN}/app/launch`);
    assert.equal(location.searchParams.get('iss'), sandbox.fhirBase);
    assert.ok(location.searchParams.get('launch'));
  });

  test('frame=1 answers the chart page, the app in an iframe at its launch URL', async () => {
    const res = await fetch(`${sandbox.base}/launcher?app=ehr-app&practitioner=dr-test-jansen&patient=pat-een&frame=1`, { redirect: 'manual' });
    assert.equal(res.status, 200);
    const html = await res.text();
    const src = /<iframe title="Burn-out &#60;App&#62;" src="([^"]+)"/.exec(html)?.[1];
    assert.ok(src, html);
    const location = new URL(src.replaceAll('&#38;', '&'));
    assert.equal(location.origin + location.pathname, `${APP_ORIGIN}/app/launch`);
    assert.equal(location.searchParams.get('iss'), sandbox.fhirBase);
    assert.ok(location.searchParams.get('launch'));
  });

  test('the portal button launches as the patient even with a practitioner selected', async () => {
    const browser = new Browser();
    const launchUri = await launchFromEhr(sandbox, browser, {
      app: 'ehr-app', practitioner: 'dr-test-jansen', patient: 'pat-een', portal: '1',
    });
    const { body } = await codeFlow(sandbox, browser, {
      client_id: 'ehr-app', scope: 'launch fhirUser patient/*.rs', launch: launchUri.searchParams.get('launch'),
    });
    assert.equal(body.fhirUser, `${sandbox.fhirBase}/Patient/pat-een`);
  });

  const badLaunches = [
    ['app=no-such-app&patient=pat-een', /Unknown app &#34;no-such-app&#34;/],
    ['app=portal-app&patient=pat-een', /Unknown app/],
    ['app=ehr-app&patient=nobody', /Unknown patient &#34;nobody&#34;/],
    ['app=ehr-app&practitioner=dr-nobody&patient=pat-een', /Unknown practitioner/],
    ['app=ehr-app', /Choose a patient/],
    ['app=ehr-app&patient=%3Cscript%3E', /&#60;script&#62;/],
  ];
  for (const [query, message] of badLaunches) {
    test(`a bad launch is a readable 400: ${query}`, async () => {
      const res = await fetch(`${sandbox.base}/launcher?${query}`, { redirect: 'manual' });
      assert.equal(res.status, 400);
      const html = await res.text();
      assert.match(html, message);
      assert.doesNotMatch(html, /<script>/);
    });
  }
});

describe('token lifetime (started with tokenTtl)', () => {
  let sandbox;
  before(async () => { sandbox = await startSandbox({ tokenTtl: 7 }); });
  after(() => sandbox.close());

  test('sets the lifetime of backend-services and authorization-code tokens alike', async () => {
    const { rs384 } = sandbox.keys;
    const backend = await backendToken(sandbox, 'backend-rs384', await clientAssertion(sandbox, 'backend-rs384', rs384));
    assert.equal(backend.status, 200, JSON.stringify(backend.body));
    const browser = new Browser();
    const user = await codeFlow(sandbox, browser, {
      client_id: 'portal-app', scope: 'openid launch/patient patient/*.rs', login_hint: 'Patient/pat-een',
    });
    assert.equal(user.status, 200, JSON.stringify(user.body));
    for (const { body } of [backend, user]) {
      assert.equal(body.expires_in, 7);
      const claims = jose.decodeJwt(body.access_token);
      assert.equal(claims.exp - claims.iat, 7);
    }
  });

  test('refuses a lifetime that is not a positive whole number of seconds', async () => {
    const options = { issuer: 'http://127.0.0.1:1/auth', fhirBase: 'http://127.0.0.1:1/fhir' };
    await assert.rejects(createAuthServer({ ...options, tokenTtl: 0 }), TypeError);
    await assert.rejects(createAuthServer({ ...options, tokenTtl: 1.5 }), TypeError);
  });
});

describe('EHRs that behave otherwise (discovery, profileClaim, strictScopes)', () => {
  let sandbox;
  before(async () => {
    sandbox = await startSandbox({ discovery: 'no-issuer', profileClaim: true, strictScopes: true });
  });
  after(() => sandbox.close());

  test('a scope outside the registration is refused with invalid_scope, not trimmed', async () => {
    const { challenge } = pkce();
    const callback = await authorize(sandbox, new Browser(), {
      client_id: 'portal-app', scope: 'openid launch/patient patient/*.rs user/Patient.rs',
      login_hint: 'Patient/pat-een', code_challenge: challenge, code_challenge_method: 'S256',
    });
    assert.equal(callback.get('error'), 'invalid_scope');
    assert.match(callback.get('error_description'), /user\/Patient\.rs/);
  });

  test('the id_token names the user in profile, and nothing carries fhirUser', async () => {
    const { status, body } = await codeFlow(sandbox, new Browser(), {
      client_id: 'portal-app', scope: 'openid fhirUser launch/patient patient/*.rs',
      login_hint: 'Patient/pat-een',
    });
    assert.equal(status, 200, JSON.stringify(body));
    const claims = jose.decodeJwt(body.id_token);
    assert.equal(claims.profile, `${sandbox.fhirBase}/Patient/pat-een`);
    assert.equal(claims.fhirUser, undefined);
    assert.equal(body.fhirUser, undefined);
  });

  test('discovery without issuer; metadata-only serves no smart-configuration', async () => {
    assert.equal(sandbox.auth.smartConfiguration().issuer, undefined);
    assert.equal((await fetch(`${sandbox.issuer}/.well-known/smart-configuration`)).status, 200);
    const older = await startSandbox({ discovery: 'metadata-only' });
    try {
      const res = await fetch(`${older.issuer}/.well-known/smart-configuration`);
      assert.equal(res.status, 404);
    } finally {
      await older.close();
    }
    const options = { issuer: 'http://127.0.0.1:1/auth', fhirBase: 'http://127.0.0.1:1/fhir' };
    await assert.rejects(createAuthServer({ ...options, discovery: 'sometimes' }), TypeError);
  });
});

describe('consent screen (started with consent: true)', () => {
  let sandbox;
  before(async () => { sandbox = await startSandbox({ consent: true }); });
  after(() => sandbox.close());

  async function consentPage(browser, challenge) {
    const { res, body } = await browser.follow(authorizeUrl(sandbox, {
      client_id: 'portal-app',
      scope: 'openid launch/patient patient/*.rs',
      login_hint: 'Patient/pat-een',
      code_challenge: challenge,
      code_challenge_method: 'S256',
    }));
    assert.equal(res.status, 200);
    assert.match(body, /Allow access\?/);
    assert.match(body, /patient\/\*\.rs/);
    return new URL(/<form method="post" action="([^"]+)"/.exec(body)[1], sandbox.base);
  }

  function decide(browser, action, decision) {
    return browser.follow(action, APP_ORIGIN, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `decision=${decision}`,
    });
  }

  test('approve issues a code', async () => {
    const browser = new Browser();
    const { verifier, challenge } = pkce();
    const { redirect } = await decide(browser, await consentPage(browser, challenge), 'approve');
    const { status, body } = await token(sandbox, {
      grant_type: 'authorization_code',
      code: redirect.searchParams.get('code'),
      redirect_uri: CALLBACK,
      client_id: 'portal-app',
      code_verifier: verifier,
    });
    assert.equal(status, 200);
    assert.equal(body.patient, 'pat-een');
  });

  test('deny answers access_denied', async () => {
    const browser = new Browser();
    const { redirect } = await decide(browser, await consentPage(browser, pkce().challenge), 'deny');
    assert.equal(redirect.searchParams.get('error'), 'access_denied');
  });
});

describe('SMART scope helpers', () => {
  const table = [
    ['patient/*.rs', 'patient/Observation.rs', true],
    ['patient/*.rs', 'patient/Observation.r', true],
    ['patient/*.read', 'patient/Observation.rs', true],
    ['patient/*.rs', 'patient/Observation.read', true],
    ['patient/*.rs', 'patient/Observation.cruds', false],
    ['patient/*.rs', 'user/Observation.rs', false],
    ['user/Task.cu', 'user/Task.c', true],
    ['user/Task.cu', 'user/CarePlan.c', false],
    ['system/*.*', 'system/Bundle.cruds', true],
    ['patient/*.rs', 'patient/Observation.', false],
  ];
  for (const [registered, requested, expected] of table) {
    test(`${registered} ${expected ? 'covers' : 'does not cover'} ${requested}`, () => {
      assert.equal(scopeCovers(registered, requested), expected);
    });
  }

  test('v1 permissions map to v2 letters', () => {
    assert.deepEqual([...parseSmartScope('user/Task.write').permissions], ['c', 'u', 'd']);
    assert.equal(parseSmartScope('openid'), null);
  });
});

describe('credentials in a data directory', () => {
  let dir;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'sandbox-credentials-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('generated client secrets and keys are the same after a restart', async () => {
    const clients = [
      { client_id: 'secret-client', grant_types: ['client_credentials'], scope: 'system/*.rs' },
      {
        client_id: 'key-client',
        token_endpoint_auth_method: 'private_key_jwt',
        grant_types: ['client_credentials'],
        scope: 'system/*.rs',
      },
    ];
    const options = { issuer: 'http://127.0.0.1:1/auth', fhirBase: 'http://127.0.0.1:1/fhir', clients };
    const firstCredentials = new Credentials(dir);
    const first = await createAuthServer({ ...options, credentials: firstCredentials });
    firstCredentials.save();
    assert.equal(statSync(join(dir, 'credentials.json')).mode & 0o777, 0o600);
    const saved = new Credentials(dir).values;
    assert.ok(saved['auth/signing-key/RS256'].privateJwk.d); // reused: see main.test.mjs
    const second = await createAuthServer({ ...options, credentials: new Credentials(dir) });
    assert.deepEqual(second.clients, first.clients);
    const secret = (server) => server.clients.find((c) => c.client_id === 'secret-client').client_secret;
    assert.ok(secret(first));
    // Without a directory every start makes new ones.
    const fresh = await createAuthServer(options);
    assert.notEqual(secret(fresh), secret(first));
  });

  test('one sandbox per directory; a lock left by a dead process is taken over', () => {
    const lockDir = join(dir, 'locked');
    const release = lockDataDir(lockDir);
    assert.equal(readFileSync(join(lockDir, 'lock'), 'utf8').trim(), String(process.pid));
    release();
    appendFileSync(join(lockDir, 'lock'), `${process.ppid}\n`); // a live process that is not us
    assert.throws(() => lockDataDir(lockDir), /in use by another sandbox/);
    rmSync(join(lockDir, 'lock'));
    appendFileSync(join(lockDir, 'lock'), '999999999\n'); // no such process
    lockDataDir(lockDir)();
  });
});
