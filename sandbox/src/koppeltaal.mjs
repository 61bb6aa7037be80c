// The Koppeltaal 2.0 profile of the sandbox's FHIR server (node src/main.mjs --koppeltaal):
// the domain's roles (the scopes each app's token gets) and the rules a Koppeltaal FHIR
// service applies to writes, written from the published profiles (github
// vzvznl/Koppeltaal-2.0-FHIR, input/fsh/, IG canonical http://koppeltaal.nl/fhir) and the topics
// summarised in shared/design/KOPPELTAAL.md. The contract the Koppeltaal helpers build against
// is /work/briefs/kt-contract.md; sandbox/README.md says what is and is not enforced.
//
// fhir-server.mjs calls in here only when it runs with `koppeltaal: true`:
//   - koppeltaalRules(): per request, the checks around create/update/delete/patch
//     (server-assigned ids, If-Match, resource-origin, the scopes' resource-origin narrowing,
//     KT2 validation, AuditEvents never changed, https Subscription endpoints)
//   - KOPPELTAAL_TYPES: the resource types the domain serves (others: 404)
//
// Where the reference domain (github Koppeltaal/Koppeltaal-2.0-FHIR-HAPI-Server, commit
// 46853e52, MPL-2.0; read, not copied) answers differently from plain FHIR, the sandbox answers
// as it does: a missing If-Match is 412 (EnforceIfMatchHeaderInterceptor), an update without
// resource-origin gets the stored one back (InjectResourceOriginInterceptor), a Subscription
// endpoint must start with https:// (EnforceHttpsSubscriptionEndpointInterceptor, 422), a type
// outside `supported_resource_types` is 404 (application.yaml), and reads and searches are
// narrowed to the resource-origins the role's scopes name (ResourceOriginAuthorization- and
// ResourceOriginSearchNarrowingInterceptor; done in fhir-server.mjs's Access).
//   - requestTrace(): X-Request-Id / X-Trace-Id / X-Correlation-Id for answers and notifications
//   - notificationNarrowing(): a Subscription is notified only of what its app's role may read
//     (SubscriptionNarrowingInterceptor)
import { randomUUID } from 'node:crypto';
import { businessRule, deepClone, forbidden, OperationOutcomeError } from '@medplum/core';
import { kt2ProfileIssues } from './kt2-profiles.mjs';

export const PROFILE_BASE = 'http://koppeltaal.nl/fhir/StructureDefinition';
export const RESOURCE_ORIGIN_URL = `${PROFILE_BASE}/resource-origin`;
export const INSTANTIATES_URL = 'http://vzvz.nl/fhir/StructureDefinition/instantiates';
export const ENDPOINT_EXTENSION_URL = `${PROFILE_BASE}/KT2EndpointExtension`;
export const PUBLISHER_ID_URL = `${PROFILE_BASE}/KT2PublisherId`;
export const CONNECTION_TYPE_SYSTEM = 'http://vzvz.nl/fhir/CodeSystem/koppeltaal-endpoint-connection-type';
export const PAYLOAD_TYPE_SYSTEM = 'http://terminology.hl7.org/CodeSystem/endpoint-payload-type';
export const CLIENT_ID_SYSTEM = 'http://vzvz.nl/fhir/NamingSystem/koppeltaal-client-id';

/** The KT2 profile canonical for a resource type (`KT2Task`, ...). */
export function profileUrl(resourceType) {
  return `${PROFILE_BASE}/KT2${resourceType}`;
}

