// The sandbox as a Koppeltaal 2.0 domain (startSandbox({koppeltaal: true})): backend tokens
// with the app's role, the portal's Tasks and HTI launch forms, and the HTI launch on
// /authorize and /token. A real sandbox in this process; fetch with manual redirects and a
// small cookie jar stand in for the browser.
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import * as jose from 'jose';

import {
  CONNECTION_TYPE_SYSTEM, ENDPOINT_EXTENSION_URL, INSTANTIATES_URL, KOPPELTAAL_ROLES,
  PAYLOAD_TYPE_SYSTEM, PUBLISHER_ID_URL, RESOURCE_ORIGIN_URL, profileUrl,
} from '../src/koppeltaal.mjs';
import { startSandbox } from '../src/main.mjs';
import { PORTAL_TASK_SYSTEM } from '../src/portal.mjs';

const APP = 'http://127.0.0.1:9'; // never contacted: redirects and form actions are read, not followed
const CALLBACK = `${APP}/koppeltaal/callback`;
const LAUNCH_URL = `${APP}/koppeltaal/launch`;
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

async function keyFor(alg, kid) {
  const { publicKey, privateKey } = await jose.generateKeyPair(alg, { extractable: true });
  return { alg, kid, privateKey, publicJwk: { ...(await jose.exportJWK(publicKey)), alg, kid, use: 'sig' } };
}

async function importPrivate(jwk) {
  return { alg: jwk.alg, kid: jwk.kid, privateKey: await jose.importJWK(jwk, jwk.alg) };
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
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';').map((part) => part.trim());
      const name = pair.slice(0, pair.indexOf('='));
      const value = pair.slice(pair.indexOf('=') + 1);
      const path = attributes.find((a) => a.toLowerCase().startsWith('path='))?.split('=')[1] ?? '/';
      if (value === '') this.#cookies.delete(`${name}|${path}`);
      else this.#cookies.set(`${name}|${path}`, { name, value, path });
    }
    return res;
  }

  /** Follow redirects until one leaves for the app (returned) or a page answers. */
  async follow(url) {
    let current = new URL(url);
    for (let hop = 0; hop < 10; hop += 1) {
      const res = await this.fetch(current);
      const location = res.headers.get('location');
      if (res.status < 300 || res.status >= 400 || !location) {
        return { res, body: await res.text() };
      }
      await res.arrayBuffer();
      current = new URL(location, current);
      if (current.origin === APP) {
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

async function clientAssertion(tokenUrl, clientId, key, { jti = randomUUID(), aud = tokenUrl, kid = key.kid } = {}) {
  const now = Math.floor(Date.now() / 1000);
  return new jose.SignJWT({})
    .setProtectedHeader({ alg: key.alg, ...(kid ? { kid } : {}), typ: 'JWT' })
    .setIssuer(clientId)
    .setSubject(clientId)
    .setAudience(aud)
    .setJti(jti)
    .setIssuedAt(now)
    .setExpirationTime(now + 240)
    .sign(key.privateKey);
}

async function postForm(url, form) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form),
  });
  return { status: res.status, body: await res.json() };
}

function backendToken(ctx, assertion, scope = 'system/*.cruds') {
  return postForm(ctx.tokenUrl, {
    grant_type: 'client_credentials', scope, client_assertion_type: ASSERTION_TYPE, client_assertion: assertion,
  });
}

