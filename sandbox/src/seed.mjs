// Seed data for the sandbox EHR: one practice, its practitioners, and synthetic Dutch
// patients, some referred for burn-out treatment. Every name is obviously invented
// (family names such as "Voorbeeld" and "Proefpersoon"), identifiers live in a test
// namespace, and there are no BSNs: nothing here may look like a real person.
//
// With `koppeltaal` (main.mjs --koppeltaal) the same people follow the KT2 profiles instead
// (KT2_Patient, KT2_Practitioner: no free-text names, communication or GP; practitioners have an
// email address), made by the portal (resource-origin Device/portal), and the domain's two
// apps are Devices: Device/fhir-burnout (the module) and Device/portal. No referrals: in a
// Koppeltaal domain work arrives as Tasks from the portal.
import { CLIENT_ID_SYSTEM, profileUrl, RESOURCE_ORIGIN_URL } from './koppeltaal.mjs';

export const TEST_IDENTIFIER_SYSTEM = 'https://fhir-burnout.org/fhir/sandbox/identifier';

const GIVEN = [
  ['Anna', 'female'], ['Bram', 'male'], ['Cato', 'female'], ['Daan', 'male'], ['Eva', 'female'],
  ['Finn', 'male'], ['Gijs', 'male'], ['Hanna', 'female'], ['Ilse', 'female'], ['Jesse', 'male'],
  ['Kim', 'other'], ['Lotte', 'female'], ['Milan', 'male'], ['Noor', 'female'], ['Olaf', 'male'],
  ['Puck', 'female'], ['Quinten', 'male'], ['Roos', 'female'], ['Sem', 'male'], ['Tess', 'female'],
  ['Umar', 'male'], ['Vera', 'female'], ['Wout', 'male'], ['Yara', 'female'],
];
const FAMILY = [
  ['', 'Voorbeeld'], ['van', 'Proefpersoon'], ['de', 'Testgeval'], ['', 'Oefenaar'],
  ['van der', 'Fictief'], ['', 'Demodorp'], ['ter', 'Nepstra'], ['', 'Zandbak'],
];
const PRACTITIONERS = [
  ['prac-1', 'Mirjam', 'Behandelaar', 'Psycholoog', 'female'],
  ['prac-2', 'Joost', 'Gespreksveld', 'GZ-psycholoog', 'male'],
  ['prac-3', 'Fatma', 'Praktijkhulp', 'POH-GGZ', 'female'],
  ['prac-4', 'Koen', 'Verwijzer', 'Huisarts', 'male'],
];
// Who treats whom in the Koppeltaal domain (KT2_CareTeam, one per client): [patient,
// practitioners, status, period end]. A care professional sees only these clients (and those
// whose Task they launched) on the module's practice list; pat-05's team is no longer
// active and pat-06's period has ended: both count for nobody (the IG's CareTeam notes).
const CARE_TEAMS = [
  ['pat-01', ['prac-1', 'prac-3'], 'active'],
  ['pat-02', ['prac-1'], 'active'],
  ['pat-03', ['prac-2'], 'active'],
  ['pat-05', ['prac-1'], 'inactive'],
  ['pat-06', ['prac-1'], 'active', '2025-12-31'],
];
// SNOMED 405623001 "Assigned practitioner": the behandelaar (KoppeltaalPractitionerRoleValueSet).
const ASSIGNED_PRACTITIONER = { system: 'http://snomed.info/sct', code: '405623001', display: 'Assigned practitioner' };
// The apps of the Koppeltaal domain: [client id, name]. A Device's id is its client id (T005).
const KOPPELTAAL_DEVICES = [
  ['fhir-burnout', 'fhir_burnout: zelfhulp bij burn-out'],
  ['portal', 'Oefenportaal (sandbox)'],
];

function pad(n) {
  return String(n).padStart(2, '0');
}

function familyName([prefix, name]) {
  return { family: prefix ? `${prefix} ${name}` : name };
}

export function seedResources({ koppeltaal = false } = {}) {
  if (koppeltaal) {
    return koppeltaalSeed();
  }
  const organization = {
    resourceType: 'Organization',
    id: 'practice-1',
    identifier: [{ system: TEST_IDENTIFIER_SYSTEM, value: 'practice-1' }],
    active: true,
    name: 'Oefenpraktijk De Zandbak (sandbox)',
    telecom: [{ system: 'phone', value: '+31 20 000 0000', use: 'work' }],
    address: [{ line: ['Proefstraat 1'], city: 'Demodorp', country: 'NL' }],
  };
  const practitioners = PRACTITIONERS.map(([id, given, family]) => ({
    resourceType: 'Practitioner',
    id,
    identifier: [{ system: TEST_IDENTIFIER_SYSTEM, value: id }],
    active: true,
    name: [{ given: [given], family, text: `${given} ${family}` }],
  }));
  const roles = PRACTITIONERS.map(([id, , , role]) => ({
    resourceType: 'PractitionerRole',
    id: `role-${id}`,
    active: true,
    practitioner: { reference: `Practitioner/${id}` },
    organization: { reference: 'Organization/practice-1' },
    code: [{ text: role }],
  }));
  const patients = GIVEN.map(([given, gender], i) => {
    const family = familyName(FAMILY[i % FAMILY.length]);
    const id = `pat-${pad(i + 1)}`;
    const year = 1965 + ((i * 7) % 35);
    return {
      resourceType: 'Patient',
      id,
      identifier: [{ system: TEST_IDENTIFIER_SYSTEM, value: id }],
      active: true,
      name: [{ use: 'official', given: [given], family: family.family, text: `${given} ${family.family}` }],
      gender,
      birthDate: `${year}-${pad((i % 12) + 1)}-${pad((i % 27) + 1)}`,
      communication: [{ language: { coding: [{ system: 'urn:ietf:bcp:47', code: i % 5 === 4 ? 'en' : 'nl' }] }, preferred: true }],
      generalPractitioner: [{ reference: 'Practitioner/prac-4' }],
      managingOrganization: { reference: 'Organization/practice-1' },
    };
  });
  // Every third patient was referred by the GP for burn-out treatment at the practice.
  const referrals = patients
    .filter((_, i) => i % 3 === 0)
    .map((patient, i) => ({
      resourceType: 'ServiceRequest',
      id: `ref-${pad(i + 1)}`,
      identifier: [{ system: TEST_IDENTIFIER_SYSTEM, value: `referral-${pad(i + 1)}` }],
      status: 'active',
      intent: 'order',
      category: [{ coding: [{ system: 'http://snomed.info/sct', code: '306206005', display: 'Referral to service' }] }],
      code: { text: 'Behandeling bij overspanning en burn-out' },
      subject: { reference: `Patient/${patient.id}` },
      authoredOn: `2026-11-${pad(i + 1)}`,
      requester: { reference: 'Practitioner/prac-4' },
      performer: [{ reference: 'Organization/practice-1' }],
      reasonCode: [{ text: 'Burn-outklachten, al enkele maanden verzuim' }],
    }));
  return { organization, practitioners, roles, patients, referrals };
}