/** The scope each app's token carries: its role in the domain (the scope it asks is ignored). */
// Each permission is ALL (no query), OWN (`?resource-origin=Device/<itself>`) or GRANTED
// (`?resource-origin=Device/<others>`), as AUTH scopes.py writes them; the module's follow the
// IG's role matrix for an eHealth module (TOP-KT-005b, as far as its changelog tells: Endpoint
// CRU, CareTeam R ALL): its own definitions, Endpoints, Subscriptions and documents, and the
// Tasks, Patients and Practitioners the portal made (granted to it).
export const KOPPELTAAL_ROLES = Object.freeze({
  'fhir-burnout': [
    'system/ActivityDefinition.cruds?resource-origin=Device/fhir-burnout',
    'system/Endpoint.cruds?resource-origin=Device/fhir-burnout',
    'system/Task.rus?resource-origin=Device/portal',
    'system/Patient.rs?resource-origin=Device/portal',
    'system/Practitioner.rs?resource-origin=Device/portal',
    'system/CareTeam.rs', // who treats whom: the practice list shows a care professional theirs
    'system/AuditEvent.cs',
    'system/Subscription.cruds?resource-origin=Device/fhir-burnout',
    'system/DocumentReference.cruds?resource-origin=Device/fhir-burnout',
  ].join(' '),
  portal: [
    'system/Task.cruds?resource-origin=Device/portal',
    'system/Patient.cruds?resource-origin=Device/portal',
    'system/Practitioner.cruds?resource-origin=Device/portal',
    'system/ActivityDefinition.rs',
    'system/Endpoint.rs',
    'system/Device.rs',
    'system/AuditEvent.cs',
    'system/Subscription.cruds?resource-origin=Device/portal',
    // Documenten Delen (IG 0.16.3 draft): the EHR finds the modules' DocumentReferences and
    // fetches each document with a token of this scope.
    'system/DocumentReference.rs',
  ].join(' '),
});

/**
 * The resource types a Koppeltaal domain serves: the reference server's
 * `supported_resource_types`, plus DocumentReference (the draft T029 "Documenten Delen",
 * which a domain that supports it adds). Any other type is 404, as HAPI answers it.
 */
export const KOPPELTAAL_TYPES = Object.freeze(new Set([
  'ActivityDefinition', 'AuditEvent', 'Binary', 'Bundle', 'CapabilityStatement', 'CareTeam',
  'CodeSystem', 'Device', 'DocumentReference', 'Endpoint', 'ImplementationGuide', 'NamingSystem',
  'OperationOutcome', 'Organization', 'Patient', 'Practitioner', 'RelatedPerson',
  'StructureDefinition', 'Subscription', 'Task', 'ValueSet',
]));

/** The 404 for a type the domain does not serve (HAPI: "Unknown resource type"). */
export function unknownType(resourceType) {
  return outcomeError('not-found', 'not-found', `Unknown resource type '${resourceType}': this Koppeltaal domain serves ${[...KOPPELTAAL_TYPES].join(', ')}`);
}

// ---------------------------------------------------------------------------------------------
// Outcomes. Medplum's getStatus knows no 405: that id is mapped by statusOf().

const METHOD_NOT_ALLOWED_ID = 'kt-method-not-allowed';
const KT_STATUSES = { [METHOD_NOT_ALLOWED_ID]: 405 };

/** The HTTP status for one of the outcomes below, or undefined for any other outcome. */
export function koppeltaalStatus(outcome) {
  return KT_STATUSES[outcome?.id];
}

function outcomeError(id, code, text, expression) {
  return new OperationOutcomeError({
    resourceType: 'OperationOutcome',
    id,
    issue: [{ severity: 'error', code, details: { text }, ...(expression ? { expression: [expression] } : {}) }],
  });
}

function methodNotAllowed(text) {
  return outcomeError(METHOD_NOT_ALLOWED_ID, 'not-supported', text);
}

// The reference answers a missing If-Match as a failed precondition (412), not RFC 6585's 428.
function preconditionFailed(text) {
  return outcomeError('precondition-failed', 'processing', text);
}

function badRequestAt(text, expression) {
  return outcomeError(undefined, 'invalid', text, expression);
}

function forbiddenBecause(text, expression) {
  return outcomeError(forbidden.id, 'forbidden', text, expression);
}

