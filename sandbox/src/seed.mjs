// Seed data for the sandbox EHR: one practice, its practitioners, and synthetic Dutch
// patients, some referred for burn-out treatment. Every name is obviously invented
// (family names such as "Voorbeeld" and "Proefpersoon"), identifiers live in a test
// namespace, and there are no BSNs: nothing here may look like a real person.

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
  ['prac-1', 'Mirjam', 'Behandelaar', 'Psycholoog'],
  ['prac-2', 'Joost', 'Gespreksveld', 'GZ-psycholoog'],
  ['prac-3', 'Fatma', 'Praktijkhulp', 'POH-GGZ'],
  ['prac-4', 'Koen', 'Verwijzer', 'Huisarts'],
];

function pad(n) {
  return String(n).padStart(2, '0');
}

function familyName([prefix, name]) {
  return { family: prefix ? `${prefix} ${name}` : name };
}

export function seedResources() {
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

/** The ids other tools need (written into the --info file). */
export function seedSummary(seed) {
  const name = (r) => r.name?.[0]?.text ?? r.name;
  return {
    organization: seed.organization.id,
    practitioners: seed.practitioners.map((p) => ({ id: p.id, name: name(p) })),
    patients: seed.patients.map((p) => ({ id: p.id, name: name(p) })),
    referrals: seed.referrals.map((r) => ({ id: r.id, patient: r.subject.reference })),
  };
}

export function allSeedResources(seed) {
  return [seed.organization, ...seed.practitioners, ...seed.roles, ...seed.patients, ...seed.referrals];
}
