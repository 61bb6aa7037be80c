/**
 * The sandbox EHR's SMART App Launch 2.2 authorization server.
 *
 * oidc-provider 9 (OpenID certified) does the protocol work: authorization code with PKCE,
 * refresh tokens, client authentication, signed id_tokens and JWT access tokens. This module
 * adds only the glue SANDBOX.md lists: password-less interactions that sign the user in from the
 * launch context, SMART scopes and launch context in the token response, a per-client scope
 * policy, SMART Backend Services rules and the SMART discovery document.
 *
 * Mounted at the issuer path (e.g. /auth) of the sandbox's one HTTP server:
 *   {issuer}/authorize (GET and POST), /token, /jwks, /token/revocation   oidc-provider
 *   {issuer}/.well-known/openid-configuration                   oidc-provider
 *   {issuer}/.well-known/smart-configuration                    this module
 *   {issuer}/interaction/:uid[/login|/consent]                  this module (login, consent)
 *   {issuer}/smart-style.json                                   this module (default style)
 *
 * Variants that play EHRs the app must also work with (each off by default):
 *   discovery: 'metadata-only'  no smart-configuration anywhere: the endpoints only in the FHIR
 *                               server's CapabilityStatement (oauth-uris), as older EHRs do
 *   discovery: 'no-issuer'      a smart-configuration without `issuer`
 *   profileClaim: true          id_tokens name the user in a v1 `profile` claim, no `fhirUser`
 *                               (neither in the id_token nor in the token response)
 *   strictScopes: true          an authorization request asking a scope outside the client's
 *                               registration is refused (invalid_scope) instead of trimmed
 *
 * With `koppeltaal: true` it is a Koppeltaal 2.0 domain's auth service instead (the parts in
 * koppeltaal-auth.mjs): client_credentials grant each app its role, /authorize takes an HTI
 * launch token as `launch`, and the code exchange answers a NOOP access token with the
 * launch context.
 */
import { randomBytes, randomUUID } from 'node:crypto';

import * as jose from 'jose';
import Provider, { errors, interactionPolicy } from 'oidc-provider';

import { Credentials } from './data-dir.mjs';
import {
  HtiLaunchError, KT_AUTHORIZE_REFUSALS, KT_CLIENT_AUTH_ALGS, KT_SIGNING_ALG, KT_TOKEN_TTL,
  createHtiVerifier, htiContext, htiTokenResponse, isLaunchScope, koppeltaalSmartConfiguration,
  referenceIdToken, roleScope,
} from './koppeltaal-auth.mjs';

const { Check, base: basePolicy } = interactionPolicy;

// ---------------------------------------------------------------------------------------------
// SMART scope vocabulary (SMART App Launch 2.2, "Scopes and Launch Context")
// ---------------------------------------------------------------------------------------------

/** OIDC-style scopes oidc-provider knows as "static" scopes (everything else is a resource scope). */
export const OIDC_SCOPES = Object.freeze([
  'openid', 'fhirUser', 'offline_access', 'launch', 'launch/patient', 'launch/encounter',
]);

/** R4 resource types that SMART resource scopes may name; `*` is every type. */
export const RESOURCE_TYPES = Object.freeze([
  '*', 'Patient', 'Practitioner', 'PractitionerRole', 'Organization', 'Encounter', 'Observation',
  'Condition', 'Questionnaire', 'QuestionnaireResponse', 'Task', 'CarePlan', 'RequestGroup',
  'PlanDefinition', 'ActivityDefinition', 'ServiceRequest', 'Consent', 'DocumentReference',
  'Communication', 'CommunicationRequest', 'Subscription', 'Bundle', 'AuditEvent', 'Endpoint',
  'Binary', 'Provenance', 'Library', 'ValueSet', 'CodeSystem',
]);

const CONTEXTS = ['patient', 'user', 'system'];
const V1_PERMISSIONS = { read: 'rs', write: 'cud', '*': 'cruds' };
const SMART_SCOPE = /^(patient|user|system)\/(\*|[A-Z][A-Za-z]+)\.(read|write|\*|c?r?u?d?s?)$/;

/** Every non-empty subsequence of "cruds", in order: c, cr, crud, rs, cruds, ... (31 strings). */
function v2Permissions() {
  const letters = 'cruds';
  const out = [];
  for (let mask = 1; mask < 1 << letters.length; mask += 1) {
    out.push([...letters].filter((_, i) => mask & (1 << (letters.length - 1 - i))).join(''));
  }
  return out;
}

/**
 * All SMART resource scopes the server knows. oidc-provider matches resource scopes exactly and
 * silently drops unknown ones, so every allowed combination must be listed.
 */
export const SMART_SCOPES = Object.freeze(CONTEXTS.flatMap((context) => RESOURCE_TYPES.flatMap(
  (type) => [...v2Permissions(), ...Object.keys(V1_PERMISSIONS)].map((p) => `${context}/${type}.${p}`),
)));

/** Parse `patient/Observation.rs` into {context, type, permissions: Set('r','s')}, or null. */
export function parseSmartScope(scope) {
  const match = SMART_SCOPE.exec(scope);
  if (!match || match[3] === '') {
    return null;
  }
  const [, context, type, permission] = match;
  return { context, type, permissions: new Set(V1_PERMISSIONS[permission] ?? permission) };
}

/** Whether a registered scope covers a requested one (same context, type or `*`, fewer rights). */
export function scopeCovers(registered, requested) {
  const have = parseSmartScope(registered);
  const want = parseSmartScope(requested);
  return Boolean(have && want)
    && have.context === want.context
    && (have.type === '*' || have.type === want.type)
    && [...want.permissions].every((p) => have.permissions.has(p));
}