/** 422 naming every element that breaks a KT2 profile. */
function unprocessable(issues) {
  const outcome = businessRule('kt2-profile', issues[0].text);
  outcome.issue = issues.map(({ text, expression }) => ({
    severity: 'error',
    code: 'business-rule',
    details: { text },
    expression: [expression],
  }));
  return new OperationOutcomeError(outcome);
}

// ---------------------------------------------------------------------------------------------
// Scopes: `system/Type.cruds?resource-origin=Device/<id>` narrows a grant to resources whose
// resource-origin is that Device (Koppeltaal's role scopes; AUTH scopes.py). The FHIR server
// enforces the narrowing on writes.

const NARROWING = /^resource-origin=(Device\/[A-Za-z0-9\-.]{1,64})$/;

/** `Device/x` from a scope's query part (`resource-origin=Device/x`), else null. */
export function narrowedOrigin(query) {
  return NARROWING.exec(query)?.[1] ?? null;
}

// ---------------------------------------------------------------------------------------------
// resource-origin

/** The resource-origin reference (`Device/<id>`) of a resource, or undefined. */
export function resourceOrigin(resource) {
  const found = (resource?.extension ?? []).filter((e) => e?.url === RESOURCE_ORIGIN_URL);
  return found.length ? found.map((e) => e.valueReference?.reference ?? null) : undefined;
}

function withOrigin(resource, origin) {
  const extension = [...(resource.extension ?? []), { url: RESOURCE_ORIGIN_URL, valueReference: { reference: origin } }];
  return { ...resource, extension };
}

// ---------------------------------------------------------------------------------------------
// KT2 validation: the constraints of the published profiles that matter here. Each returns a
// list of {expression, text}; an empty list means valid.

const TASK_FORBIDDEN = [
  'instantiatesUri', 'basedOn', 'groupIdentifier', 'statusReason', 'businessStatus', 'focus',
  'encounter', 'performerType', 'location', 'reasonCode', 'reasonReference', 'insurance', 'note',
  'relevantHistory', 'restriction', 'input', 'output',
];
// useContext is 0..0 in the IG's stored profile but used by its newer examples: not enforced.
const ACTIVITY_DEFINITION_FORBIDDEN = [
  'experimental', 'subjectCodeableConcept', 'subjectReference', 'date', 'publisher', 'contact',
  'jurisdiction', 'purpose', 'usage', 'copyright', 'approvalDate', 'lastReviewDate',
  'effectivePeriod', 'author', 'editor', 'reviewer', 'endorser', 'relatedArtifact', 'library',
  'kind', 'profile', 'intent', 'priority', 'doNotPerform', 'timingTiming', 'timingDateTime',
  'timingAge', 'timingPeriod', 'timingRange', 'timingDuration', 'location', 'productReference',
  'productCodeableConcept', 'quantity', 'dosage', 'bodySite', 'specimenRequirement',
  'observationRequirement', 'observationResultRequirement', 'transform', 'dynamicValue',
];
const ENDPOINT_FORBIDDEN = ['contact', 'period', 'payloadMimeType'];
const PATIENT_FORBIDDEN = [
  'deceasedBoolean', 'deceasedDateTime', 'maritalStatus', 'multipleBirthBoolean',
  'multipleBirthInteger', 'photo', 'contact', 'communication', 'generalPractitioner', 'link',
];
const PRACTITIONER_FORBIDDEN = ['address', 'photo', 'qualification', 'communication'];
const AUDIT_AGENT_FORBIDDEN = ['altId', 'name', 'location', 'policy', 'media', 'purposeOfUse'];
const OWNER_TYPES = ['Patient', 'Practitioner', 'RelatedPerson', 'CareTeam'];

const present = (value) => value !== undefined && value !== null && !(Array.isArray(value) && !value.length);
const list = (value) => (value === undefined || value === null ? [] : [value].flat());

function forbiddenElements(resource, names, profile, path = resource.resourceType) {
  return names
    .filter((name) => present(resource?.[name]))
    .map((name) => ({ expression: `${path}.${name}`, text: `${path}.${name} is not allowed in ${profile} (0..0)` }));
}

