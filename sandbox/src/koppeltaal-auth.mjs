/**
 * The Koppeltaal 2.0 parts of the sandbox's authorization server (node src/main.mjs
 * --koppeltaal). auth-server.mjs keeps doing the protocol work with oidc-provider; this module
 * holds what a Koppeltaal domain's auth service adds on top (KOPPELTAAL.md §3 and §4):
 *
 * - the role of an app: the `system/...` scopes of its registration, granted on
 *   client_credentials whatever it asks for (Koppeltaal AUTH `scopes.py`);
 * - the HTI 2.0 launch token (GIDS HTI 2.0, TOP-KT-007): checked on /authorize (the launcher's
 *   signature, exp/iat/nbf, jti replay, aud = the module's Device), its claims becoming the
 *   launch context of the token response;
 * - the token response of an HTI launch: `access_token` "NOOP" (no user-level FHIR access in
 *   Koppeltaal), the id_token and the context `resource`, `definition`, `patient`, `sub`,
 *   `intent`; never a refresh token;
 * - the id_token of an HTI launch as the reference auth service makes it (Koppeltaal AUTH
 *   `oauth_server/service.py`, `TokenService._get_jwt_token`): a fresh random `nonce` of its own
 *   (the client's is never echoed), `iss` its URL root with a trailing slash, `sub` the HTI
 *   token's `sub` (Patient, Practitioner or RelatedPerson), `aud` and `azp` the client, no
 *   `fhirUser`;
 * - its answer at /authorize to a request it refuses (a bad launch token, another `aud` or
 *   scope, anything else wrong): a plain 400 with the reference's one line of text, never a
 *   redirect to the module (AUTH e6383ae `oauth_server/views.py` `handle_authorize_request`);
 * - RS512 for every JWT it signs, id_tokens and access tokens (AUTH `TokenService`);
 * - the SMART discovery document of a Koppeltaal domain.
 */
import { randomUUID } from 'node:crypto';

import * as jose from 'jose';

/** Client assertion algorithms a Koppeltaal domain accepts (AUTH accepts RS512, RS384, ES384). */
export const KT_CLIENT_AUTH_ALGS = Object.freeze(['RS512', 'RS384', 'ES384']);

/** The scope of an HTI launch (TOP-KT-007): who the user is, nothing on FHIR. */
export const KT_LAUNCH_SCOPES = Object.freeze(['launch', 'openid', 'fhirUser']);

/** Lifetime of Koppeltaal access tokens (AUTH's default, 5 minutes). */
export const KT_TOKEN_TTL = 300;

/** The access token of an HTI launch: useless on the FHIR service, by design. */
export const NOOP_ACCESS_TOKEN = 'NOOP';

/**
 * The algorithm of every JWT the domain's auth service signs: AUTH e6383ae
 * `oauth_server/service.py` `TokenService._get_jwt_token` puts `alg: RS512` in the header of
 * id_tokens and access tokens alike (and names the key by its thumbprint, as `kid`).
 */
export const KT_SIGNING_ALG = 'RS512';

/**
 * What AUTH answers at /authorize when it refuses (e6383ae `oauth_server/views.py`), each a
 * plain `400` whose whole body is the line below (Flask: `text/html; charset=utf-8`), the
 * person's browser staying at the auth service. BAD_LAUNCH: the launch token is missing or
 * fails `HtiTokenVerifier` (format, signature, exp, jti replay, aud = the module's Device,
 * iss) or has no `sub`; BAD_AUDIENCE: `aud` is not the FHIR base (`assert ... "Invalid
 * audience"`, checked before the token); BAD_SCOPE: the scope is not exactly `launch openid
 * fhirUser` (checked after the token).
 */
export const KT_AUTHORIZE_REFUSALS = Object.freeze({
  launch: 'Bad Request, invalid launch token',
  audience: 'Bad Request, assertion failed: Invalid audience',
  scope: 'Bad Request, invalid scope',
});

/** Whether `scope` is the HTI launch's scope exactly (AUTH `LAUNCH_SCOPE_ALLOWED`). */
export function isLaunchScope(scope) {
  const asked = new Set(typeof scope === 'string' ? scope.split(' ').filter(Boolean) : []);
  return asked.size === KT_LAUNCH_SCOPES.length && KT_LAUNCH_SCOPES.every((s) => asked.has(s));
}