function splitScopes(scope) {
  return typeof scope === 'string' ? scope.split(' ').filter(Boolean) : [];
}

// ---------------------------------------------------------------------------------------------
// Clients: resolution (generated secrets and keys) and the per-client scope policy
// ---------------------------------------------------------------------------------------------

const SMART_CLIENT_FIELDS = ['launch_uri', 'portal_launch_uri', 'private_jwk', 'scope'];

/**
 * Fill in what a static registration leaves out: a secret, or a key pair for private_key_jwt.
 * Both come from `credentials`, so with a data directory they are the same after a restart.
 */
async function resolveClient(client, credentials) {
  const resolved = structuredClone(client);
  const method = resolved.token_endpoint_auth_method ?? 'client_secret_basic';
  resolved.token_endpoint_auth_method = method;
  resolved.grant_types ??= ['authorization_code'];
  resolved.redirect_uris ??= [];
  if (method.startsWith('client_secret') && !resolved.client_secret) {
    resolved.client_secret = await credentials.remember(
      `client/${resolved.client_id}/secret`,
      () => randomBytes(24).toString('base64url'),
    );
  }
  if (method === 'private_key_jwt' && !resolved.jwks && !resolved.jwks_uri) {
    const alg = resolved.token_endpoint_auth_signing_alg ?? 'RS384';
    const { publicJwk, privateJwk } = await credentials.remember(
      `client/${resolved.client_id}/${alg}`,
      () => generateJwk(alg),
    );
    resolved.jwks = { keys: [publicJwk] };
    resolved.private_jwk = privateJwk;
  }
  return resolved;
}

async function generateJwk(alg) {
  const { publicKey, privateKey } = await jose.generateKeyPair(alg, { extractable: true });
  const publicJwk = await jose.exportJWK(publicKey);
  const kid = await jose.calculateJwkThumbprint(publicJwk);
  return {
    publicJwk: { ...publicJwk, alg, use: 'sig', kid },
    privateJwk: { ...(await jose.exportJWK(privateKey)), alg, use: 'sig', kid },
  };
}

/** The registration as oidc-provider accepts it: OIDC metadata only. */
function providerMetadata(client) {
  const metadata = Object.fromEntries(
    Object.entries(client).filter(([key]) => !SMART_CLIENT_FIELDS.includes(key)),
  );
  metadata.response_types = client.grant_types.includes('authorization_code') ? ['code'] : [];
  // `scope` stays ours: oidc-provider refuses SMART scopes there (invalid_client_metadata) and
  // would answer an unregistered OIDC scope with invalid_scope. Instead every scope outside the
  // registration is simply not granted: resource scopes via getResourceServerInfo, OIDC scopes
  // by the interaction's Grant.
  return metadata;
}

/** What a client may have: its registered OIDC scopes, and every SMART scope its registered ones cover. */
function scopePolicy(client) {
  if (client.scope === undefined) {
    return { oidc: new Set(OIDC_SCOPES), smart: new Set(SMART_SCOPES) };
  }
  const registered = splitScopes(client.scope);
  return {
    oidc: new Set(registered.filter((s) => OIDC_SCOPES.includes(s))),
    smart: new Set(SMART_SCOPES.filter((s) => registered.some((r) => scopeCovers(r, s)))),
  };
}

/** Split requested scopes into granted OIDC, refused OIDC and granted resource scopes. */
function grantableScopes(policy, requested) {
  const oidc = requested.filter((s) => OIDC_SCOPES.includes(s));
  return {
    oidc: oidc.filter((s) => policy.oidc.has(s)),
    refused: oidc.filter((s) => !policy.oidc.has(s)),
    resource: requested.filter((s) => policy.smart.has(s)),
  };
}

// ---------------------------------------------------------------------------------------------
// Launch context: EHR launches, the signed-in user, and grantId -> context
// ---------------------------------------------------------------------------------------------

// A Koppeltaal launch may be a RelatedPerson's (TOP-KT-007); SMART launches never name one.
const ACCOUNT = /^(Patient|Practitioner|RelatedPerson)\/[A-Za-z0-9\-.]{1,64}$/;
const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;

function registerLaunch(env, {
  patient, practitioner, encounter, needPatientBanner = true, smartStyleUrl, intent,
} = {}) {
  for (const [name, id] of Object.entries({ patient, practitioner, encounter })) {
    if (id !== undefined && !FHIR_ID.test(id)) {
      throw new TypeError(`registerLaunch: ${name} must be a FHIR id, got ${JSON.stringify(id)}`);
    }
  }
  if (!patient && !practitioner) {
    throw new TypeError('registerLaunch: a launch needs a patient, a practitioner or both');
  }
  const launch = randomUUID();
  env.launches.set(launch, {
    patient, practitioner, encounter, needPatientBanner, smartStyleUrl, intent,
  });
  return launch;
}

/**
 * The user an authorization request asks for: the EHR launch's practitioner (or its patient,
 * for a patient-portal launch), else a standalone `login_hint=Patient/ID`.
 */
function requestedUser(env, params) {
  const launch = params.launch && env.launches.get(params.launch);
  if (launch?.kt) {
    return launch.kt.sub; // Koppeltaal: the HTI token's sub is the user
  }
  if (launch) {
    return launch.practitioner ? `Practitioner/${launch.practitioner}` : `Patient/${launch.patient}`;
  }
  const hint = params.login_hint;
  return typeof hint === 'string' && /^Patient\//.test(hint) && ACCOUNT.test(hint) ? hint : undefined;
}