async function fhir(ctx, token, method, path, resource) {
  const res = await fetch(`${ctx.info.fhir_base}/${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      accept: 'application/fhir+json',
      ...(resource ? { 'content-type': 'application/fhir+json' } : {}),
    },
    body: resource ? JSON.stringify(resource) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** Publish a module as fhir-burnout: a KT2_Endpoint and a KT2_ActivityDefinition using it. */
async function publishModule(ctx, token) {
  const endpoint = await fhir(ctx, token, 'POST', 'Endpoint', {
    resourceType: 'Endpoint',
    meta: { profile: [profileUrl('Endpoint')] },
    status: 'active',
    name: 'fhir-burnout launch',
    connectionType: { system: CONNECTION_TYPE_SYSTEM, code: 'hti-smart-on-fhir' },
    payloadType: [{ coding: [{ system: PAYLOAD_TYPE_SYSTEM, code: 'any' }] }],
    address: LAUNCH_URL,
  });
  assert.equal(endpoint.status, 201, JSON.stringify(endpoint.body));
  const definition = await fhir(ctx, token, 'POST', 'ActivityDefinition', {
    resourceType: 'ActivityDefinition',
    meta: { profile: [profileUrl('ActivityDefinition')] },
    extension: [
      { url: ENDPOINT_EXTENSION_URL, valueReference: { reference: `Endpoint/${endpoint.body.id}` } },
      { url: PUBLISHER_ID_URL, valueId: 'fhir-burnout' },
    ],
    url: `http://fhir-burnout.example/fhir/ActivityDefinition/test-${randomUUID()}`,
    title: 'Lichaamssignalen herkennen (test)',
    status: 'active',
  });
  assert.equal(definition.status, 201, JSON.stringify(definition.body));
  return definition.body;
}

async function portalTask(ctx, input) {
  const res = await fetch(`${ctx.info.portal}/tasks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(input),
  });
  return { status: res.status, body: await res.json() };
}

/** GET the portal's launch page; returns the form's action and fields. */
async function launchForm(ctx, query) {
  const res = await fetch(`${ctx.info.portal}/launch?${new URLSearchParams(query)}`);
  const html = await res.text();
  assert.equal(res.status, 200, html);
  const form = /<form[^>]*method="post"[^>]*action="([^"]+)"/.exec(html);
  const field = (name) => new RegExp(`name="${name}" value="([^"]*)"`).exec(html)?.[1];
  assert.ok(form, html);
  assert.match(html, /\.submit\(\)/, 'the form submits itself');
  return { action: form[1], launch: field('launch'), iss: field('iss') };
}

function authorizeUrl(ctx, params) {
  return `${ctx.info.issuer}/authorize?${new URLSearchParams({
    response_type: 'code',
    client_id: 'fhir-burnout',
    redirect_uri: CALLBACK,
    scope: 'launch openid fhirUser',
    aud: ctx.info.fhir_base,
    ...params,
  })}`;
}

/**
 * The module's side of an HTI launch: authorize (PKCE, state, and a nonce, as our module sends
 * one); the callback's parameters.
 */
async function authorizeLaunch(ctx, launch, { state = randomUUID(), challenge, nonce = randomUUID() } = {}) {
  const browser = new Browser();
  const { redirect, res, body } = await browser.follow(authorizeUrl(ctx, {
    launch, state, nonce, code_challenge: challenge ?? pkce().challenge, code_challenge_method: 'S256',
  }));
  assert.ok(redirect, `expected a redirect to the app, got ${res?.status}: ${body}`);
  assert.equal(redirect.origin + redirect.pathname, CALLBACK);
  return redirect.searchParams;
}

const BAD_LAUNCH = 'Bad Request, invalid launch token';
const BAD_AUDIENCE = 'Bad Request, assertion failed: Invalid audience';
const BAD_SCOPE = 'Bad Request, invalid scope';

/**
 * The module's authorization request for `launch` (with `params` changed; undefined leaves one
 * out) where the auth service answers with a page instead of a redirect to the module.
 */
async function authorizeRefused(ctx, launch, params = {}) {
  const query = {
    launch, state: randomUUID(), nonce: randomUUID(), code_challenge: pkce().challenge,
    code_challenge_method: 'S256', ...params,
  };
  const url = new URL(authorizeUrl(ctx, {}));
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined) url.searchParams.delete(key);
    else url.searchParams.set(key, value);
  }
  if (params.aud === undefined && 'aud' in params) url.searchParams.delete('aud');
  const res = await fetch(url, { redirect: 'manual' });
  return {
    status: res.status, location: res.headers.get('location'), type: res.headers.get('content-type'),
    body: await res.text(),
  };
}

