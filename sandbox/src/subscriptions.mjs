// FHIR R4 Subscriptions with rest-hook channels for the sandbox FHIR server (item 14 of
// fhir-server.mjs). https://hl7.org/fhir/R4/subscription.html
//
// A client writes a Subscription with status `requested`; the repository hands it to prepare()
// (validation, requested -> active) before storing it. After every committed request the server
// calls afterCommit() with the resources that request stored, in write order: every active
// Subscription whose criteria match a new version gets a notification, queued per Subscription
// and sent to its endpoint one at a time (an empty POST, or with a payload a PUT of the resource to
// [endpoint]/[type]/[id], as R4 says), after the write has been answered. A notification
// that still fails after its retries puts the Subscription in `error` (through `markError`,
// which writes a new version); it then gets nothing until the client sets it to `requested`.
//
// Matching is @medplum/core's own (parseSearchRequest + matchesSearchRequest): the same matcher
// the memory repository uses for searches, so a resource notifies exactly when a search with
// the criteria would find it (chains and _has, which need the store, are refused up front).
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { badRequest, matchesSearchRequest, OperationOutcomeError, parseSearchRequest } from '@medplum/core';

export const DELIVERY_TIMEOUT_MS = 5000;
export const RETRY_DELAYS_MS = [200, 1000]; // waits before the 2nd and 3rd attempt: 3 attempts

const JSON_PAYLOADS = new Set(['application/fhir+json', 'application/json']);
const CLIENT_STATUSES = new Set(['requested', 'off']); // R4: the server sets active and error
const CRITERIA = /^([A-Z][A-Za-z]+)(?:\?(.*))?$/s;
const HEADER = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$/s; // RFC 9110 token ":" value
const BAD_HEADER_VALUE = /[^\t\x20-\x7e\x80-\xff]/; // what node:http refuses (CR, LF, NUL, ...)
const MAX_ERROR_TEXT = 300;

function invalid(text, expression) {
  return new OperationOutcomeError(badRequest(text, expression));
}

/**
 * Parse Subscription.criteria (`[type]?[parameters]`) into a SearchRequest, or throw a 400.
 * `isCriteriaFilter(type, key)` says whether a parameter is a plain filter on that type.
 */
export function parseCriteria(criteria, { knownTypes, isCriteriaFilter }) {
  const expression = 'Subscription.criteria';
  const match = typeof criteria === 'string' ? CRITERIA.exec(criteria) : null;
  if (!match) {
    throw invalid(
      `Subscription.criteria must be a search of the form [type]?[parameters], e.g. ` +
        `ServiceRequest?status=active; got ${JSON.stringify(criteria)}`,
      expression,
    );
  }
  const [, resourceType, query = ''] = match;
  if (!knownTypes.has(resourceType)) {
    throw invalid(`Subscription.criteria names an unknown resource type: ${resourceType}`, expression);
  }
  for (const [key] of new URLSearchParams(query)) {
    if (!key || !isCriteriaFilter(resourceType, key)) {
      throw invalid(
        `Subscription.criteria: ${JSON.stringify(key)} is not a search parameter of ${resourceType} that ` +
          `this server can match (chains, _has and result parameters such as _count are not supported)`,
        expression,
      );
    }
  }
  try {
    return parseSearchRequest(criteria);
  } catch (err) {
    throw invalid(`Subscription.criteria does not parse: ${err.message}`, expression);
  }
}

/** The channel.header strings as [name, value] pairs, or throw a 400. */
function parseHeaders(headers = []) {
  return headers.map((line, i) => {
    const match = HEADER.exec(line);
    if (!match || BAD_HEADER_VALUE.test(match[2])) {
      throw invalid(
        `Subscription.channel.header must hold HTTP headers such as "Authorization: Bearer abc"; ` +
          `got ${JSON.stringify(line)}`,
        `Subscription.channel.header[${i}]`,
      );
    }
    return [match[1], match[2]];
  });
}

/** The endpoint as a URL, or throw a 400. */
function parseEndpoint(endpoint) {
  let url;
  try {
    url = new URL(endpoint);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw invalid(
      `Subscription.channel.endpoint must be an absolute http(s) URL for a rest-hook channel; ` +
        `got ${JSON.stringify(endpoint)}`,
      'Subscription.channel.endpoint',
    );
  }
  return url;
}