function launchContext(env, params, accountId) {
  const launch = params.launch ? env.launches.get(params.launch) : undefined;
  if (launch?.kt) {
    return { launch: params.launch, fhirUser: accountId, kt: launch.kt };
  }
  const userPatient = accountId.startsWith('Patient/') ? accountId.slice('Patient/'.length) : undefined;
  return {
    launch: params.launch,
    fhirUser: accountId,
    patient: launch ? launch.patient : userPatient,
    encounter: launch?.encounter,
    // A standalone app runs outside the EHR's chrome, so it always shows its own banner.
    needPatientBanner: launch ? launch.needPatientBanner : true,
    smartStyleUrl: launch?.smartStyleUrl ?? env.styleUrl,
    intent: launch?.intent,
  };
}

/** SMART launch context fields for a token response, given the granted scopes. */
function tokenContextFields(env, context, scopes) {
  const ehrLaunch = scopes.has('launch');
  const fields = {};
  if (context.patient && (ehrLaunch || scopes.has('launch/patient'))) {
    fields.patient = context.patient;
  }
  if (context.encounter && (ehrLaunch || scopes.has('launch/encounter'))) {
    fields.encounter = context.encounter;
  }
  if (scopes.has('fhirUser') && !env.profileClaim) {
    fields.fhirUser = `${env.fhirBase}/${context.fhirUser}`;
  }
  if (fields.patient || ehrLaunch) {
    fields.need_patient_banner = context.needPatientBanner;
    fields.smart_style_url = context.smartStyleUrl;
  }
  if (context.intent && ehrLaunch) {
    fields.intent = context.intent;
  }
  return fields;
}

/** Post-middleware on the token endpoint: SMART context and the full granted `scope`. */
function tokenResponseMiddleware(env) {
  return async function smartTokenResponse(ctx, next) {
    await next();
    const grant = ctx.oidc?.entities.Grant;
    if (env.koppeltaal && ctx.oidc?.route === 'token' && ctx.body) {
      delete ctx.body.refresh_token; // Koppeltaal: never a refresh token, on any grant
    }
    if (ctx.oidc?.route !== 'token' || ctx.status !== 200 || !ctx.body?.access_token || !grant) {
      return; // errors, and client_credentials (no grant, no user, no launch context)
    }
    const context = env.contexts.get(grant.jti);
    if (context?.kt) {
      const source = ctx.oidc.entities.AuthorizationCode;
      // The reference auth service's id_token, not oidc-provider's (which echoes the nonce).
      const idToken = ctx.body.id_token && await referenceIdToken({
        issuer: env.issuer, clientId: grant.clientId, sub: context.kt.sub, key: env.signingJwk,
      });
      ctx.body = htiTokenResponse({
        idToken,
        grantedScopes: new Set(splitScopes(grant.getOIDCScopeFiltered(source?.scopes ?? new Set()))),
        context: context.kt,
      });
      return;
    }
    const source = ctx.oidc.entities.AuthorizationCode ?? ctx.oidc.entities.RefreshToken;
    const requested = ctx.oidc.params.scope ? new Set(splitScopes(ctx.oidc.params.scope)) : source.scopes;
    // With a resource indicator, oidc-provider answers only the resource scopes; SMART apps
    // expect every granted scope (openid, launch, offline_access, ...) back.
    const scopes = new Set([
      ...splitScopes(grant.getOIDCScopeFiltered(requested)),
      ...splitScopes(ctx.body.scope),
    ]);
    ctx.body.scope = [...scopes].join(' ');
    if (context) {
      Object.assign(ctx.body, tokenContextFields(env, context, scopes));
    }
  };
}

/** Claims copied into the JWT access token, so the FHIR server knows user and patient. */
async function extraTokenClaims(env, ctx, token) {
  const context = token.grantId ? env.contexts.get(token.grantId) : undefined;
  if (!context || context.kt) { // a Koppeltaal launch's access token is NOOP anyway
    return undefined;
  }
  return Object.fromEntries(
    Object.entries({ patient: context.patient, fhirUser: context.fhirUser })
      .filter(([, value]) => value !== undefined),
  );
}

// ---------------------------------------------------------------------------------------------
// Authorization request hooks
// ---------------------------------------------------------------------------------------------

function normalizeAud(aud) {
  return typeof aud === 'string' ? aud.replace(/\/+$/, '') : undefined;
}

/**
 * oidc-provider drops offline_access unless prompt=consent (OIDC Core 11); SMART apps never send
 * prompt. extraParams validators are the one hook that runs after that on every authorization
 * request, so the scope is put back here when the client may have it.
 */
function restoreOfflineAccess(env, ctx, client) {
  const raw = ctx.method === 'POST' ? ctx.oidc.body?.scope : ctx.query.scope;
  const current = splitScopes(ctx.oidc.params.scope);
  const wanted = splitScopes(raw).includes('offline_access') && !current.includes('offline_access');
  if (
    wanted
    && ctx.oidc.params.response_type?.includes('code')
    && client.grantTypeAllowed('refresh_token')
    && env.policies.get(client.clientId)?.oidc.has('offline_access')
  ) {
    ctx.oidc.params.scope = [...current, 'offline_access'].join(' ');
  }
}

/**
 * strictScopes: some EHRs refuse an authorization request that asks for any scope the app was
 * not registered with (RFC 6749 §4.1.2.1 invalid_scope), rather than granting less.
 */
function refuseUnregisteredScopes(env, ctx, client) {
  if (!env.strictScopes) {
    return;
  }
  const raw = ctx.method === 'POST' ? ctx.oidc.body?.scope : ctx.query.scope;
  const policy = env.policies.get(client.clientId);
  const unregistered = splitScopes(raw).filter(
    (s) => !(policy?.oidc.has(s) || policy?.smart.has(s)),
  );
  if (unregistered.length) {
    throw new errors.InvalidScope(
      `this app is not registered for: ${unregistered.join(' ')}`, unregistered.join(' '),
    );
  }
}