// HTI 2.0 allows asymmetric algorithms only: a launcher never shares a secret with a module.
const HTI_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512'];
const HTI_CLOCK_TOLERANCE = 30; // seconds
const FHIR_ID = '[A-Za-z0-9\\-.]{1,64}';
// The launch token's references: claim -> [pattern, what it must look like, required].
const REFERENCE_CLAIMS = {
  // TOP-KT-007: the launching user, "Patient, Practitioner of RelatedPerson".
  sub: [
    new RegExp(`^(Patient|Practitioner|RelatedPerson)/${FHIR_ID}$`),
    'Patient/<id>, Practitioner/<id> or RelatedPerson/<id>', true,
  ],
  resource: [new RegExp(`^Task/${FHIR_ID}$`), 'Task/<id>', true],
  definition: [new RegExp(`^ActivityDefinition/${FHIR_ID}$`), 'ActivityDefinition/<id>', true],
  patient: [new RegExp(`^Patient/${FHIR_ID}$`), 'Patient/<id>', false],
};

/**
 * An app's role: the `system/...` scopes of its registration (with their `?resource-origin=`
 * narrowing), or undefined when it has none.
 */
export function roleScope(client) {
  const scopes = (client?.scope ?? '').split(' ').filter((s) => s.startsWith('system/'));
  return scopes.length ? scopes.join(' ') : undefined;
}

/** A launch token that failed a check: `check` names it, `error` is the OAuth error code. */
export class HtiLaunchError extends Error {
  constructor(check, description, error = 'access_denied') {
    super(description);
    this.check = check;
    this.error = error;
  }
}

function isPublicKeySet(client) {
  return Array.isArray(client?.jwks?.keys) && client.jwks.keys.length > 0;
}

/**
 * Verify HTI launch tokens for one domain. `clients` are the registrations: a launch token's
 * `iss` must be one of them with a registered key set (in the sandbox: the portal). Each
 * accepted `jti` is remembered until its token expires, so a second use is refused.
 */
export function createHtiVerifier({ clients, now = () => Date.now() / 1000 }) {
  const keySets = new Map(
    [...clients].filter(isPublicKeySet).map((c) => [c.client_id, jose.createLocalJWKSet(c.jwks)]),
  );
  const seen = new Map(); // `${iss} ${jti}` -> exp

  function forgetExpired(at) {
    for (const [key, exp] of seen) {
      if (exp + HTI_CLOCK_TOLERANCE < at) {
        seen.delete(key);
      }
    }
  }

  /**
   * Check `token` for a launch of `clientId`; resolves to its claims, or throws an
   * HtiLaunchError that says which check failed.
   */
  async function verify(token, clientId) {
    if (typeof token !== 'string' || token.split('.').length !== 3) {
      throw new HtiLaunchError('format', 'launch is not an HTI launch token (a signed JWT)', 'invalid_request');
    }
    let unverified;
    try {
      unverified = jose.decodeJwt(token);
    } catch {
      throw new HtiLaunchError('format', 'launch is not an HTI launch token (a signed JWT)', 'invalid_request');
    }
    const keySet = keySets.get(unverified.iss);
    if (!keySet) {
      throw new HtiLaunchError(
        'issuer',
        `launch token issuer ${JSON.stringify(unverified.iss ?? null)} is not a launcher of this domain`,
      );
    }
    const at = now();
    let payload;
    try {
      ({ payload } = await jose.jwtVerify(token, keySet, {
        algorithms: HTI_ALGS,
        clockTolerance: HTI_CLOCK_TOLERANCE,
        currentDate: new Date(at * 1000),
        requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat', 'jti'],
      }));
    } catch (error) {
      throw launchErrorFrom(error);
    }
    if (typeof payload.iat !== 'number' || payload.iat > at + HTI_CLOCK_TOLERANCE) {
      throw new HtiLaunchError('iat', 'launch token iat is in the future: it is not valid yet');
    }
    const expected = `Device/${clientId}`;
    const audience = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
    if (!audience.includes(expected)) {
      throw new HtiLaunchError(
        'audience',
        `launch token audience ${JSON.stringify(payload.aud)} is not ${expected}: it is for another module`,
      );
    }
    for (const [claim, [pattern, form, required]] of Object.entries(REFERENCE_CLAIMS)) {
      const value = payload[claim];
      if ((value !== undefined || required) && !(typeof value === 'string' && pattern.test(value))) {
        throw new HtiLaunchError('claims', `launch token claim ${claim} must be ${form}`, 'invalid_request');
      }
    }
    if (payload.intent !== undefined && typeof payload.intent !== 'string') {
      throw new HtiLaunchError('claims', 'launch token claim intent must be a string', 'invalid_request');
    }
    forgetExpired(at);
    const key = `${payload.iss} ${payload.jti}`;
    if (seen.has(key)) {
      throw new HtiLaunchError('replayed', 'launch token replayed: its jti has been used before');
    }
    seen.set(key, payload.exp);
    return payload;
  }

  return { verify };
}