/** Whether the channel sends the resource (payload), or throw a 400 for a payload not offered. */
function parsePayload(payload) {
  if (payload === undefined) {
    return false; // R4: no payload, the notification has no body
  }
  const mediaType = String(payload).split(';')[0].trim().toLowerCase();
  if (!JSON_PAYLOADS.has(mediaType)) {
    throw invalid(
      `Subscription.channel.payload ${JSON.stringify(payload)} is not supported: use ` +
        `application/fhir+json or application/json, or leave it out for notifications without a body`,
      'Subscription.channel.payload',
    );
  }
  return true;
}

/** Everything a delivery needs, from one stored version of an active Subscription. */
function channelOf(subscription, options) {
  const { channel } = subscription;
  return {
    id: subscription.id,
    versionId: subscription.meta?.versionId,
    request: parseCriteria(subscription.criteria, options),
    endpoint: parseEndpoint(channel.endpoint).href,
    headers: parseHeaders(channel.header),
    withPayload: parsePayload(channel.payload),
    end: subscription.end ? Date.parse(subscription.end) : undefined,
  };
}

/**
 * The Subscriptions of one FHIR server: validates client writes of Subscription resources,
 * matches committed writes against the active ones and delivers the notifications.
 *
 * `markError(id, versionId, reason)` must store the Subscription (if still at that version and
 * active) with status `error` and `error` = reason; it returns a promise. `mayNotify(id,
 * resource)`, when given, is asked for each match: false drops that notification (Koppeltaal's
 * narrowing to what the subscriber may read; a throw notifies, as the reference does).
 */
export class SubscriptionManager {
  constructor({
    knownTypes,
    isCriteriaFilter,
    markError,
    timeoutMs = DELIVERY_TIMEOUT_MS,
    retryDelaysMs = RETRY_DELAYS_MS,
    ca = undefined,
    mayNotify = undefined,
    log = (message) => console.error(`sandbox: ${message}`),
  }) {
    this.criteriaOptions = { knownTypes, isCriteriaFilter };
    this.mayNotify = mayNotify;
    this.markError = markError;
    this.timeoutMs = timeoutMs;
    this.retryDelaysMs = retryDelaysMs;
    // PEM certificates trusted for https endpoints besides Node's own (and NODE_EXTRA_CA_CERTS'):
    // a test's self-signed receiver.
    this.tls = ca ? { ca: [...tls.rootCertificates, ...[ca].flat()] } : {};
    this.log = log;
    this.active = new Map(); // id -> channelOf(the stored, active version)
    this.queues = new Map(); // id -> { notes: [], busy }
    this.failed = new Map(); // id -> versionId whose delivery failed (until its error is stored)
    this.timers = new Set();
    this.requests = new Set();
    this.closed = false;
  }

  /**
   * A client's create or update of a Subscription, already valid FHIR: check what this server
   * supports and return the version to store (`requested` becomes `active`). `previous` is the
   * stored version an update replaces, if any. Throws a 400 OperationOutcome.
   */
  prepare(subscription, previous) {
    const channel = subscription.channel ?? {};
    if (channel.type !== 'rest-hook') {
      throw invalid(
        `Subscription.channel.type ${JSON.stringify(channel.type)} is not supported: this server only ` +
          `supports rest-hook channels`,
        'Subscription.channel.type',
      );
    }
    if (channel.endpoint === undefined) {
      throw invalid('A rest-hook Subscription needs channel.endpoint', 'Subscription.channel.endpoint');
    }
    parseEndpoint(channel.endpoint);
    parseHeaders(channel.header);
    parsePayload(channel.payload);
    parseCriteria(subscription.criteria, this.criteriaOptions);

    const { status } = subscription;
    if (!CLIENT_STATUSES.has(status) && status !== previous?.status) {
      throw invalid(
        `A client may set Subscription.status only to requested or off (the server sets active and ` +
          `error); to restart a Subscription, set it to requested`,
        'Subscription.status',
      );
    }
    if (status !== 'requested') {
      return subscription; // off, or active/error kept as stored
    }
    const accepted = { ...subscription, status: 'active' }; // no handshake: R4 makes it optional
    delete accepted.error;
    return accepted;
  }