function required(resource, names, profile, path = resource.resourceType) {
  return names
    .filter((name) => !present(resource?.[name]))
    .map((name) => ({ expression: `${path}.${name}`, text: `${path}.${name} is required in ${profile}` }));
}

/** Issues for a reference that must be a literal `Type/id` of one of `types`. */
function referenceTo(reference, types, expression, profile) {
  const match = /^([A-Z][A-Za-z]+)\/[A-Za-z0-9\-.]{1,64}$/.exec(reference?.reference ?? '');
  if (match && types.includes(match[1])) {
    return [];
  }
  return [{ expression, text: `${expression} must reference ${types.join(' or ')} (a literal Type/id) in ${profile}` }];
}

function extensionsOf(resource, url) {
  return (resource.extension ?? []).filter((e) => e?.url === url);
}

function requireProfile(resource, profile) {
  const canonical = profileUrl(resource.resourceType);
  const profiles = list(resource.meta?.profile).map((p) => String(p).split('|')[0]);
  return profiles.includes(canonical)
    ? []
    : [{ expression: `${resource.resourceType}.meta.profile`, text: `${resource.resourceType}.meta.profile must contain ${canonical} (${profile})` }];
}

const VALIDATORS = {
  Task(task) {
    const profile = 'KT2_Task';
    const issues = [
      ...requireProfile(task, profile),
      ...required(task, ['identifier', 'for', 'owner'], profile),
      ...forbiddenElements(task, TASK_FORBIDDEN, profile),
    ];
    if (present(task.for)) issues.push(...referenceTo(task.for, ['Patient'], 'Task.for', profile));
    if (present(task.owner)) issues.push(...referenceTo(task.owner, OWNER_TYPES, 'Task.owner', profile));
    if (present(task.requester)) issues.push(...referenceTo(task.requester, ['Practitioner'], 'Task.requester', profile));
    list(task.partOf).forEach((p, i) => issues.push(...referenceTo(p, ['Task'], `Task.partOf[${i}]`, profile)));
    if (present(task.priority) && task.priority !== 'routine') {
      issues.push({ expression: 'Task.priority', text: `Task.priority is fixed to routine in ${profile}` });
    }
    const instantiates = extensionsOf(task, INSTANTIATES_URL);
    if (!instantiates.length) {
      issues.push({
        expression: `Task.extension('${INSTANTIATES_URL}')`,
        text: `Task needs the extension ${INSTANTIATES_URL} (valueReference ActivityDefinition/<id>) in ${profile}`,
      });
    }
    instantiates.forEach((e) => issues.push(
      ...referenceTo(e.valueReference, ['ActivityDefinition'], `Task.extension('${INSTANTIATES_URL}').valueReference`, profile),
    ));
    return issues;
  },

  ActivityDefinition(definition) {
    const profile = 'KT2_ActivityDefinition';
    const issues = [
      ...required(definition, ['url', 'title'], profile),
      ...forbiddenElements(definition, ACTIVITY_DEFINITION_FORBIDDEN, profile),
    ];
    const endpoints = extensionsOf(definition, ENDPOINT_EXTENSION_URL);
    const where = `ActivityDefinition.extension('${ENDPOINT_EXTENSION_URL}')`;
    if (!endpoints.length) {
      issues.push({ expression: where, text: `ActivityDefinition needs at least one ${ENDPOINT_EXTENSION_URL} extension in ${profile}` });
    }
    endpoints.forEach((e) => issues.push(...referenceTo(e.valueReference, ['Endpoint'], `${where}.valueReference`, profile)));
    const publisherIds = extensionsOf(definition, PUBLISHER_ID_URL);
    if (publisherIds.length > 1) {
      issues.push({ expression: `ActivityDefinition.extension('${PUBLISHER_ID_URL}')`, text: `At most one ${PUBLISHER_ID_URL} extension in ${profile}` });
    }
    publisherIds
      .filter((e) => typeof e.valueId !== 'string' || !/^[A-Za-z0-9\-.]{1,64}$/.test(e.valueId))
      .forEach(() => issues.push({
        expression: `ActivityDefinition.extension('${PUBLISHER_ID_URL}').valueId`,
        text: `${PUBLISHER_ID_URL} needs a valueId (an id) in ${profile}`,
      }));
    return issues;
  },

  Endpoint(endpoint) {
    const profile = 'KT2_Endpoint';
    const issues = forbiddenElements(endpoint, ENDPOINT_FORBIDDEN, profile);
    const connection = endpoint.connectionType;
    if (!(connection?.system === CONNECTION_TYPE_SYSTEM && connection?.code === 'hti-smart-on-fhir')) {
      issues.push({ expression: 'Endpoint.connectionType', text: `Endpoint.connectionType is fixed to ${CONNECTION_TYPE_SYSTEM}#hti-smart-on-fhir in ${profile}` });
    }
    const payloadOk = list(endpoint.payloadType).length > 0 && list(endpoint.payloadType).every((concept) => {
      const codings = list(concept?.coding);
      return codings.length > 0 && codings.every((c) => c?.system === PAYLOAD_TYPE_SYSTEM && c?.code === 'any');
    });
    if (!payloadOk) {
      issues.push({ expression: 'Endpoint.payloadType', text: `Endpoint.payloadType is fixed to ${PAYLOAD_TYPE_SYSTEM}#any in ${profile}` });
    }
    // A launch URL: https, or plain http on the loopback address (the sandbox's own tests).
    const address = URL.parse(endpoint.address ?? '');
    const loopback = address?.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(address.hostname);
    if (!(address?.protocol === 'https:' || loopback)) {
      issues.push({ expression: 'Endpoint.address', text: `Endpoint.address must be an https URL (or http://127.0.0.1 in the sandbox) in ${profile}` });
    }
    return issues;
  },

  AuditEvent(event) {
    const profile = 'KT2_AuditEvent';
    const issues = [
      ...required(event, ['entity'], profile),
      ...forbiddenElements(event, ['purposeOfEvent'], profile),
    ];
    list(event.agent).forEach((agent, i) => {
      const path = `AuditEvent.agent[${i}]`;
      issues.push(...required(agent, ['type', 'who'], profile, path));
      issues.push(...forbiddenElements(agent, AUDIT_AGENT_FORBIDDEN, profile, path));
      if (present(agent.who)) issues.push(...referenceTo(agent.who, ['Device'], `${path}.who`, profile));
    });
    list(event.entity).forEach((entity, i) => {
      issues.push(...forbiddenElements(entity, ['detail'], profile, `AuditEvent.entity[${i}]`));
    });
    return issues;
  },

  Subscription(subscription) {
    const profile = 'KT2_Subscription';
    const issues = forbiddenElements(subscription.channel ?? {}, ['payload'], profile, 'Subscription.channel');
    if (subscription.channel?.type !== 'rest-hook') {
      issues.push({ expression: 'Subscription.channel.type', text: `Subscription.channel.type is fixed to rest-hook in ${profile}` });
    }
    return issues;
  },

  Patient(patient) {
    const profile = 'KT2_Patient';
    const issues = [
      ...required(patient, ['identifier', 'active', 'name', 'gender', 'birthDate'], profile),
      ...forbiddenElements(patient, PATIENT_FORBIDDEN, profile),
    ];
    issues.push(...nameIssues(patient, profile, 'kt2pnu-2'));
    return issues;
  },

  Practitioner(practitioner) {
    const profile = 'KT2_Practitioner';
    const issues = [
      ...required(practitioner, ['identifier', 'active', 'name'], profile),
      ...forbiddenElements(practitioner, PRACTITIONER_FORBIDDEN, profile),
    ];
    issues.push(...nameIssues(practitioner, profile, 'kt2pnu-1'));
    if (!list(practitioner.telecom).some((t) => t?.system === 'email' && t?.value)) {
      issues.push({ expression: 'Practitioner.telecom', text: `Practitioner.telecom needs an email address in ${profile}` });
    }
    return issues;
  },
};