function extraParams(env) {
  return {
    // SMART `aud`: the FHIR base the token is for. defaultResource turns it into the RFC 8707
    // resource; this check also catches an `aud` that contradicts an explicit `resource`.
    async aud(ctx, value, client) {
      if (env.koppeltaal && normalizeAud(value) !== env.fhirBase) {
        // AUTH asserts aud is the FHIR base before it looks at the launch token.
        throw koppeltaalRefusal(new errors.InvalidTarget(`aud must be ${env.fhirBase}`), 'audience');
      }
      if (value !== undefined && !env.resources.has(normalizeAud(value))) {
        throw new errors.InvalidTarget(`aud must be the FHIR base URL ${env.fhirBase} or a registered resource server`);
      }
      refuseUnregisteredScopes(env, ctx, client);
    },
    async launch(ctx, value, client) {
      if (env.koppeltaal) {
        await verifyHtiLaunch(env, value, client);
        const raw = ctx.method === 'POST' ? ctx.oidc.body?.scope : ctx.query.scope;
        if (!isLaunchScope(raw)) {
          throw koppeltaalRefusal(new errors.InvalidScope('the scope must be launch openid fhirUser'), 'scope');
        }
        return undefined;
      }
      if (value !== undefined && !env.launches.has(value)) {
        throw new errors.InvalidRequest('launch is unknown: start the EHR launch again');
      }
      restoreOfflineAccess(env, ctx, client);
    },
  };
}

/**
 * Koppeltaal: an error /authorize answers as the reference auth service does, with its line
 * of text (KT_AUTHORIZE_REFUSALS[kind]) as a plain 400 page, not at the redirect_uri.
 */
function koppeltaalRefusal(error, kind) {
  error.allow_redirect = false; // oidc-provider's authorization error handler then renders it
  error.koppeltaalBody = KT_AUTHORIZE_REFUSALS[kind];
  return error;
}

/**
 * Koppeltaal: `launch` is an HTI launch token. A bad one (or none) is refused as the reference
 * refuses it: a plain 400 at /authorize saying "invalid launch token", whichever check failed;
 * the module hears nothing. A good one becomes a launch whose user is its `sub`.
 */
async function verifyHtiLaunch(env, value, client) {
  if (value === undefined) {
    throw koppeltaalRefusal(new errors.InvalidRequest('launch is required: a Koppeltaal launch starts at the portal (HTI)'), 'launch');
  }
  let claims;
  try {
    claims = await env.hti.verify(value, client.clientId);
  } catch (error) {
    if (!(error instanceof HtiLaunchError)) {
      throw error;
    }
    const refusal = error.error === 'access_denied'
      ? new errors.AccessDenied(error.message)
      : new errors.InvalidRequest(error.message);
    throw koppeltaalRefusal(refusal, 'launch');
  }
  env.launches.set(value, { kt: htiContext(claims) });
}

/**
 * The default login/consent policy plus two SMART checks: log in again when the launch (or
 * login_hint) names another user, and ask again when the grant is bound to another launch, so
 * each launch gets its own grant and therefore its own context.
 */
function interactionPolicyFor(env) {
  const policy = basePolicy();
  policy.get('login').checks.add(new Check(
    'launch_user',
    'the launch selects another user',
    (ctx) => {
      const wanted = requestedUser(env, ctx.oidc.params);
      const current = ctx.oidc.session.accountId;
      if (wanted) {
        return wanted !== current;
      }
      // A standalone launch without a hint is a patient-portal login.
      return Boolean(current) && !current.startsWith('Patient/');
    },
  ));
  policy.get('consent').checks.add(new Check(
    'launch_context',
    'the launch context is not bound to a grant yet',
    (ctx) => {
      const bound = ctx.oidc.grant?.jti && env.contexts.get(ctx.oidc.grant.jti);
      return !bound || bound.launch !== ctx.oidc.params.launch;
    },
  ));
  return policy;
}

/** SMART Backend Services: an assertion lives at most five minutes, and sub is the client. */
function assertClientAssertion(env) {
  return async function assertJwtClientAuthClaimsAndHeader(ctx, claims, header) {
    const now = Math.floor(Date.now() / 1000);
    if (claims.exp > now + 300 + 15) {
      throw new errors.InvalidClientAuth('client_assertion exp must be at most 5 minutes in the future');
    }
    if (claims.sub !== claims.iss) {
      throw new errors.InvalidClientAuth('client_assertion sub must be the client_id');
    }
    if (env.koppeltaal) {
      // Koppeltaal (TOP-KT-021): the key is named, and the audience is the token endpoint.
      if (typeof header?.kid !== 'string' || !header.kid) {
        throw new errors.InvalidClientAuth('client_assertion must name its key (kid header)');
      }
      const tokenUrl = ctx.oidc.urlFor('token');
      if (![claims.aud].flat().includes(tokenUrl)) {
        throw new errors.InvalidClientAuth(`client_assertion aud must be the token endpoint ${tokenUrl}`);
      }
    }
  };
}

// ---------------------------------------------------------------------------------------------
// Provider configuration
// ---------------------------------------------------------------------------------------------

const CLIENT_AUTH_ALGS = Object.freeze(['RS384', 'ES384', 'RS256', 'RS512', 'PS256', 'PS384', 'ES256']);

