/**
 * The sandbox's Koppeltaal portal (node src/main.mjs --koppeltaal): the launcher of a
 * Koppeltaal domain, playing the EHR/portal app `portal` (Device/portal). It is a client like
 * any other: it gets a backend token with its own key (client_credentials, private_key_jwt)
 * and talks to the FHIR server over HTTP, so its Tasks carry resource-origin Device/portal.
 *
 *   GET  {portal}                 assign a module (Toewijzen / Assign) and list the Tasks
 *   POST {portal}/assign          the assign form: creates a KT2_Task, then back to the list
 *   POST {portal}/tasks           JSON {patient, practitioner, definition}: creates the Task, 201
 *   GET  {portal}/launch?task=ID&as=patient|practitioner[&practitioner=ID]
 *        an auto-submitting form that POSTs `launch` (an HTI 2.0 token signed with the
 *        portal's key) and `iss` (the FHIR base) to the module's Endpoint address.
 *        Test knobs (sandbox only): expired=1, jti=VALUE, patient=ID, definition=ID, intent=X.
 *
 * Pages are in Dutch first, English after: they are what a care professional sees.
 */
import { randomUUID } from 'node:crypto';

import * as jose from 'jose';

import { escapeHtml, sendHtml } from './auth-server.mjs';
import {
  ENDPOINT_EXTENSION_URL, INSTANTIATES_URL, PUBLISHER_ID_URL, RESOURCE_ORIGIN_URL, profileUrl,
} from './koppeltaal.mjs';

export const PORTAL_TASK_SYSTEM = 'http://fhir-burnout.example/portal-task';

const HTI_TTL = 300; // seconds: HTI 2.0 allows at most five minutes
const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;
const FHIR_JSON = 'application/fhir+json';

/** A request the portal refuses, with a message for the person (Dutch / English). */
class PortalError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** A FHIR id, from `id` or `Type/id`; a PortalError when it is neither. */
function fhirId(type, value, label) {
  const text = typeof value === 'string' ? value.trim() : '';
  const id = text.startsWith(`${type}/`) ? text.slice(type.length + 1) : text;
  if (!FHIR_ID.test(id)) {
    throw new PortalError(400, `Kies een ${label.nl} / Choose a ${label.en} (${type} id).`);
  }
  return id;
}

const LABELS = {
  patient: { nl: 'cliënt', en: 'client' },
  practitioner: { nl: 'behandelaar', en: 'practitioner' },
  definition: { nl: 'module', en: 'module' },
  task: { nl: 'taak', en: 'task' },
};

function extensionValue(resource, url, key) {
  return (resource?.extension ?? []).find((e) => e.url === url)?.[key];
}

function referenceId(reference, type) {
  const ref = reference?.reference ?? '';
  return ref.startsWith(`${type}/`) ? ref.slice(type.length + 1) : undefined;
}

function displayName(resource) {
  const name = resource?.name?.[0];
  if (typeof name === 'string') return name; // ActivityDefinition.name
  if (name?.text) return name.text;
  const parts = [...(name?.given ?? []), name?.family].filter(Boolean);
  return parts.length ? parts.join(' ') : resource?.title ?? resource?.id ?? '?';
}

/**
 * Build the portal. `clientId` and `privateJwk` are the portal's registration and key (it
 * signs its client assertions and the launch tokens with it); `tokenUrl` is the domain's
 * token endpoint; `publisherId` picks the modules offered (KT2PublisherId).
 */
export function createPortal({
  portalUrl, fhirBase, tokenUrl, clientId = 'portal', privateJwk, publisherId = 'fhir-burnout',
}) {
  if (!privateJwk?.kid || !privateJwk?.alg) {
    throw new TypeError('createPortal: privateJwk must be a private JWK with kid and alg');
  }
  const env = {
    portalUrl: portalUrl.replace(/\/+$/, ''),
    fhirBase: fhirBase.replace(/\/+$/, ''),
    tokenUrl,
    clientId,
    privateJwk,
    publisherId,
    mountPath: new URL(portalUrl).pathname.replace(/\/+$/, ''),
    token: undefined, // {value, expiresAt}
  };
  env.keyPromise = jose.importJWK(privateJwk, privateJwk.alg);

  return { handle: (req, res) => handle(env, req, res) };
}

// ---------------------------------------------------------------------------------------------
// The portal as a FHIR client (SMART Backend Services with its own key)
// ---------------------------------------------------------------------------------------------

