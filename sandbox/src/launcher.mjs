/**
 * The sandbox EHR's launcher: SMART App Launch 2.2 "EHR launch" from a picked practitioner and
 * patient. GET {launcherUrl} shows the form; GET {launcherUrl}?app=CLIENT_ID&practitioner=ID&
 * patient=ID registers the launch with the authorization server and redirects (302) to the app's
 * launch_uri with `iss` (the FHIR base) and `launch`. Without a practitioner the patient is the
 * user: a launch from the patient portal (`portal=1`: at the client's `portal_launch_uri`, when
 * it registered one). With `frame=1` it answers the EHR's chart page instead, which shows the
 * app in an iframe at that launch URL (how many EHRs show apps); the page is on the launcher's
 * origin, so the app in it is cross-site unless it shares this host.
 */
import { escapeHtml, sendHtml } from './auth-server.mjs';

const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;

class LaunchError extends Error {}

function displayName(entry) {
  return typeof entry.name === 'string' && entry.name ? entry.name : entry.id;
}

function findById(list, id) {
  return (list ?? []).find((entry) => entry.id === id);
}

/** Check one id parameter against the seed list (when the seed lists any). */
function checkId(kind, id, list) {
  if (!FHIR_ID.test(id)) {
    throw new LaunchError(`${kind} "${id}" is not a valid FHIR id.`);
  }
  if (list?.length && !findById(list, id)) {
    throw new LaunchError(`Unknown ${kind.toLowerCase()} "${id}": it is not in the sandbox seed.`);
  }
}

/** Validate a scripted launch request; returns the app and the registerLaunch argument. */
function parseLaunch(query, { apps, seed }) {
  const appId = query.get('app');
  const app = apps.get(appId);
  if (!app) {
    throw new LaunchError(appId
      ? `Unknown app "${appId}": no registered client with that id has a launch_uri.`
      : 'Choose an app (the app parameter is missing).');
  }
  const portal = query.get('portal') === '1';
  const practitioner = portal ? '' : (query.get('practitioner') ?? '');
  const patient = query.get('patient') ?? '';
  const encounter = query.get('encounter') ?? '';
  if (!patient && !practitioner) {
    throw new LaunchError('Choose a patient (the patient parameter is missing).');
  }
  if (patient) checkId('Patient', patient, seed.patients);
  if (practitioner) checkId('Practitioner', practitioner, seed.practitioners);
  if (encounter) checkId('Encounter', encounter);
  const launch = {
    patient: patient || undefined,
    practitioner: practitioner || undefined,
    encounter: encounter || undefined,
    needPatientBanner: query.get('need_patient_banner') !== 'false',
    smartStyleUrl: query.get('smart_style_url') || undefined,
    intent: query.get('intent') || undefined,
  };
  return { app, launch, portal };
}

function launchLocation(app, fhirBase, launchId, portal) {
  // A portal registers the app with a launch URL of its own where the app has one.
  const url = new URL((portal && app.portal_launch_uri) || app.launch_uri);
  url.searchParams.set('iss', fhirBase);
  url.searchParams.set('launch', launchId);
  return url.href;
}

function options(list, { blank } = {}) {
  const rows = (list ?? []).map((entry) => `<option value="${escapeHtml(entry.id)}">${
    escapeHtml(displayName(entry))} (${escapeHtml(entry.id)})</option>`);
  return [...(blank ? [`<option value="">${escapeHtml(blank)}</option>`] : []), ...rows].join('');
}

function launcherPage({ launcherUrl, apps, seed }, message) {
  const appList = [...apps.values()].map((app) => ({ id: app.client_id, name: app.client_name }));
  const error = message ? `<p role="alert" style="color:#b00020">${escapeHtml(message)}</p>` : '';
  const action = escapeHtml(new URL(launcherUrl).pathname);
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Sandbox EHR launcher</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:system-ui,sans-serif;max-width:40em;margin:2em auto;padding:0 1em}
label{display:block;margin:.8em 0}select{min-width:20em}</style></head>
<body><h1>Sandbox EHR launcher</h1>${error}
<form method="get" action="${action}">
  <label>App <select name="app" required>${options(appList)}</select></label>
  <label>Practitioner <select name="practitioner">${options(seed.practitioners, { blank: '(none: the patient is the user)' })}</select></label>
  <label>Patient <select name="patient" required>${options(seed.patients)}</select></label>
  <button type="submit">Launch</button>
  <button type="submit" name="portal" value="1">Open from the patient portal (as the patient)</button>
  <button type="submit" name="frame" value="1">Show in the chart (iframe)</button>
</form>
<p><small>Sandbox EHR: synthetic data, no real patients.</small></p></body></html>`;
}

/** The EHR's chart page with the app embedded: the iframe opens the launch URL. */
function chartPage(app, location) {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Sandbox EHR chart</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:system-ui,sans-serif;margin:1em}
iframe{width:100%;height:85vh;border:1px solid #888}</style></head>
<body><h1>Sandbox EHR chart</h1>
<iframe title="${escapeHtml(app.client_name ?? app.client_id)}" src="${escapeHtml(location)}"></iframe>
<p><small>Sandbox EHR: synthetic data, no real patients.</small></p></body></html>`;
}

/**
 * Build the launcher. `clients` are the authorization server's resolved clients (those with a
 * `launch_uri` can be launched); `auth` is the authorization server (for registerLaunch).
 */
export function createLauncher({ launcherUrl, fhirBase, auth, clients, seed = {} }) {
  const env = {
    launcherUrl,
    fhirBase: fhirBase.replace(/\/+$/, ''),
    auth,
    seed: seed ?? {},
    apps: new Map((clients ?? auth.clients ?? [])
      .filter((client) => client.launch_uri)
      .map((client) => [client.client_id, client])),
  };

  async function handle(req, res) {
    if (!['GET', 'HEAD'].includes(req.method)) {
      res.writeHead(405, { allow: 'GET, HEAD' });
      res.end();
      return;
    }
    const query = new URL(req.url, launcherUrl).searchParams;
    if (!query.has('app')) {
      sendHtml(res, 200, launcherPage(env));
      return;
    }
    let launch;
    try {
      launch = parseLaunch(query, env);
    } catch (error) {
      if (!(error instanceof LaunchError)) throw error;
      sendHtml(res, 400, launcherPage(env, error.message));
      return;
    }
    const launchId = env.auth.registerLaunch(launch.launch);
    const location = launchLocation(launch.app, env.fhirBase, launchId, launch.portal);
    if (query.get('frame') === '1') {
      sendHtml(res, 200, chartPage(launch.app, location));
      return;
    }
    res.writeHead(302, { location });
    res.end();
  }

  return { handle };
}