function resourceServerInfo(env) {
  return async function getResourceServerInfo(ctx, resource, client) {
    // RFC 8707: a client names the resource server its token is for (`resource`, or SMART's
    // `aud`): the FHIR base, or another registered resource server (an app's own API, which
    // must not accept a token meant for the EHR). The token's audience is that server.
    const audience = normalizeAud(resource);
    if (!env.resources.has(audience)) {
      const error = new errors.InvalidTarget(`unknown resource; known are ${[...env.resources].join(', ')}`);
      // Koppeltaal: at /authorize this check (SMART `aud` as the resource) comes first.
      throw env.koppeltaal && ctx.oidc.route === 'authorization' ? koppeltaalRefusal(error, 'audience') : error;
    }
    const role = env.koppeltaal ? env.roles.get(client.clientId) : undefined;
    if (role) {
      // Koppeltaal: the scope asked for is ignored; a backend token carries the app's role.
      // This hook runs before oidc-provider reads the requested scope, so it is replaced here.
      if (ctx.oidc.route === 'token' && ctx.oidc.params.grant_type === 'client_credentials') {
        ctx.oidc.params.scope = role;
      }
      return {
        scope: role,
        audience,
        accessTokenFormat: 'jwt',
        accessTokenTTL: env.tokenTtl ?? KT_TOKEN_TTL,
        jwt: { sign: { alg: env.accessTokenAlg } },
      };
    }
    // The per-client scope policy: a client is never offered a scope outside its registration.
    const policy = env.policies.get(client.clientId);
    return {
      scope: [...(policy?.smart ?? [])].join(' '),
      audience,
      accessTokenFormat: 'jwt',
      accessTokenTTL: env.tokenTtl ?? 3600,
      jwt: { sign: { alg: env.accessTokenAlg } },
    };
  };
}

/**
 * oidc-provider's error page. Koppeltaal: at /authorize (and its resume) the reference's plain
 * 400 with one line of text, the refusal's own or `Bad Request, <description>`; never more.
 */
async function renderError(env, ctx, out, error) {
  if (env.koppeltaal && ['authorization', 'resume'].includes(ctx.oidc?.route)) {
    if (ctx.status < 500) {
      ctx.status = 400;
    }
    ctx.type = 'html';
    ctx.body = error?.koppeltaalBody ?? `Bad Request, ${out.error_description ?? out.error}`;
    return;
  }
  ctx.type = 'html';
  const rows = Object.entries(out)
    .map(([key, value]) => `<dt>${escapeHtml(key)}</dt><dd>${escapeHtml(value)}</dd>`).join('');
  ctx.body = page('Authorization error', `<h1>Authorization error</h1><dl>${rows}</dl>`);
}

function providerConfiguration(env, clients, signingKeys, cookieKey) {
  return {
    clients: clients.map(providerMetadata),
    jwks: { keys: signingKeys },
    // SMART `authorize-post`: oidc-provider 9 serves POST /authorize only with
    // enableHttpPostMethods, which demands SameSite=None on the session cookie (a cross-site
    // form POST would not carry a Lax one). Over plain http some browsers drop such a cookie;
    // then every launch simply signs in again, which the interactions do without a prompt.
    enableHttpPostMethods: true,
    cookies: {
      keys: [cookieKey],
      long: { httpOnly: true, sameSite: 'none' },
    },
    // profileClaim: a v1 EHR names the user in `profile` (a URL of the FHIR resource).
    claims: env.profileClaim ? { openid: ['sub', 'profile'] } : { openid: ['sub'], fhirUser: ['fhirUser'] },
    scopes: [...OIDC_SCOPES],
    responseTypes: ['code'],
    clientAuthMethods: ['none', 'client_secret_basic', 'client_secret_post', 'private_key_jwt'],
    routes: { authorization: '/authorize' },
    // The default requires PKCE for public clients only; SMART 2 requires it for every client.
    // oidc-provider 9 accepts S256 alone, so `plain` is refused as invalid_request.
    pkce: { required: () => true },
    extraParams: extraParams(env),
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      revocation: { enabled: true },
      // Access tokens are JWTs for the FHIR base, which userinfo would refuse; the id_token
      // carries fhirUser instead.
      userinfo: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (ctx) => normalizeAud(ctx.oidc.params?.aud) ?? env.fhirBase,
        // Without this an openid request's code exchange yields an opaque userinfo token.
        useGrantedResource: async () => true,
        getResourceServerInfo: resourceServerInfo(env),
      },
    },
    enabledJWA: {
      // Backend Services clients sign with RS384 or ES384; neither is enabled by default.
      clientAuthSigningAlgValues: [...(env.koppeltaal ? KT_CLIENT_AUTH_ALGS : CLIENT_AUTH_ALGS)],
    },
    interactions: {
      policy: interactionPolicyFor(env),
      url: async (ctx, interaction) => `${env.issuer}/interaction/${interaction.uid}`,
    },
    findAccount: async (ctx, sub) => (ACCOUNT.test(sub) ? account(env, sub) : undefined),
    extraTokenClaims: (ctx, token) => extraTokenClaims(env, ctx, token),
    rotateRefreshToken: true,
    assertJwtClientAuthClaimsAndHeader: assertClientAssertion(env),
    clientBasedCORS: (ctx, origin, client) => client.redirectUris
      .some((uri) => URL.parse(uri)?.origin === origin),
    renderError: (ctx, out, error) => renderError(env, ctx, out, error),
    ttl: {
      // --token-ttl sets both; by default a backend-services token lives 5 minutes.
      AccessToken: env.tokenTtl ?? 3600,
      AuthorizationCode: 60,
      ClientCredentials: env.tokenTtl ?? 300,
      IdToken: 3600,
      Interaction: 3600,
      Grant: 14 * 24 * 3600,
      Session: 14 * 24 * 3600,
      RefreshToken: 14 * 24 * 3600,
    },
  };
}