async function accessToken(env) {
  const now = Math.floor(Date.now() / 1000);
  if (env.token && env.token.expiresAt > now + 30) {
    return env.token.value;
  }
  const assertion = await new jose.SignJWT({ jti: randomUUID() })
    .setProtectedHeader({ alg: env.privateJwk.alg, kid: env.privateJwk.kid, typ: 'JWT' })
    .setIssuer(env.clientId)
    .setSubject(env.clientId)
    .setAudience(env.tokenUrl)
    .setIssuedAt(now)
    .setExpirationTime(now + 60)
    .sign(await env.keyPromise);
  const response = await fetch(env.tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: assertion,
    }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok || !body.access_token) {
    throw new Error(`portal: no backend token (${response.status} ${body.error ?? ''})`);
  }
  env.token = { value: body.access_token, expiresAt: now + (body.expires_in ?? 60) };
  return env.token.value;
}

/** One FHIR request as the portal; resolves to {status, body} (body: parsed JSON or null). */
async function fhir(env, method, path, resource) {
  const response = await fetch(`${env.fhirBase}/${path}`, {
    method,
    headers: {
      authorization: `Bearer ${await accessToken(env)}`,
      accept: FHIR_JSON,
      ...(resource ? { 'content-type': FHIR_JSON } : {}),
    },
    body: resource ? JSON.stringify(resource) : undefined,
  });
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  return { status: response.status, body };
}

async function read(env, type, id, label) {
  const { status, body } = await fhir(env, 'GET', `${type}/${encodeURIComponent(id)}`);
  if (status === 404 || status === 410) {
    throw new PortalError(404, `Onbekende ${label.nl} / Unknown ${label.en}: ${type}/${id}.`);
  }
  if (status !== 200) {
    throw new Error(`portal: reading ${type}/${id} answered ${status}`);
  }
  return body;
}

async function search(env, query) {
  const { status, body } = await fhir(env, 'GET', query);
  if (status !== 200) {
    throw new Error(`portal: searching ${query.split('?')[0]} answered ${status}`);
  }
  return (body?.entry ?? []).map((e) => e.resource).filter(Boolean);
}

/** The modules offered: ActivityDefinitions whose KT2PublisherId is ours, active ones first. */
async function modules(env) {
  const all = await search(env, 'ActivityDefinition?_count=200');
  return all.filter((ad) => extensionValue(ad, PUBLISHER_ID_URL, 'valueId') === env.publisherId);
}

// ---------------------------------------------------------------------------------------------
// Assigning a module: a KT2_Task created by the portal
// ---------------------------------------------------------------------------------------------

/** The KT2_Task the portal creates when a practitioner assigns a module to a patient. */
function portalTask({ patient, practitioner, definition, identifier = randomUUID() }) {
  return {
    resourceType: 'Task',
    meta: { profile: [profileUrl('Task')] },
    extension: [{ url: INSTANTIATES_URL, valueReference: { reference: `ActivityDefinition/${definition}` } }],
    identifier: [{ system: PORTAL_TASK_SYSTEM, value: identifier }],
    status: 'ready',
    intent: 'order',
    priority: 'routine',
    for: { reference: `Patient/${patient}` },
    owner: { reference: `Patient/${patient}` },
    requester: { reference: `Practitioner/${practitioner}` },
    authoredOn: new Date().toISOString(),
  };
}

/**
 * Create the Task for {patient, practitioner, definition} (ids or references). Resolves to
 * {status, body}: 201 and the Task as stored, or the FHIR server's refusal.
 */
async function createTask(env, input) {
  const patient = fhirId('Patient', input?.patient, LABELS.patient);
  const practitioner = fhirId('Practitioner', input?.practitioner, LABELS.practitioner);
  const definition = fhirId('ActivityDefinition', input?.definition, LABELS.definition);
  // Refuse what a real portal would not offer, with a message a person can act on.
  await read(env, 'Patient', patient, LABELS.patient);
  await read(env, 'Practitioner', practitioner, LABELS.practitioner);
  await read(env, 'ActivityDefinition', definition, LABELS.definition);
  return fhir(env, 'POST', 'Task', portalTask({ patient, practitioner, definition }));
}

// ---------------------------------------------------------------------------------------------
// Launching: the HTI 2.0 launch token and the form that posts it to the module
// ---------------------------------------------------------------------------------------------

/**
 * What a launch of `query` posts: {address, launch, iss, claims}. The launch token says who
 * (`sub`), for which Task (`resource`) and module (`definition`), for whom (`patient`), and is
 * meant for the module's Device (`aud`, the ActivityDefinition's resource-origin).
 */