/** The Koppeltaal domain's seed: the same practice and people as KT2 resources, and the apps. */
function koppeltaalSeed() {
  const plain = seedResources();
  const madeByPortal = (resource) => ({
    ...resource,
    meta: { profile: [profileUrl(resource.resourceType)] },
    extension: [{ url: RESOURCE_ORIGIN_URL, valueReference: { reference: 'Device/portal' } }],
  });
  const officialName = ({ given, family }) => [{ use: 'official', family, given }];
  const practitioners = plain.practitioners.map((p, i) => {
    const [, given, family, , gender] = PRACTITIONERS[i];
    return madeByPortal({
      resourceType: 'Practitioner',
      id: p.id,
      identifier: p.identifier,
      active: true,
      name: officialName(p.name[0]),
      telecom: [{ system: 'email', value: `${given}.${family}@sandbox.fhir-burnout.example`.toLowerCase() }],
      gender,
      birthDate: `19${70 + i * 4}-0${i + 3}-1${i}`,
    });
  });
  const patients = plain.patients.map((p) => madeByPortal({
    resourceType: 'Patient',
    id: p.id,
    identifier: p.identifier,
    active: true,
    name: officialName(p.name[0]),
    gender: p.gender,
    birthDate: p.birthDate,
    managingOrganization: p.managingOrganization,
  }));
  const devices = KOPPELTAAL_DEVICES.map(([clientId, name]) => ({
    resourceType: 'Device',
    id: clientId,
    meta: { profile: [profileUrl('Device')] },
    identifier: [{ system: CLIENT_ID_SYSTEM, value: clientId }],
    status: 'active',
    deviceName: [{ name, type: 'user-friendly-name' }],
    owner: { reference: 'Organization/practice-1' },
  }));
  const careTeams = CARE_TEAMS.map(([patient, members, status, end]) => madeByPortal({
    resourceType: 'CareTeam',
    id: `careteam-${patient}`,
    identifier: [{ system: TEST_IDENTIFIER_SYSTEM, value: `careteam-${patient}` }],
    status,
    subject: { reference: `Patient/${patient}`, type: 'Patient' },
    ...(end ? { period: { start: '2025-01-01', end } } : {}),
    participant: members.map((id) => ({
      role: [{ coding: [ASSIGNED_PRACTITIONER] }],
      member: { reference: `Practitioner/${id}`, type: 'Practitioner' },
    })),
    managingOrganization: [{ reference: 'Organization/practice-1' }],
  }));
  return {
    organization: plain.organization, practitioners, roles: [], patients, referrals: [], devices, careTeams,
  };
}

/** A person's name for people to read: `text`, or given and family names. */
export function displayName(resource) {
  const name = resource.name?.[0];
  if (typeof resource.name === 'string' || !name) {
    return resource.name;
  }
  return name.text ?? [...(name.given ?? []), name.family].filter(Boolean).join(' ');
}

/** The ids other tools need (written into the --info file). */
export function seedSummary(seed) {
  const summary = {
    organization: seed.organization.id,
    practitioners: seed.practitioners.map((p) => ({ id: p.id, name: displayName(p) })),
    patients: seed.patients.map((p) => ({ id: p.id, name: displayName(p) })),
    referrals: seed.referrals.map((r) => ({ id: r.id, patient: r.subject.reference })),
  };
  if (seed.careTeams) {
    summary.careTeams = seed.careTeams.map((c) => ({
      id: c.id, patient: c.subject.reference, status: c.status,
      members: c.participant.map((p) => p.member.reference),
    }));
  }
  if (seed.devices) {
    summary.devices = seed.devices.map((d) => ({ id: d.id, name: d.deviceName[0].name }));
  }
  return summary;
}

export function allSeedResources(seed) {
  return [
    seed.organization, ...(seed.devices ?? []), ...seed.practitioners, ...seed.roles, ...seed.patients,
    ...seed.referrals, ...(seed.careTeams ?? []),
  ];
}