/** The reference's refusal: 400, its one-line text as the whole body, no redirect. */
function assertReferenceRefusal(refused, body) {
  assert.equal(refused.status, 400, refused.body);
  assert.equal(refused.location, null, 'no redirect to the module');
  assert.equal(refused.type, 'text/html; charset=utf-8');
  assert.equal(refused.body, body);
}

async function exchangeCode(ctx, code, verifier) {
  return postForm(ctx.tokenUrl, {
    grant_type: 'authorization_code',
    code,
    redirect_uri: CALLBACK,
    code_verifier: verifier,
    client_assertion_type: ASSERTION_TYPE,
    client_assertion: await clientAssertion(ctx.tokenUrl, 'fhir-burnout', ctx.moduleKey),
  });
}

/** Sign a launch token as the portal would, with `claims` changed (for the refusals). */
async function portalLaunchToken(ctx, claims, key = ctx.portalKey) {
  const now = Math.floor(Date.now() / 1000);
  return new jose.SignJWT({
    iss: 'portal',
    aud: 'Device/fhir-burnout',
    sub: `Patient/${ctx.patient}`,
    resource: `Task/${ctx.task.id}`,
    definition: `ActivityDefinition/${ctx.definition.id}`,
    patient: `Patient/${ctx.patient}`,
    jti: randomUUID(),
    iat: now,
    exp: now + 300,
    ...claims,
  }).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' }).sign(key.privateKey);
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

describe('Koppeltaal domain: auth service and portal', () => {
  const ctx = {};

  before(async () => {
    ctx.dir = mkdtempSync(join(tmpdir(), 'kt-auth-test-'));
    ctx.rs384 = await keyFor('RS384', 'extra-rs384');
    ctx.es384 = await keyFor('ES384', 'extra-es384');
    const extra = (clientId, key) => ({
      client_id: clientId,
      token_endpoint_auth_method: 'private_key_jwt',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      jwks: { keys: [key.publicJwk] },
      scope: 'system/Patient.rs system/Practitioner.rs',
    });
    const config = join(ctx.dir, 'clients.json');
    writeFileSync(config, JSON.stringify({
      clients: [extra('module-rs384', ctx.rs384), extra('module-es384', ctx.es384)],
    }));
    ctx.sandbox = await startSandbox({ koppeltaal: true, appUrl: APP, clientConfig: config });
    ctx.info = ctx.sandbox.info;
    ctx.tokenUrl = `${ctx.info.issuer}/token`;
    const privateKey = (id) => ctx.info.clients.find((c) => c.client_id === id).private_keys[0];
    ctx.moduleKey = await importPrivate(privateKey('fhir-burnout'));
    ctx.portalKey = await importPrivate(privateKey('portal'));
    const { body } = await backendToken(ctx, await clientAssertion(ctx.tokenUrl, 'fhir-burnout', ctx.moduleKey));
    ctx.moduleToken = body.access_token;
    ctx.definition = await publishModule(ctx, ctx.moduleToken);
    ctx.patient = ctx.info.seed.patients[0].id;
    ctx.otherPatient = ctx.info.seed.patients[1].id;
    ctx.practitioner = ctx.info.seed.practitioners[0].id;
    const created = await portalTask(ctx, {
      patient: ctx.patient, practitioner: ctx.practitioner, definition: ctx.definition.id,
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    ctx.task = created.body;
  });

  after(async () => {
    await ctx.sandbox?.close();
    rmSync(ctx.dir, { recursive: true, force: true });
  });

  // -- discovery and backend services ---------------------------------------------------------

  test('SMART configuration at the FHIR base lists what a Koppeltaal module needs', async () => {
    const smart = await (await fetch(`${ctx.info.fhir_base}/.well-known/smart-configuration`)).json();
    assert.equal(smart.token_endpoint, ctx.tokenUrl);
    assert.equal(smart.authorization_endpoint, `${ctx.info.issuer}/authorize`);
    assert.equal(smart.jwks_uri, `${ctx.info.issuer}/jwks`);
    assert.deepEqual(smart.token_endpoint_auth_methods_supported, ['private_key_jwt']);
    assert.deepEqual(smart.code_challenge_methods_supported, ['S256']);
    for (const alg of ['RS512', 'RS384', 'ES384']) {
      assert.ok(smart.token_endpoint_auth_signing_alg_values_supported.includes(alg), alg);
    }
    assert.ok(!smart.grant_types_supported.includes('refresh_token'));
    // Neither the reference's smart-configuration (FSRV application.yaml) nor AUTH's names
    // id_token signing algorithms; AUTH signs RS512 (the id_token test below).
    assert.equal(smart.id_token_signing_alg_values_supported, undefined);
  });

  test('the JWKS publishes the RS512 key that signs id_tokens and backend access tokens', async () => {
    const { keys } = await (await fetch(`${ctx.info.issuer}/jwks`)).json();
    const [key] = keys.filter((k) => k.alg === 'RS512');
    assert.ok(key, JSON.stringify(keys));
    assert.equal(key.kid, jose.decodeProtectedHeader(ctx.moduleToken).kid);
    assert.equal(jose.decodeProtectedHeader(ctx.moduleToken).alg, 'RS512');
    await jose.jwtVerify(ctx.moduleToken, jose.createLocalJWKSet({ keys }), { algorithms: ['RS512'] });
  });

  for (const [alg, clientId, keyOf, role] of [
    ['RS512', 'fhir-burnout', (c) => c.moduleKey, KOPPELTAAL_ROLES['fhir-burnout']],
    ['RS384', 'module-rs384', (c) => c.rs384, 'system/Patient.rs system/Practitioner.rs'],
    ['ES384', 'module-es384', (c) => c.es384, 'system/Patient.rs system/Practitioner.rs'],
  ]) {
    test(`client_credentials with a ${alg} assertion: the role's scope, 5 minutes, no refresh token`, async () => {
      const assertion = await clientAssertion(ctx.tokenUrl, clientId, keyOf(ctx));
      const { status, body } = await backendToken(ctx, assertion, 'system/*.cruds user/*.cruds');
      assert.equal(status, 200, JSON.stringify(body));
      assert.equal(body.token_type, 'Bearer');
      assert.equal(body.scope, role, 'the scope asked for is ignored');
      assert.equal(body.expires_in, 300);
      assert.equal(body.refresh_token, undefined);
      const claims = jose.decodeJwt(body.access_token);
      assert.equal(claims.client_id, clientId);
      assert.equal(claims.scope, role);
      const read = await fhir(ctx, body.access_token, 'GET', `Patient/${ctx.patient}`);
      assert.equal(read.status, 200, 'the token works on the FHIR service');
    });
  }

  test('a client_credentials request that asks for nothing still gets the role', async () => {
    const assertion = await clientAssertion(ctx.tokenUrl, 'fhir-burnout', ctx.moduleKey);
    const { status, body } = await postForm(ctx.tokenUrl, {
      grant_type: 'client_credentials', client_assertion_type: ASSERTION_TYPE, client_assertion: assertion,
    });
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.scope, KOPPELTAAL_ROLES['fhir-burnout']);
  });

  test('a replayed client assertion is refused', async () => {
    const assertion = await clientAssertion(ctx.tokenUrl, 'fhir-burnout', ctx.moduleKey);
    assert.equal((await backendToken(ctx, assertion)).status, 200);
    const again = await backendToken(ctx, assertion);
    assert.equal(again.status, 401);
    assert.equal(again.body.error, 'invalid_client');
  });

  test('an assertion without kid, or for another audience than the token URL, is refused', async () => {
    const noKid = await backendToken(ctx, await clientAssertion(ctx.tokenUrl, 'fhir-burnout', ctx.moduleKey, { kid: null }));
    assert.equal(noKid.status, 401);
    assert.equal(noKid.body.error, 'invalid_client');
    const issuerAud = await backendToken(ctx, await clientAssertion(ctx.tokenUrl, 'fhir-burnout', ctx.moduleKey, { aud: ctx.info.issuer }));
    assert.equal(issuerAud.status, 401);
    assert.equal(issuerAud.body.error, 'invalid_client');
  });

  test('an assertion signed with another key is refused', async () => {
    const stranger = await keyFor('RS512', 'fhir-burnout-rs512');
    const { status, body } = await backendToken(ctx, await clientAssertion(ctx.tokenUrl, 'fhir-burnout', stranger));
    assert.equal(status, 401);
    assert.equal(body.error, 'invalid_client');
  });

  // -- the portal -----------------------------------------------------------------------------

  test('the portal creates a KT2_Task as Device/portal', () => {
    const task = ctx.task;
    assert.ok(task.id);
    assert.deepEqual(task.meta.profile, [profileUrl('Task')]);
    assert.equal(task.status, 'ready');
    assert.equal(task.intent, 'order');
    assert.equal(task.priority, 'routine');
    assert.equal(task.for.reference, `Patient/${ctx.patient}`);
    assert.equal(task.owner.reference, `Patient/${ctx.patient}`);
    assert.equal(task.requester.reference, `Practitioner/${ctx.practitioner}`);
    assert.equal(task.identifier[0].system, PORTAL_TASK_SYSTEM);
    assert.match(task.identifier[0].value, /^[0-9a-f-]{36}$/);
    const instantiates = task.extension.find((e) => e.url === INSTANTIATES_URL);
    assert.equal(instantiates.valueReference.reference, `ActivityDefinition/${ctx.definition.id}`);
    const origin = task.extension.find((e) => e.url === RESOURCE_ORIGIN_URL);
    assert.equal(origin.valueReference.reference, 'Device/portal');
  });

  test('the portal refuses a Task for an unknown patient with an OperationOutcome', async () => {
    const { status, body } = await portalTask(ctx, {
      patient: 'no-such-patient', practitioner: ctx.practitioner, definition: ctx.definition.id,
    });
    assert.equal(status, 404);
    assert.equal(body.resourceType, 'OperationOutcome');
    assert.match(body.issue[0].diagnostics, /Patient\/no-such-patient/);
  });

  test('the portal page offers our module and the Task with both launch buttons', async () => {
    const res = await fetch(ctx.info.portal);
    const html = await res.text();
    assert.equal(res.status, 200);
    assert.match(html, /<html lang="nl">/);
    assert.match(html, /Toewijzen \/ Assign/);
    assert.ok(html.includes(`value="${ctx.definition.id}"`), 'the module is offered');
    assert.ok(html.includes(`Task/${ctx.task.id}`), 'the Task is listed');
    assert.match(html, /Start als cliënt/);
    assert.match(html, /Open als behandelaar/);
  });

  test('assigning in the portal page creates a Task and shows it', async () => {
    const res = await fetch(`${ctx.info.portal}/assign`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        patient: ctx.otherPatient, practitioner: ctx.practitioner, definition: ctx.definition.id,
      }),
      redirect: 'manual',
    });
    assert.equal(res.status, 303);
    const id = new URL(res.headers.get('location'), ctx.info.portal).searchParams.get('created');
    const task = await fhir(ctx, ctx.moduleToken, 'GET', `Task/${id}`);
    assert.equal(task.status, 200);
    assert.equal(task.body.for.reference, `Patient/${ctx.otherPatient}`);
    const page = await (await fetch(`${ctx.info.portal}/?created=${id}`)).text();
    assert.ok(page.includes(`Task/${id}`));
  });

  test('the launch form posts an HTI token and iss to the module Endpoint', async () => {
    const form = await launchForm(ctx, { task: ctx.task.id, as: 'patient' });
    assert.equal(form.action, LAUNCH_URL);
    assert.equal(form.iss, ctx.info.fhir_base);
    const header = jose.decodeProtectedHeader(form.launch);
    assert.deepEqual(header, { alg: 'RS512', kid: 'portal-rs512', typ: 'JWT' });
    const claims = await jose.jwtVerify(form.launch, jose.createLocalJWKSet({
      keys: [ctx.info.clients.find((c) => c.client_id === 'portal').private_keys[0]]
        .map(({ kty, n, e, alg, kid }) => ({ kty, n, e, alg, kid })),
    })).then((r) => r.payload);
    assert.equal(claims.iss, 'portal');
    assert.equal(claims.aud, 'Device/fhir-burnout');
    assert.equal(claims.sub, `Patient/${ctx.patient}`);
    assert.equal(claims.patient, `Patient/${ctx.patient}`);
    assert.equal(claims.resource, `Task/${ctx.task.id}`);
    assert.equal(claims.definition, `ActivityDefinition/${ctx.definition.id}`);
    assert.equal(claims.exp - claims.iat, 300);
    assert.match(claims.jti, /^[0-9a-f-]{36}$/);
    assert.equal(claims.intent, undefined);
  });

  test('the launch form as practitioner, and its test knobs', async () => {
    const form = await launchForm(ctx, {
      task: ctx.task.id, as: 'practitioner', practitioner: ctx.practitioner,
      patient: ctx.otherPatient, definition: 'other-definition', jti: 'fixed-jti-knob',
    });
    const claims = jose.decodeJwt(form.launch);
    assert.equal(claims.sub, `Practitioner/${ctx.practitioner}`);
    assert.equal(claims.intent, 'plan');
    assert.equal(claims.patient, `Patient/${ctx.otherPatient}`);
    assert.equal(claims.definition, 'ActivityDefinition/other-definition');
    assert.equal(claims.jti, 'fixed-jti-knob');
    const expired = jose.decodeJwt((await launchForm(ctx, { task: ctx.task.id, expired: '1' })).launch);
    assert.ok(expired.exp < Date.now() / 1000);
  });

  test('a launch of an unknown Task is a readable 404 page', async () => {
    const res = await fetch(`${ctx.info.portal}/launch?task=no-such-task&as=patient`);
    assert.equal(res.status, 404);
    assert.match(await res.text(), /Onbekende taak \/ Unknown task/);
  });

  // -- the HTI launch --------------------------------------------------------------------------

  test('HTI launch: authorize signs in sub, the code gives NOOP, an id_token and the context', async () => {
    const form = await launchForm(ctx, { task: ctx.task.id, as: 'patient' });
    const { verifier, challenge } = pkce();
    const state = randomUUID();
    const callback = await authorizeLaunch(ctx, form.launch, { state, challenge });
    assert.equal(callback.get('error'), null, callback.get('error_description'));
    assert.equal(callback.get('state'), state);
    const { status, body } = await exchangeCode(ctx, callback.get('code'), verifier);
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.access_token, 'NOOP');
    assert.equal(body.token_type, 'Bearer');
    assert.equal(body.expires_in, 300);
    assert.equal(body.scope, 'launch openid fhirUser');
    assert.equal(body.refresh_token, undefined);
    assert.equal(body.resource, `Task/${ctx.task.id}`);
    assert.equal(body.definition, `ActivityDefinition/${ctx.definition.id}`);
    assert.equal(body.patient, `Patient/${ctx.patient}`);
    assert.equal(body.sub, `Patient/${ctx.patient}`);
    assert.deepEqual(
      Object.keys(body).sort(),
      ['access_token', 'definition', 'expires_in', 'id_token', 'patient', 'resource', 'scope', 'sub', 'token_type'],
    );
    const jwks = jose.createRemoteJWKSet(new URL(`${ctx.info.issuer}/jwks`));
    // As the reference auth service signs it: its URL root (a trailing slash) as issuer, the
    // HTI token's sub, the client as aud and azp, no fhirUser.
    // RS512, as AUTH's TokenService._get_jwt_token signs every JWT (e6383ae `service.py`).
    const { payload, protectedHeader } = await jose.jwtVerify(body.id_token, jwks, {
      issuer: `${ctx.info.issuer}/`, audience: 'fhir-burnout', algorithms: ['RS512'],
    });
    assert.equal(protectedHeader.alg, 'RS512');
    assert.equal(payload.sub, `Patient/${ctx.patient}`);
    assert.equal(payload.azp, 'fhir-burnout');
    assert.equal(payload.fhirUser, undefined);
    const noop = await fhir(ctx, 'NOOP', 'GET', `Task/${ctx.task.id}`);
    assert.equal(noop.status, 401, 'NOOP is no FHIR token');
  });

  test('HTI launch as practitioner: sub is the practitioner, intent is passed on', async () => {
    const form = await launchForm(ctx, { task: ctx.task.id, as: 'practitioner' });
    const { verifier, challenge } = pkce();
    const callback = await authorizeLaunch(ctx, form.launch, { challenge });
    const { body } = await exchangeCode(ctx, callback.get('code'), verifier);
    assert.equal(body.sub, `Practitioner/${ctx.practitioner}`);
    assert.equal(body.patient, `Patient/${ctx.patient}`);
    assert.equal(body.intent, 'plan');
    assert.equal(jose.decodeJwt(body.id_token).sub, `Practitioner/${ctx.practitioner}`);
  });

  test("HTI launch: the id_token carries a fresh nonce of its own, never the module's", async () => {
    const nonces = [];
    for (const sent of [randomUUID(), randomUUID()]) {
      const form = await launchForm(ctx, { task: ctx.task.id, as: 'patient' });
      const { verifier, challenge } = pkce();
      const callback = await authorizeLaunch(ctx, form.launch, { challenge, nonce: sent });
      const { body } = await exchangeCode(ctx, callback.get('code'), verifier);
      const { nonce, jti } = jose.decodeJwt(body.id_token);
      assert.equal(typeof nonce, 'string');
      assert.notEqual(nonce, sent, 'the reference never echoes the nonce it was sent');
      assert.ok(jti);
      nonces.push(nonce);
    }
    assert.notEqual(nonces[0], nonces[1], 'a new nonce in every id_token');
  });

  test('HTI launch by a RelatedPerson: sub is the RelatedPerson, in the context and the id_token', async () => {
    const sub = `RelatedPerson/naaste-${randomUUID()}`;
    const { verifier, challenge } = pkce();
    const callback = await authorizeLaunch(ctx, await portalLaunchToken(ctx, { sub }), { challenge });
    assert.equal(callback.get('error'), null, callback.get('error_description'));
    const { status, body } = await exchangeCode(ctx, callback.get('code'), verifier);
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.sub, sub);
    assert.equal(body.patient, `Patient/${ctx.patient}`);
    assert.equal(jose.decodeJwt(body.id_token).sub, sub);
  });

  test('a code is single use and needs its PKCE verifier', async () => {
    const form = await launchForm(ctx, { task: ctx.task.id });
    const { verifier, challenge } = pkce();
    const callback = await authorizeLaunch(ctx, form.launch, { challenge });
    const wrong = await exchangeCode(ctx, callback.get('code'), pkce().verifier);
    assert.equal(wrong.body.error, 'invalid_grant');
    const right = await exchangeCode(ctx, callback.get('code'), verifier);
    assert.equal(right.status, 200, JSON.stringify(right.body));
    const again = await exchangeCode(ctx, callback.get('code'), verifier);
    assert.equal(again.body.error, 'invalid_grant');
  });

  // The reference auth service (AUTH e6383ae `oauth_server/views.py`
  // `handle_authorize_request`) answers a launch it refuses with a plain 400 at /authorize:
  // the person's browser stays there; nothing goes back to the module's redirect_uri.
  for (const [name, makeLaunch] of [
    ['expired', (c) => launchForm(c, { task: c.task.id, expired: '1' }).then((f) => f.launch)],
    ['for another module (aud)', (c) => portalLaunchToken(c, { aud: 'Device/other-module' })],
    ['signed with another key', async (c) => portalLaunchToken(c, {}, await keyFor('RS512', 'portal-rs512'))],
    ['not yet valid (nbf)', (c) => portalLaunchToken(c, { nbf: Math.floor(Date.now() / 1000) + 600 })],
    ['from an unknown launcher', async (c) => portalLaunchToken(c, { iss: 'stranger' })],
    ['missing its Task', (c) => portalLaunchToken(c, { resource: undefined })],
    ['missing its jti', (c) => portalLaunchToken(c, { jti: undefined })],
    ['missing its sub', (c) => portalLaunchToken(c, { sub: undefined })],
    ['not a JWT', async () => 'launch-1234'],
  ]) {
    test(`a launch token ${name} is a plain 400 at /authorize, as the reference answers`, async () => {
      assertReferenceRefusal(await authorizeRefused(ctx, await makeLaunch(ctx)), BAD_LAUNCH);
    });
  }

  test('a replayed launch token is a plain 400 the second time', async () => {
    const form = await launchForm(ctx, { task: ctx.task.id, jti: `replay-${randomUUID()}` });
    const first = await authorizeLaunch(ctx, form.launch);
    assert.ok(first.get('code'), first.get('error_description'));
    assertReferenceRefusal(await authorizeRefused(ctx, form.launch), BAD_LAUNCH);
  });

  test('the same fixed jti in a new token is a replay too', async () => {
    const jti = `knob-${randomUUID()}`;
    const first = await authorizeLaunch(ctx, (await launchForm(ctx, { task: ctx.task.id, jti })).launch);
    assert.ok(first.get('code'));
    const again = (await launchForm(ctx, { task: ctx.task.id, jti })).launch;
    assertReferenceRefusal(await authorizeRefused(ctx, again), BAD_LAUNCH);
  });

  test('authorize without a launch token is a plain 400', async () => {
    assertReferenceRefusal(await authorizeRefused(ctx, undefined), BAD_LAUNCH);
  });

  test('authorize for another audience than the FHIR base, or none, is a plain 400', async () => {
    for (const aud of ['http://127.0.0.1:9/other-fhir', undefined]) {
      const launch = await portalLaunchToken(ctx, {});
      assertReferenceRefusal(await authorizeRefused(ctx, launch, { aud }), BAD_AUDIENCE);
      // The reference checks aud before the token: the launch token is still good afterwards.
      assert.ok((await authorizeLaunch(ctx, launch)).get('code'), String(aud));
    }
  });

  test('authorize with another scope than launch openid fhirUser is a plain 400', async () => {
    for (const scope of ['launch openid', 'launch openid fhirUser system/*.cruds']) {
      const launch = await portalLaunchToken(ctx, {});
      assertReferenceRefusal(await authorizeRefused(ctx, launch, { scope }), BAD_SCOPE);
    }
  });

  test("what oidc-provider itself refuses at /authorize is a plain 400 too, never the module's redirect_uri", async () => {
    const launch = await portalLaunchToken(ctx, {});
    const refused = await authorizeRefused(ctx, launch, { code_challenge: undefined, code_challenge_method: undefined });
    assert.equal(refused.status, 400);
    assert.equal(refused.location, null);
    assert.match(refused.body, /^Bad Request, /);
  });
});