async function launchForm(env, query) {
  const taskId = fhirId('Task', query.get('task'), LABELS.task);
  const as = query.get('as') ?? 'patient';
  if (!['patient', 'practitioner'].includes(as)) {
    throw new PortalError(400, 'Start als cliënt of als behandelaar / Launch as=patient or as=practitioner.');
  }
  const task = await read(env, 'Task', taskId, LABELS.task);
  const adId = referenceId(extensionValue(task, INSTANTIATES_URL, 'valueReference'), 'ActivityDefinition');
  const patientId = referenceId(task.for, 'Patient');
  if (!adId || !patientId) {
    throw new PortalError(400, 'Deze taak verwijst niet naar een module en cliënt / This Task names no module and patient.');
  }
  const definition = await read(env, 'ActivityDefinition', adId, LABELS.definition);
  const endpointId = referenceId(extensionValue(definition, ENDPOINT_EXTENSION_URL, 'valueReference'), 'Endpoint');
  const endpoint = endpointId && await read(env, 'Endpoint', endpointId, { nl: 'endpoint', en: 'endpoint' });
  const module = extensionValue(definition, RESOURCE_ORIGIN_URL, 'valueReference')?.reference;
  if (!endpoint?.address || !module?.startsWith('Device/')) {
    throw new PortalError(400, 'Deze module heeft geen startadres / This module has no launch Endpoint or no Device.');
  }
  let sub = `Patient/${patientId}`;
  if (as === 'practitioner') {
    const chosen = query.get('practitioner') || referenceId(task.requester, 'Practitioner');
    sub = `Practitioner/${fhirId('Practitioner', chosen, LABELS.practitioner)}`;
  }
  const now = Math.floor(Date.now() / 1000);
  const iat = query.get('expired') === '1' ? now - 2 * HTI_TTL : now;
  const claims = {
    sub,
    resource: `Task/${taskId}`,
    definition: `ActivityDefinition/${query.has('definition') ? fhirId('ActivityDefinition', query.get('definition'), LABELS.definition) : adId}`,
    patient: `Patient/${query.has('patient') ? fhirId('Patient', query.get('patient'), LABELS.patient) : patientId}`,
  };
  const intent = query.get('intent') ?? (as === 'practitioner' ? 'plan' : undefined);
  if (intent) {
    claims.intent = intent;
  }
  const launch = await new jose.SignJWT(claims)
    .setProtectedHeader({ alg: env.privateJwk.alg, kid: env.privateJwk.kid, typ: 'JWT' })
    .setIssuer(env.clientId)
    .setAudience(module)
    .setJti(query.get('jti') || randomUUID())
    .setIssuedAt(iat)
    .setExpirationTime(iat + HTI_TTL)
    .sign(await env.keyPromise);
  return { address: endpoint.address, launch, iss: env.fhirBase, claims: { ...claims, aud: module, iss: env.clientId } };
}