function launchErrorFrom(error) {
  if (error instanceof jose.errors.JWTExpired) {
    return new HtiLaunchError('expired', 'launch token expired (exp is in the past)');
  }
  if (error instanceof jose.errors.JWTClaimValidationFailed) {
    if (error.claim === 'nbf') {
      return new HtiLaunchError('nbf', 'launch token is not valid yet (nbf is in the future)');
    }
    return new HtiLaunchError('claims', `launch token claim ${error.claim} is missing or invalid`, 'invalid_request');
  }
  if (
    error instanceof jose.errors.JWSSignatureVerificationFailed
    || error instanceof jose.errors.JWKSNoMatchingKey
    || error instanceof jose.errors.JWKSMultipleMatchingKeys
    || error instanceof jose.errors.JOSEAlgNotAllowed
    || error instanceof jose.errors.JOSENotSupported
  ) {
    return new HtiLaunchError('signature', "launch token signature does not verify with the launcher's key");
  }
  return new HtiLaunchError('format', 'launch is not an HTI launch token (a signed JWT)', 'invalid_request');
}

/** The launch context an HTI token gives: what the token response passes on (TOP-KT-007). */
export function htiContext(claims) {
  return Object.fromEntries(
    Object.entries({
      resource: claims.resource,
      definition: claims.definition,
      patient: claims.patient,
      sub: claims.sub,
      intent: claims.intent,
    }).filter(([, value]) => value !== undefined),
  );
}

/**
 * The token response of an HTI launch's code exchange: a NOOP access token, the id_token,
 * the granted launch scopes and the launch context; nothing else (no refresh token).
 */
export function htiTokenResponse({ idToken, grantedScopes, context }) {
  const body = {
    access_token: NOOP_ACCESS_TOKEN,
    token_type: 'Bearer',
    expires_in: KT_TOKEN_TTL,
    scope: KT_LAUNCH_SCOPES.filter((s) => grantedScopes.has(s)).join(' '),
  };
  if (idToken) {
    body.id_token = idToken;
  }
  return { ...body, ...context };
}

/**
 * The id_token of an HTI launch's code exchange, as the reference auth service signs it: its own
 * random `nonce` and `jti`, `iss` = `issuer` with a trailing slash (the reference's Flask
 * `request.url_root`), `sub` the launch token's user, `aud` and `azp` the client, five minutes.
 * `key` is the service's private signing JWK (its `kid` names it in the JWKS), KT_SIGNING_ALG.
 */
export async function referenceIdToken({ issuer, clientId, sub, key, now = () => Date.now() / 1000 }) {
  const at = Math.floor(now());
  return new jose.SignJWT({
    iss: `${issuer.replace(/\/+$/, '')}/`,
    aud: clientId,
    iat: at,
    nbf: at,
    exp: at + KT_TOKEN_TTL,
    nonce: randomUUID(),
    jti: randomUUID(),
    sub,
    azp: clientId,
  }).setProtectedHeader({ alg: key.alg, kid: key.kid }).sign(await jose.importJWK(key, key.alg));
}

/** SMART discovery of a Koppeltaal domain (TOP-KT-016): what the module needs, nothing more. */
export function koppeltaalSmartConfiguration({ issuer, urlFor, roles }) {
  return {
    issuer,
    jwks_uri: urlFor('jwks'),
    authorization_endpoint: urlFor('authorization'),
    token_endpoint: urlFor('token'),
    token_endpoint_auth_methods_supported: ['private_key_jwt'],
    token_endpoint_auth_signing_alg_values_supported: [...KT_CLIENT_AUTH_ALGS],
    grant_types_supported: ['authorization_code', 'client_credentials'],
    scopes_supported: [...KT_LAUNCH_SCOPES, ...new Set(roles.flatMap((r) => r.split(' ')))],
    response_types_supported: ['code'],
    code_challenge_methods_supported: ['S256'],
    // No id_token_signing_alg_values_supported: neither FSRV's smart-configuration
    // (`application.yaml` `smart.configuration`) nor AUTH's names one; the id_token is RS512.
    capabilities: [
      'launch-ehr', 'client-confidential-asymmetric', 'sso-openid-connect', 'authorize-post',
      'permission-v2',
    ],
  };
}