  /**
   * After a commit: `changes` lists what the request stored, in order (`{resource}` for a new
   * version, `{resourceType, id, deleted: true}` for a delete); `storedSubscriptions()` returns
   * the store's current Subscriptions. `extraHeaders`, when given, makes the headers each
   * notification attempt adds (Koppeltaal's trace headers). Never throws: a notification must
   * not fail the write.
   */
  afterCommit(changes, storedSubscriptions, extraHeaders = undefined) {
    if (this.closed || !changes.length) {
      return;
    }
    try {
      if (changes.some((c) => (c.resource?.resourceType ?? c.resourceType) === 'Subscription')) {
        this.refresh(storedSubscriptions());
      }
      if (!this.active.size) {
        return;
      }
      const now = Date.now();
      for (const { resource } of changes) {
        if (resource) {
          this.match(resource, now, extraHeaders);
        }
      }
    } catch (err) {
      this.log(`subscriptions: matching failed: ${err.stack ?? err}`);
    }
  }

  /** Rebuild the active set from the stored Subscriptions (at start, and after their writes). */
  refresh(storedSubscriptions) {
    const active = new Map();
    for (const subscription of storedSubscriptions) {
      const { id } = subscription;
      const versionId = subscription.meta?.versionId;
      if (this.failed.has(id) && this.failed.get(id) !== versionId) {
        this.failed.delete(id); // a newer version (ours with status error, or the client's)
      }
      if (subscription.status !== 'active' || this.failed.get(id) === versionId) {
        continue;
      }
      const known = this.active.get(id);
      if (known?.versionId === versionId) {
        active.set(id, known);
        continue;
      }
      try {
        active.set(id, channelOf(subscription, this.criteriaOptions));
      } catch (err) {
        // Stored before this server checked Subscriptions (a journal), or no longer valid.
        this.log(`subscriptions: Subscription/${id} is ignored: ${err.message}`);
      }
    }
    for (const id of this.active.keys()) {
      if (!active.has(id)) {
        this.drop(id);
      }
    }
    const stored = new Set(storedSubscriptions.map((s) => s.id));
    for (const id of this.failed.keys()) {
      if (!stored.has(id)) {
        this.failed.delete(id); // deleted before its error was stored
      }
    }
    this.active = active;
  }

  match(resource, now, extraHeaders) {
    let body;
    for (const channel of this.active.values()) {
      if (channel.request.resourceType !== resource.resourceType || channel.end <= now) {
        continue;
      }
      let matches = false;
      try {
        matches = matchesSearchRequest(resource, channel.request);
      } catch (err) {
        this.log(`subscriptions: Subscription/${channel.id} could not be matched: ${err.message}`);
      }
      if (matches && this.mayNotify) {
        try {
          matches = this.mayNotify(channel.id, resource);
        } catch (err) {
          this.log(`subscriptions: Subscription/${channel.id} could not be narrowed, notified: ${err.message}`);
        }
      }
      if (matches) {
        if (channel.withPayload) {
          body ??= JSON.stringify(resource); // the stored version, as the write stored it
        }
        const what = `${resource.resourceType}/${resource.id}/_history/${resource.meta?.versionId}`;
        // R4 §2.46.7.1: with a payload the endpoint is a service base and the resource is
        // PUT to [endpoint]/[type]/[id]; without one, an empty POST to the endpoint.
        const path = channel.withPayload ? `${resource.resourceType}/${resource.id}` : undefined;
        this.enqueue(channel, { what, path, body: channel.withPayload ? body : undefined, extraHeaders });
      }
    }
  }

  enqueue(channel, note) {
    let queue = this.queues.get(channel.id);
    if (!queue) {
      queue = { notes: [], busy: false };
      this.queues.set(channel.id, queue);
    }
    queue.notes.push({ ...note, channel });
    if (!queue.busy) {
      queue.busy = true;
      // After the response: the write's request is answered in the microtasks before this.
      setImmediate(() => this.drain(channel.id, queue));
    }
  }

  /** Deliver a Subscription's notifications one at a time, in order; stop at a failure. */
  async drain(id, queue) {
    try {
      while (queue.notes.length && !this.closed) {
        const note = queue.notes.shift();
        const failure = await this.deliver(note);
        if (failure && !this.closed) {
          this.fail(note, failure);
        }
      }
    } catch (err) {
      this.log(`subscriptions: delivery for Subscription/${id} stopped: ${err.stack ?? err}`);
      queue.notes.length = 0;
    } finally {
      queue.busy = false;
      if (this.queues.get(id) === queue && !queue.notes.length) {
        this.queues.delete(id);
      }
    }
  }