// ---------------------------------------------------------------------------------------------
// Pages
// ---------------------------------------------------------------------------------------------

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="nl"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:system-ui,sans-serif;max-width:48em;margin:2em auto;padding:0 1em}
label{display:block;margin:.8em 0}select{min-width:20em}table{border-collapse:collapse}
td,th{padding:.3em .6em;border-bottom:1px solid #ddd;text-align:left}
form.inline{display:inline}[role=alert]{color:#b00020}[role=status]{color:#2e7d32}</style></head>
<body>${body}
<p><small>Sandbox Koppeltaal-portaal: verzonnen gegevens, geen echte cliënten. /
Sandbox Koppeltaal portal: synthetic data, no real patients.</small></p></body></html>`;
}

function options(list) {
  return list.map((r) => `<option value="${escapeHtml(r.id)}">${escapeHtml(displayName(r))} (${escapeHtml(r.id)})</option>`).join('');
}

async function indexPage(env, { message, error } = {}) {
  const [practitioners, patients, offered, tasks] = await Promise.all([
    search(env, 'Practitioner?_count=200'),
    search(env, 'Patient?_count=200'),
    modules(env),
    search(env, 'Task?_count=50&_sort=-_lastUpdated'),
  ]);
  const names = new Map([...practitioners, ...patients, ...offered]
    .map((r) => [`${r.resourceType}/${r.id}`, displayName(r)]));
  const nameOf = (reference) => names.get(reference?.reference) ?? reference?.reference ?? '';
  const path = escapeHtml(env.mountPath);
  const assign = offered.length
    ? `<form method="post" action="${path}/assign">
  <label>Behandelaar / Practitioner <select name="practitioner" required>${options(practitioners)}</select></label>
  <label>Cliënt / Client <select name="patient" required>${options(patients)}</select></label>
  <label>Module <select name="definition" required>${options(offered)}</select></label>
  <button type="submit">Toewijzen / Assign</button>
</form>`
    : `<p>Nog geen modules van <code>${escapeHtml(env.publisherId)}</code> gepubliceerd. /
No modules of <code>${escapeHtml(env.publisherId)}</code> published yet.</p>`;
  const rows = tasks.map((task) => {
    const definition = extensionValue(task, INSTANTIATES_URL, 'valueReference');
    const requester = referenceId(task.requester, 'Practitioner') ?? '';
    return `<tr><td><code>Task/${escapeHtml(task.id)}</code></td><td>${escapeHtml(nameOf(task.for))}</td>
<td>${escapeHtml(nameOf(definition))}</td><td>${escapeHtml(task.status)}</td><td>
<form class="inline" method="get" action="${path}/launch"><input type="hidden" name="task" value="${escapeHtml(task.id)}">
<button name="as" value="patient">Start als cliënt / Start as client</button></form>
<form class="inline" method="get" action="${path}/launch"><input type="hidden" name="task" value="${escapeHtml(task.id)}">
<input type="hidden" name="practitioner" value="${escapeHtml(requester)}">
<button name="as" value="practitioner">Open als behandelaar / Open as practitioner</button></form></td></tr>`;
  }).join('');
  const list = rows
    ? `<table><thead><tr><th>Taak / Task</th><th>Cliënt / Client</th><th>Module</th><th>Status</th><th></th></tr></thead>
<tbody>${rows}</tbody></table>`
    : '<p>Nog geen taken. / No tasks yet.</p>';
  const notice = (error ? `<p role="alert">${escapeHtml(error)}</p>` : '')
    + (message ? `<p role="status">${escapeHtml(message)}</p>` : '');
  return page('Koppeltaal-portaal / Koppeltaal portal', `<h1>Koppeltaal-portaal / Koppeltaal portal</h1>
${notice}<h2>Module toewijzen / Assign a module</h2>
${assign}
<h2>Taken / Tasks</h2>
${list}`);
}

function launchPage({ address, launch, iss }) {
  // A cross-origin form POST (HTI 2.0), submitted by the browser as soon as it loads.
  return page('Module starten / Launching the module', `<h1>Module starten / Launching the module</h1>
<form id="hti-launch" method="post" action="${escapeHtml(address)}">
<input type="hidden" name="launch" value="${escapeHtml(launch)}">
<input type="hidden" name="iss" value="${escapeHtml(iss)}">
<button type="submit">Doorgaan / Continue</button>
</form>
<script>document.getElementById('hti-launch').submit();</script>`);
}

// ---------------------------------------------------------------------------------------------
// HTTP plumbing
// ---------------------------------------------------------------------------------------------

async function readBody(req, limit = 64 * 1024) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > limit) {
      throw new PortalError(413, 'Te groot / Request too large.');
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function sendJson(res, status, body, contentType = 'application/json') {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function operationOutcome(message, code = 'invalid') {
  return { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code, diagnostics: message }] };
}

async function handle(env, req, res) {
  const url = new URL(req.url, env.portalUrl);
  const local = url.pathname.slice(env.mountPath.length).replace(/\/+$/, '') || '/';
  const json = local === '/tasks';
  try {
    if (local === '/' && ['GET', 'HEAD'].includes(req.method)) {
      const created = url.searchParams.get('created');
      const message = created && FHIR_ID.test(created)
        ? `Taak aangemaakt / Task created: Task/${created}` : undefined;
      return sendHtml(res, 200, await indexPage(env, { message }));
    }
    if (local === '/assign' && req.method === 'POST') {
      const form = new URLSearchParams(await readBody(req));
      const { status, body } = await createTask(env, Object.fromEntries(form));
      if (status !== 201) {
        const reason = body?.issue?.[0]?.diagnostics ?? `HTTP ${status}`;
        return sendHtml(res, 400, await indexPage(env, {
          error: `De taak is niet aangemaakt / The Task was not created: ${reason}`,
        }));
      }
      res.writeHead(303, { location: `${env.mountPath}/?created=${encodeURIComponent(body.id)}` });
      return res.end();
    }
    if (json && req.method === 'POST') {
      let input;
      try {
        input = JSON.parse(await readBody(req));
      } catch {
        throw new PortalError(400, 'The body must be JSON: {"patient", "practitioner", "definition"}.');
      }
      const { status, body } = await createTask(env, input);
      return sendJson(res, status, body, FHIR_JSON);
    }
    if (local === '/launch' && ['GET', 'HEAD'].includes(req.method)) {
      return sendHtml(res, 200, launchPage(await launchForm(env, url.searchParams)));
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    return res.end('not found');
  } catch (error) {
    if (!(error instanceof PortalError)) {
      console.error('portal:', error?.message ?? error);
    }
    const status = error instanceof PortalError ? error.status : 500;
    const message = error instanceof PortalError
      ? error.message : 'Interne fout in het sandbox-portaal / Internal error in the sandbox portal.';
    if (json) {
      return sendJson(res, status, operationOutcome(message, status === 500 ? 'exception' : 'invalid'), FHIR_JSON);
    }
    return sendHtml(res, status, page('Fout / Error', `<h1>Fout / Error</h1><p role="alert">${escapeHtml(message)}</p>
<p><a href="${escapeHtml(env.mountPath)}/">Terug naar het portaal / Back to the portal</a></p>`));
  }
}