function account(env, accountId) {
  return {
    accountId,
    async claims() {
      const url = `${env.fhirBase}/${accountId}`;
      return env.profileClaim ? { sub: accountId, profile: url } : { sub: accountId, fhirUser: url };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Interactions: password-less login from the launch context, patient picker, consent
// ---------------------------------------------------------------------------------------------

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function handleInteraction(env, req, res, path) {
  const match = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|consent))?$/.exec(path);
  if (!match) {
    throw new HttpError(404, 'No such interaction page.');
  }
  const [, uid, step] = match;
  const details = await interactionDetails(env, req, res, uid);
  if (req.method === 'GET' && !step) {
    return startInteraction(env, req, res, details);
  }
  if (req.method === 'POST' && step === 'login') {
    const patient = (await readForm(req)).get('patient')?.trim() ?? '';
    if (!FHIR_ID.test(patient)) {
      throw new HttpError(400, 'Choose a patient (a FHIR id: letters, digits, "-" and ".").');
    }
    return continueAs(env, req, res, details, `Patient/${patient}`);
  }
  if (req.method === 'POST' && step === 'consent') {
    return answerConsent(env, req, res, details, (await readForm(req)).get('decision'));
  }
  throw new HttpError(405, 'Method not allowed.');
}

async function interactionDetails(env, req, res, uid) {
  let details;
  try {
    details = await env.provider.interactionDetails(req, res);
  } catch (error) {
    if (error instanceof errors.SessionNotFound) {
      throw new HttpError(400, 'The sign-in has expired or its cookie is missing; start the launch again.');
    }
    throw error;
  }
  if (details.uid !== uid) {
    throw new HttpError(400, 'This sign-in page belongs to another authorization request.');
  }
  return details;
}

async function startInteraction(env, req, res, details) {
  const current = details.session?.accountId;
  const user = requestedUser(env, details.params)
    // Only a new grant is needed (prompt "consent"): keep the signed-in patient.
    ?? (details.prompt.name === 'consent' && current?.startsWith('Patient/') ? current : undefined);
  if (!user) {
    return sendHtml(res, 200, patientPickerPage(env, details));
  }
  return continueAs(env, req, res, details, user);
}

async function continueAs(env, req, res, details, accountId) {
  if (!env.consent) {
    return finishInteraction(env, req, res, details, accountId);
  }
  // Remember the user until the consent form comes back.
  details.result = { login: { accountId } };
  await details.persist();
  return sendHtml(res, 200, consentPage(env, details, accountId));
}

async function answerConsent(env, req, res, details, decision) {
  const accountId = details.result?.login?.accountId;
  if (!accountId) {
    throw new HttpError(400, 'Nobody is signed in for this request; start the launch again.');
  }
  if (decision !== 'approve') {
    return env.provider.interactionFinished(req, res, {
      error: 'access_denied', error_description: 'the user denied the authorization request',
    }, { mergeWithLastSubmission: false });
  }
  return finishInteraction(env, req, res, details, accountId);
}

/** Sign the user in, save a fresh Grant bound to this launch's context, and resume. */
async function finishInteraction(env, req, res, details, accountId) {
  await forgetOtherUser(env, details, accountId);
  const grantId = await saveGrant(env, details, accountId);
  env.contexts.set(grantId, launchContext(env, details.params, accountId));
  await env.provider.interactionFinished(req, res, {
    login: { accountId },
    consent: { grantId },
  }, { mergeWithLastSubmission: false });
}

/**
 * On resume oidc-provider answers a login as another user with an auto-submitting logout form,
 * which a script following redirects cannot pass. The sandbox ends the old session itself and
 * detaches it from the interaction, so switching user is silent, like an EHR launch should be.
 */
async function forgetOtherUser(env, details, accountId) {
  if (!details.session?.accountId || details.session.accountId === accountId) {
    return;
  }
  const session = await env.provider.Session.findByUid(details.session.uid);
  await session?.destroy();
  details.session = undefined;
  await details.persist();
}

async function saveGrant(env, details, accountId) {
  const { params } = details;
  // A new Grant per launch: reusing the session's grant would rebind older tokens' context.
  const grant = new env.provider.Grant({ accountId, clientId: params.client_id });
  const scopes = grantableScopes(env.policies.get(params.client_id), splitScopes(params.scope));
  if (scopes.oidc.length) {
    grant.addOIDCScope(scopes.oidc.join(' '));
  }
  if (scopes.refused.length) {
    // Refused, not just left out: otherwise the consent check asks again forever.
    grant.rejectOIDCScope(scopes.refused.join(' '));
  }
  if (scopes.resource.length) {
    grant.addResourceScope(
      params.resource ?? normalizeAud(params.aud) ?? env.fhirBase, scopes.resource.join(' '),
    );
  }
  return grant.save();
}

function patientPickerPage(env, details) {
  const action = `${env.mountPath}/interaction/${details.uid}/login`;
  const buttons = (env.seed.patients ?? []).map((patient) => `
      <li><button name="patient" value="${escapeHtml(patient.id)}">${escapeHtml(displayName(patient))}</button>
        <code>Patient/${escapeHtml(patient.id)}</code></li>`).join('');
  return page('Patient portal: sign in', `
    <h1>Patient portal</h1>
    <p>${escapeHtml(clientName(env, details.params.client_id))} asks you to sign in.
      This sandbox has no passwords: choose who you are.</p>
    <form method="post" action="${escapeHtml(action)}"><ul>${buttons}</ul></form>
    <form method="post" action="${escapeHtml(action)}">
      <label>Or a Patient id: <input name="patient" required pattern="[A-Za-z0-9\\-.]{1,64}"></label>
      <button>Sign in</button>
    </form>`);
}

function consentPage(env, details, accountId) {
  const action = `${env.mountPath}/interaction/${details.uid}/consent`;
  const scopes = grantableScopes(env.policies.get(details.params.client_id), splitScopes(details.params.scope));
  const items = [...scopes.oidc, ...scopes.resource].map((s) => `<li><code>${escapeHtml(s)}</code></li>`).join('');
  return page('Allow access?', `
    <h1>Allow access?</h1>
    <p>${escapeHtml(clientName(env, details.params.client_id))} asks access as
      <code>${escapeHtml(accountId)}</code> to:</p>
    <ul>${items || '<li>(no scopes)</li>'}</ul>
    <form method="post" action="${escapeHtml(action)}">
      <button name="decision" value="approve">Allow</button>
      <button name="decision" value="deny">Deny</button>
    </form>`);
}

function clientName(env, clientId) {
  const client = env.clients.get(clientId);
  return client?.client_name ?? clientId;
}

function displayName(entry) {
  return typeof entry.name === 'string' && entry.name ? entry.name : entry.id;
}

// ---------------------------------------------------------------------------------------------
// Access token verification and SMART discovery
// ---------------------------------------------------------------------------------------------

async function verifyAccessToken(env, token) {
  const { payload } = await jose.jwtVerify(token, env.accessTokenKeys, {
    issuer: env.issuer,
    audience: env.fhirBase,
    typ: 'at+jwt',
    algorithms: [env.accessTokenAlg],
  });
  const claims = {
    scope: typeof payload.scope === 'string' ? payload.scope : '',
    client_id: payload.client_id,
    sub: payload.sub,
  };
  if (payload.patient) {
    claims.patient = payload.patient;
  }
  if (payload.fhirUser) {
    claims.fhirUser = payload.fhirUser;
  }
  return claims;
}

const CAPABILITIES = Object.freeze([
  'launch-ehr', 'launch-standalone', 'client-public', 'client-confidential-symmetric',
  'client-confidential-asymmetric', 'context-passthrough-banner', 'context-passthrough-style',
  'context-ehr-patient', 'context-ehr-encounter', 'context-standalone-patient',
  'permission-offline', 'permission-patient', 'permission-user', 'permission-v1', 'permission-v2',
  'sso-openid-connect', 'authorize-post',
]);

/** How the server publishes its endpoints (see the module comment). */
export const DISCOVERY_MODES = Object.freeze(['full', 'metadata-only', 'no-issuer']);

/** SMART App Launch 2.2 discovery (`.well-known/smart-configuration`). */
function buildSmartConfiguration(env) {
  const { provider } = env;
  if (env.koppeltaal) {
    return koppeltaalSmartConfiguration({
      issuer: env.issuer, urlFor: (name) => provider.urlFor(name), roles: [...env.roles.values()],
    });
  }
  const configuration = {
    issuer: env.issuer,
    jwks_uri: provider.urlFor('jwks'),
    authorization_endpoint: provider.urlFor('authorization'),
    token_endpoint: provider.urlFor('token'),
    token_endpoint_auth_methods_supported: [
      'client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none',
    ],
    token_endpoint_auth_signing_alg_values_supported: [...CLIENT_AUTH_ALGS],
    grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials'],
    revocation_endpoint: provider.urlFor('revocation'),
    scopes_supported: [...OIDC_SCOPES, ...SMART_SCOPES],
    response_types_supported: ['code'],
    code_challenge_methods_supported: ['S256'],
    id_token_signing_alg_values_supported: ['RS256'],
    capabilities: [...CAPABILITIES],
  };
  if (env.discoveryMode === 'no-issuer') {
    delete configuration.issuer;
  }
  return configuration;
}

/** A minimal SMART style document, the default `smart_style_url`. */
const SMART_STYLE = Object.freeze({
  color_background: '#f5f7fa',
  color_error: '#b00020',
  color_highlight: '#2e6cb5',
  color_modal_backdrop: '',
  color_success: '#2e7d32',
  color_text: '#1f2933',
  dim_border_radius: '4px',
  dim_font_size: '14px',
  dim_spacing_size: '16px',
  font_family_body: 'system-ui, sans-serif',
  font_family_heading: 'system-ui, sans-serif',
});

// ---------------------------------------------------------------------------------------------
// HTTP plumbing
// ---------------------------------------------------------------------------------------------

/** Escape text for HTML element content and quoted attribute values. */
export function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:system-ui,sans-serif;max-width:40em;margin:2em auto;padding:0 1em}
li{margin:.3em 0}code{color:#555}</style></head>
<body>${body}
<p><small>Sandbox EHR: synthetic data, no real patients.</small></p></body></html>`;
}

export function sendHtml(res, status, html) {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(html),
  });
  res.end(html);
}

function sendJson(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'access-control-allow-origin': '*',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

async function readForm(req, limit = 64 * 1024) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > limit) {
      throw new HttpError(413, 'Form too large.');
    }
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/**
 * Hand a request to oidc-provider. It finds its mount path Express-style, as req.originalUrl
 * minus req.url, so discovery and redirects keep the /auth prefix.
 */
function handOver(env, req, res) {
  req.originalUrl = req.url;
  const rest = req.url.slice(env.mountPath.length);
  req.url = rest.startsWith('/') ? rest : `/${rest}`;
  return env.callback(req, res);
}

async function handle(env, req, res) {
  const path = new URL(req.url, env.issuer).pathname;
  const local = path.startsWith(env.mountPath) ? path.slice(env.mountPath.length) : path;
  try {
    if (
      local === '/.well-known/smart-configuration' && ['GET', 'HEAD'].includes(req.method)
      && env.discoveryMode !== 'metadata-only'
    ) {
      return sendJson(res, 200, env.discovery);
    }
    if (local === '/smart-style.json' && ['GET', 'HEAD'].includes(req.method)) {
      return sendJson(res, 200, SMART_STYLE);
    }
    if (local.startsWith('/interaction/')) {
      return await handleInteraction(env, req, res, local);
    }
    return await handOver(env, req, res);
  } catch (error) {
    if (res.headersSent) {
      res.destroy(error);
      return undefined;
    }
    const status = error instanceof HttpError ? error.status : 500;
    if (status === 500) {
      console.error('auth-server:', error);
    }
    const message = status === 500 ? 'Internal error in the sandbox authorization server.' : error.message;
    return sendHtml(res, status, page('Error', `<h1>Error</h1><p>${escapeHtml(message)}</p>`));
  }
}

// ---------------------------------------------------------------------------------------------
// Factory
// ---------------------------------------------------------------------------------------------

/**
 * Build the authorization server for `issuer` (e.g. http://127.0.0.1:PORT/auth) guarding
 * `fhirBase`. `clients` are static registrations (oidc-provider metadata plus SMART `launch_uri`
 * and `scope` = the scopes the client may have); `seed` lists patients for the portal login.
 * `tokenTtl` (seconds) is the lifetime of every access token; by default 3600, and 300 for
 * client_credentials. Generated client secrets and keys, the token signing key and the cookie
 * key come from `credentials` (default: fresh ones in memory); the caller saves them.
 * `resources` are further resource servers (URLs) a client may ask a token for, with RFC 8707
 * `resource` or SMART `aud`; the token's audience is then that URL instead of the FHIR base.
 * `discovery`, `profileClaim` and `strictScopes` play other EHRs (see the module comment).
 * `koppeltaal: true` makes it a Koppeltaal 2.0 domain's auth service (koppeltaal-auth.mjs):
 * backend tokens carry the client's registered `system/...` scopes (its role), and `launch`
 * on /authorize is an HTI token signed by a registered client (the portal).
 */
export async function createAuthServer({
  issuer, fhirBase, clients = [], consent = false, seed = {}, tokenTtl, credentials = new Credentials(),
  koppeltaal = false, resources = [], discovery = 'full', profileClaim = false, strictScopes = false,
}) {
  if (!DISCOVERY_MODES.includes(discovery)) {
    throw new TypeError(`discovery must be one of ${DISCOVERY_MODES.join(', ')}, got ${discovery}`);
  }
  if (tokenTtl !== undefined && !(Number.isInteger(tokenTtl) && tokenTtl > 0)) {
    throw new TypeError(`tokenTtl must be a positive whole number of seconds, got ${tokenTtl}`);
  }
  const normalizedIssuer = issuer.replace(/\/+$/, '');
  const resolved = await Promise.all(clients.map((client) => resolveClient(client, credentials)));
  const signing = await credentials.remember('auth/signing-key/RS256', () => generateJwk('RS256'));
  // Koppeltaal: the reference signs every JWT RS512; oidc-provider keeps its RS256 key for the
  // id_token it makes (and the sandbox replaces), so the JWKS names both.
  const ktSigning = koppeltaal
    ? await credentials.remember(`auth/signing-key/${KT_SIGNING_ALG}`, () => generateJwk(KT_SIGNING_ALG))
    : undefined;
  const tokenSigning = ktSigning ?? signing;
  const cookieKey = await credentials.remember('auth/cookie-key', () => randomBytes(32).toString('base64url'));
  const env = {
    issuer: normalizedIssuer,
    fhirBase: fhirBase.replace(/\/+$/, ''),
    // The resource servers tokens may be asked for: the FHIR base, then `resources`.
    resources: new Set([fhirBase, ...resources].map(normalizeAud)),
    mountPath: new URL(normalizedIssuer).pathname.replace(/\/+$/, ''),
    consent: Boolean(consent),
    seed: seed ?? {},
    clients: new Map(resolved.map((c) => [c.client_id, c])),
    policies: new Map(resolved.map((c) => [c.client_id, scopePolicy(c)])),
    launches: new Map(),
    contexts: new Map(),
    accessTokenKeys: jose.createLocalJWKSet({ keys: [tokenSigning.publicJwk] }),
    accessTokenAlg: tokenSigning.publicJwk.alg,
    signingJwk: ktSigning?.privateJwk, // Koppeltaal: signs the reference-shaped id_tokens
    styleUrl: `${normalizedIssuer}/smart-style.json`,
    tokenTtl,
    koppeltaal: Boolean(koppeltaal),
    discoveryMode: discovery,
    profileClaim: Boolean(profileClaim),
    strictScopes: Boolean(strictScopes),
    // Koppeltaal: each app's role (its registered system/ scopes), and the HTI token checks.
    roles: new Map(koppeltaal ? resolved.filter(roleScope).map((c) => [c.client_id, roleScope(c)]) : []),
    hti: koppeltaal ? createHtiVerifier({ clients: resolved }) : undefined,
  };
  const signingKeys = [signing.privateJwk, ...(ktSigning ? [ktSigning.privateJwk] : [])];
  env.provider = new Provider(env.issuer, providerConfiguration(env, resolved, signingKeys, cookieKey));
  env.provider.use(tokenResponseMiddleware(env));
  env.provider.on('server_error', (ctx, error) => console.error('oidc-provider:', error));
  if (env.koppeltaal) {
    // The reference never sends an error from /authorize back to the module: whatever
    // oidc-provider refuses there (PKCE, client, ...) is rendered too. Listeners run inside its
    // error handler, before it chooses between the redirect_uri and renderError.
    env.provider.on('authorization.error', (ctx, error) => { error.allow_redirect = false; });
  }
  env.callback = env.provider.callback();
  env.discovery = buildSmartConfiguration(env);

  return {
    handle: (req, res) => handle(env, req, res),
    verifyAccessToken: (token) => verifyAccessToken(env, token),
    smartConfiguration: () => structuredClone(env.discovery),
    registerLaunch: (launch) => registerLaunch(env, launch),
    clients: resolved,
  };
}