// Identifiers are the identity matched at login (T003): only use, system and value.
function nameIssues(person, profile, invariant) {
  const type = person.resourceType;
  const issues = [];
  list(person.name).forEach((name, i) => {
    if (!name?.use) {
      issues.push({ expression: `${type}.name[${i}].use`, text: `${type}.name[${i}].use is required in ${profile} (${invariant})` });
    }
    if (name?.use === 'official') {
      issues.push(...required(name, ['family', 'given'], profile, `${type}.name[${i}]`));
    }
  });
  return issues;
}

/** The KT2 profile issues of a resource ({expression, text}[]); types without a rule have none. */
export function kt2Issues(resource) {
  return VALIDATORS[resource?.resourceType]?.(resource) ?? [];
}

/**
 * Throw a 422 OperationOutcome naming the elements when the resource breaks its KT2 profile:
 * the rules above, then the compiled KT2 StructureDefinition of its type (kt2-profiles.mjs;
 * the reference HAPI server validates every write against the profiles it installed).
 */
export function checkKt2(resource) {
  const ruled = kt2Issues(resource);
  const named = new Set(ruled.map((i) => i.expression));
  const issues = [...ruled, ...kt2ProfileIssues(resource).filter((i) => !named.has(i.expression))];
  if (issues.length) {
    throw unprocessable(issues);
  }
}