  /** Send one notification, retrying; undefined when delivered, else the last failure's text. */
  async deliver(note) {
    let failure;
    for (let attempt = 0; attempt <= this.retryDelaysMs.length; attempt += 1) {
      if (attempt > 0 && !this.closed) {
        await this.sleep(this.retryDelaysMs[attempt - 1]);
      }
      if (this.closed) {
        return undefined;
      }
      failure = await this.post(note.channel, note.body, note.path, note.extraHeaders?.());
      if (!failure) {
        return undefined;
      }
    }
    const attempts = this.retryDelaysMs.length + 1;
    return `Notification for ${note.what} to ${note.channel.endpoint} failed ${attempts} times; last: ${failure}`;
  }

  /**
   * A notification could not be delivered: the Subscription version it was matched for goes to
   * `error` and its other notifications are dropped. When the client has stored a newer version
   * meanwhile (another endpoint, say), that one carries on and the error is not stored.
   */
  fail(note, reason) {
    const { id, versionId } = note.channel;
    const queue = this.queues.get(id);
    if (queue) {
      queue.notes = queue.notes.filter((n) => n.channel.versionId !== versionId);
    }
    if (this.active.get(id)?.versionId !== versionId) {
      return;
    }
    this.failed.set(id, versionId);
    this.active.delete(id);
    const error = reason.length > MAX_ERROR_TEXT ? `${reason.slice(0, MAX_ERROR_TEXT - 1)}…` : reason;
    this.log(`subscriptions: Subscription/${id} is now in error: ${error}`);
    this.markError(id, versionId, error).catch((err) => {
      this.log(`subscriptions: could not store the error of Subscription/${id}: ${err.message}`);
    });
  }

  /** Forget the notifications not yet started for a Subscription no longer active. */
  drop(id) {
    const queue = this.queues.get(id);
    if (queue) {
      queue.notes.length = 0;
      if (!queue.busy) {
        this.queues.delete(id);
      }
    }
  }

  /** One notification (a POST, or a PUT of the resource to ``path`` under the endpoint);
   * resolves to undefined on a 2xx answer, else to a short reason. */
  post(channel, body, path, extraHeaders = {}) {
    return new Promise((resolve) => {
      const url = new URL(channel.endpoint);
      if (path) {
        url.pathname = `${url.pathname.replace(/\/$/, '')}/${path}`;
      }
      const headers = {};
      for (const [name, value] of channel.headers) {
        const key = Object.keys(headers).find((k) => k.toLowerCase() === name.toLowerCase()) ?? name;
        headers[key] = key in headers ? [headers[key], value].flat() : value;
      }
      Object.assign(headers, extraHeaders);
      const payload = body === undefined ? undefined : Buffer.from(body, 'utf8');
      if (payload) {
        headers['Content-Type'] = 'application/fhir+json; charset=utf-8';
      }
      headers['Content-Length'] = String(payload?.length ?? 0);
      let settled = false;
      let request;
      const finish = (failure) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.requests.delete(request);
        resolve(failure);
      };
      const timer = setTimeout(() => {
        finish(`no answer within ${this.timeoutMs / 1000} s`);
        request.destroy();
      }, this.timeoutMs);
      try {
        // agent: false: a new connection per notification, closed after it (nothing pooled).
        request = (url.protocol === 'https:' ? https : http).request(url, { method: path ? 'PUT' : 'POST', headers, agent: false, ...this.tls });
      } catch (err) {
        finish(err.message);
        return;
      }
      this.requests.add(request);
      request.on('response', (response) => {
        response.resume(); // the answer's body is not used
        const { statusCode } = response;
        finish(statusCode >= 200 && statusCode < 300 ? undefined : `HTTP ${statusCode}`);
      });
      request.on('error', (err) => finish(err.message || err.code || String(err)));
      request.end(payload);
    });
  }

  sleep(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        resolve();
      }, ms);
      timer.resolve = resolve;
      this.timers.add(timer);
    });
  }

  /** Stop: no more deliveries; pending waits end, requests in flight are aborted. */
  close() {
    this.closed = true;
    for (const timer of this.timers) {
      clearTimeout(timer);
      timer.resolve();
    }
    this.timers.clear();
    for (const request of this.requests) {
      request.destroy();
    }
    this.requests.clear();
    for (const id of [...this.queues.keys()]) {
      this.drop(id);
    }
  }
}