// ---------------------------------------------------------------------------------------------
// The write rules, per request

/**
 * The Koppeltaal checks for one request, made by the app `clientId` (its Device is
 * `Device/<clientId>`). `originsFor(type, letter)` says which resource-origins the token's
 * scopes allow for that interaction: null for any, else a Set of `Device/<id>` (the
 * narrowing); the caller has already checked that some scope grants it at all.
 */
export function koppeltaalRules({ clientId, originsFor }) {
  const device = `Device/${clientId}`;

  function checkNarrowing(resourceType, letter, origin, what) {
    const allowed = originsFor(resourceType, letter);
    if (allowed && !allowed.has(origin)) {
      const expected = [...allowed].join(' or ');
      throw forbiddenBecause(
        `The token may ${what} ${resourceType} only with resource-origin ${expected}; this one's is ${origin ?? 'not set'}`,
        `${resourceType}.extension('${RESOURCE_ORIGIN_URL}')`,
      );
    }
  }

  function storedOrigin(existing) {
    return resourceOrigin(existing)?.[0];
  }

  /** AuditEvents stay as written; every update names the version it changes (If-Match). */
  function checkUpdate(resource, existing, options) {
    if (resource.resourceType === 'AuditEvent') {
      throw methodNotAllowed('AuditEvents are never updated or deleted');
    }
    if (!options?.ifMatch) {
      throw preconditionFailed(
        `An update needs If-Match: W/"<versionId>" (the current version of ${resource.resourceType}/${resource.id} is ${existing.meta?.versionId})`,
      );
    }
    checkNarrowing(resource.resourceType, 'u', storedOrigin(existing), 'update');
  }

  /** A resource-origin sent with an update must be the stored one, and only one (else 400/403). */
  function checkOriginKept(resource, sent, existing) {
    const where = `${resource.resourceType}.extension('${RESOURCE_ORIGIN_URL}')`;
    if (sent && sent.length > 1) {
      throw badRequestAt(`An update may carry one ${RESOURCE_ORIGIN_URL} extension, not ${sent.length}`, where);
    }
    if (sent && !sameOrigins(sent, resourceOrigin(existing))) {
      throw forbiddenBecause(`resource-origin may not be changed; it stays ${storedOrigin(existing) ?? 'unset'}`, where);
    }
  }

  return {
    /** A create (POST, or a POST entry): the server's id and resource-origin; returns what to store. */
    beforeCreate(resource, options) {
      if (resourceOrigin(resource)) {
        throw badRequestAt(
          `resource-origin is set by the server; a create must not carry ${RESOURCE_ORIGIN_URL}`,
          `${resource.resourceType}.extension('${RESOURCE_ORIGIN_URL}')`,
        );
      }
      checkNarrowing(resource.resourceType, 'c', device, 'create');
      checkSubscriptionEndpoint(resource);
      checkKt2(resource);
      // Ids are the server's (T003): a client's id is ignored; a transaction's were made by
      // the server's own generateId (assignedId).
      const id = options?.assignedId && resource.id ? resource.id : randomUUID();
      const { resourceType, id: _sent, ...rest } = deepClone(resource);
      return withOrigin({ resourceType, id, ...rest }, device);
    },

    /** A create reached through PUT (an update whose id does not exist, or a conditional update). */
    refuseCreateByPut(resourceType) {
      throw methodNotAllowed(
        `PUT-create is not allowed: ${resourceType} ids are assigned by the server; create with POST`,
      );
    },

    /**
     * An update (PUT, or a PUT entry) of `existing`; returns what to store: the resource, with
     * the stored resource-origin put back when it was left out (as the reference does).
     */
    beforeUpdate(resource, existing, options) {
      checkUpdate(resource, existing, options);
      const sent = resourceOrigin(resource);
      checkOriginKept(resource, sent, existing);
      const stored = sent ? resource : restoreOrigin(resource, existing);
      checkSubscriptionEndpoint(stored);
      checkKt2(stored);
      return stored;
    },

    /**
     * A patch of `existing` that produced `patched` (already applied: a throw undoes it). A
     * patch that removes resource-origin cannot be given it back here, so it is refused (403).
     */
    afterPatch(patched, existing, options) {
      checkUpdate(patched, existing, options);
      const kept = resourceOrigin(patched);
      if (!kept && resourceOrigin(existing)) {
        throw forbiddenBecause(
          `resource-origin may not be removed by a patch; it stays ${storedOrigin(existing)}`,
          `${patched.resourceType}.extension('${RESOURCE_ORIGIN_URL}')`,
        );
      }
      checkOriginKept(patched, kept, existing);
      checkSubscriptionEndpoint(patched);
      checkKt2(patched);
    },

    /** A delete of `existing`. */
    beforeDelete(existing) {
      if (existing.resourceType === 'AuditEvent') {
        throw methodNotAllowed('AuditEvents are never updated or deleted');
      }
      checkNarrowing(existing.resourceType, 'd', storedOrigin(existing), 'delete');
    },
  };
}

function sameOrigins(a, b) {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

/** `resource` with the resource-origin extension of `existing` added back (none: unchanged). */
function restoreOrigin(resource, existing) {
  const stored = (existing.extension ?? []).filter((e) => e?.url === RESOURCE_ORIGIN_URL);
  return stored.length ? { ...resource, extension: [...(resource.extension ?? []), ...deepClone(stored)] } : resource;
}

/** A Subscription must notify an https endpoint (TOP-KT-006; the reference server: 422). */
function checkSubscriptionEndpoint(resource) {
  const endpoint = resource.channel?.endpoint;
  if (resource.resourceType === 'Subscription' && !String(endpoint ?? '').startsWith('https://')) {
    throw outcomeError(
      'business-rule', 'business-rule',
      `Subscription.channel.endpoint must start with https:// (got ${JSON.stringify(endpoint ?? null)})`,
      'Subscription.channel.endpoint',
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Notification narrowing (the reference's SubscriptionNarrowingInterceptor, a
// SUBSCRIPTION_BEFORE_DELIVERY hook whose `false` drops the delivery; read, not copied): a
// Subscription is notified of a resource only when the role of the app that made it may read
// that resource. The app is the Subscription's resource-origin Device, named by its
// koppeltaal-client-id identifier; its role is the scope of the last token it used here
// (the reference's PermissionUtil cache). Where the reference cannot tell, it still notifies:
// no resource-origin on the Subscription or on the resource, no such Device or client id, or
// no token of that app seen yet (after a restart, say). A notification dropped is not sent at
// all: a KT2 notification is an empty POST, so there is nothing to send without the resource.

const SYSTEM_SCOPE = /^system\/(\*|[A-Z][A-Za-z]+)\.(c?r?u?d?s?)(?:\?(.*))?$/;

/**
 * Whether a role (`scope`, the space-separated scopes of an app's token) may read `resource`:
 * a `system/` scope of its type (or `*`) with `r`, not narrowed or narrowed to the resource's
 * origin (`Device/<id>`, matched whole; the reference matches the id anywhere in the query).
 */
export function scopeMayRead(scope, resource) {
  const origin = resourceOrigin(resource)?.[0];
  return String(scope ?? '').split(/\s+/).some((token) => {
    const match = SYSTEM_SCOPE.exec(token);
    if (!match || !(match[1] === '*' || match[1] === resource.resourceType) || !match[2].includes('r')) {
      return false;
    }
    return match[3] === undefined || (origin !== undefined && narrowedOrigin(match[3]) === origin);
  });
}

/**
 * The narrowing of one server. `read(type, id)` returns a stored resource (or undefined).
 * `remember(clientId, scope)` on every request with a token; `mayNotify(subscriptionId,
 * resource)` before a notification is queued: false drops it.
 */
export function notificationNarrowing(read) {
  const scopes = new Map(); // client id -> the scope of its last token
  return {
    remember(clientId, scope) {
      if (clientId) {
        scopes.set(String(clientId), String(scope ?? ''));
      }
    },
    mayNotify(subscriptionId, resource) {
      const device = resourceOrigin(read('Subscription', subscriptionId))?.[0];
      const deviceId = /^Device\/([A-Za-z0-9\-.]{1,64})$/.exec(device ?? '')?.[1];
      const clientId = deviceId
        ? (read('Device', deviceId)?.identifier ?? []).find((i) => i?.system === CLIENT_ID_SYSTEM)?.value
        : undefined;
      const scope = clientId === undefined ? undefined : scopes.get(clientId);
      if (scope === undefined || !resourceOrigin(resource)) {
        return true; // the reference cannot tell either: it still notifies
      }
      return scopeMayRead(scope, resource);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Tracing (T006, "change-management-topic-11-trace-headers"; FHIR R4 http.html#custom, as the
// Koppeltaal HAPI server does it): a request's X-Request-Id is the client's when it sent one,
// else a new one, and is answered back; X-Trace-Id is passed on unchanged, or made when absent;
// X-Correlation-Id names the request that caused another one, and a client's is echoed.

const TRACE_VALUE = /^[\x21-\x7e]{1,200}$/; // printable ASCII, no spaces: safe to echo

/** The trace of an incoming request: {requestId, traceId, correlationId (or undefined)}. */
export function requestTrace(req) {
  const header = (name) => {
    const value = req.headers[name];
    return typeof value === 'string' && TRACE_VALUE.test(value) ? value : undefined;
  };
  return {
    requestId: header('x-request-id') ?? randomUUID(),
    traceId: header('x-trace-id') ?? randomUUID(),
    correlationId: header('x-correlation-id'),
  };
}

/** The trace headers of the answer to a request with `trace`. */
export function answerHeaders(trace) {
  return {
    'X-Request-Id': trace.requestId,
    'X-Trace-Id': trace.traceId,
    ...(trace.correlationId ? { 'X-Correlation-Id': trace.correlationId } : {}),
  };
}

/** Headers for a notification caused by a request with `trace`: a new request id, same trace. */
export function notificationHeaders(trace) {
  return {
    'X-Request-Id': randomUUID(),
    'X-Trace-Id': trace.traceId,
    'X-Correlation-Id': trace.requestId,
  };
}
