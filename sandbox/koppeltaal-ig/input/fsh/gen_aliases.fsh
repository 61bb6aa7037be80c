Alias: $nl-vzvz-device = http://vzvz.nl/fhir/StructureDefinition/nl-vzvz-Device
Alias: $medmij-gegevensdienst = http://vzvz.nl/fhir/NamingSystem/medmij-gegevensdienst

// generic code systems
Alias: $sct = http://snomed.info/sct
Alias: $DCM = http://dicom.nema.org/resources/ontology/DCM

// # HL7
Alias: $audit-event-sub-type = http://hl7.org/fhir/ValueSet/audit-event-sub-type
Alias: $audit-event-type = http://terminology.hl7.org/CodeSystem/audit-event-type|0.5.0
Alias: $audit-event-type-vs = http://hl7.org/fhir/ValueSet/audit-event-type
Alias: $codesystem-operation-outcome = http://terminology.hl7.org/CodeSystem/operation-outcome
Alias: $consentpolicycodes = http://terminology.hl7.org/CodeSystem/consentpolicycodes
Alias: $consentscope = http://terminology.hl7.org/CodeSystem/consentscope
Alias: $iso-21089-lifecycle = http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle
Alias: $list-empty-reason = http://terminology.hl7.org/CodeSystem/list-empty-reason
Alias: $operation-outcome = http://terminology.hl7.org/CodeSystem/operation-outcome
Alias: $provenance-participant-type = http://terminology.hl7.org/CodeSystem/provenance-participant-type
Alias: $resource-types = http://hl7.org/fhir/resource-types
Alias: $restful-interaction = http://hl7.org/fhir/restful-interaction
Alias: $shareablevalueset = http://hl7.org/fhir/StructureDefinition/shareablevalueset
Alias: $v3-ActCode = http://terminology.hl7.org/CodeSystem/v3-ActCode
Alias: $v3-ActReason = http://terminology.hl7.org/CodeSystem/v3-ActReason
Alias: $v3-AddressUse = http://terminology.hl7.org/CodeSystem/v3-AddressUse
Alias: $v3-AdministrativeGender = http://terminology.hl7.org/CodeSystem/v3-AdministrativeGender
Alias: $v3-LanguageAbilityMode = http://terminology.hl7.org/CodeSystem/v3-LanguageAbilityMode
Alias: $v3-LanguageAbilityProficiency = http://terminology.hl7.org/CodeSystem/v3-LanguageAbilityProficiency
Alias: $v3-MaritalStatus = http://terminology.hl7.org/CodeSystem/v3-MaritalStatus
Alias: $v3-ObservationValue = http://terminology.hl7.org/CodeSystem/v3-ObservationValue
Alias: $v3-ParticipationType = http://terminology.hl7.org/CodeSystem/v3-ParticipationType
Alias: $v3-RoleClass = http://terminology.hl7.org/CodeSystem/v3-RoleClass

// # HL7 NL
Alias: $agb = http://fhir.nl/fhir/NamingSystem/agb-z
Alias: $agb-oid = 2.16.840.1.113883.2.4.6.1
Alias: $agb-urn = urn:oid:2.16.840.1.113883.2.4.6.1
Alias: $app-id = http://fhir.nl/fhir/NamingSystem/aorta-app-id
Alias: $app-id-oid = 2.16.840.1.113883.2.4.6.6
Alias: $app-id-urn = urn:oid:2.16.840.1.113883.2.4.6.6
Alias: $bsn = http://fhir.nl/fhir/NamingSystem/bsn
Alias: $bsn-oid = 2.16.840.1.113883.2.4.6.3
Alias: $ura = http://fhir.nl/fhir/NamingSystem/ura
Alias: $ura-oid = 2.16.528.1.1007.3.3
Alias: $ura-urn = urn:oid:2.16.528.1.1007.3.3
Alias: $uzi-persoon = http://fhir.nl/fhir/NamingSystem/uzi-nr-pers
Alias: $uzi-persoon-oid = 2.16.528.1.1007.3.1
Alias: $uzi-persoon-urn = urn:oid:2.16.528.1.1007.3.1
Alias: $uzi-rolcode = http://fhir.nl/fhir/NamingSystem/uzi-rolcode
Alias: $uzi-systeem = http://fhir.nl/fhir/NamingSystem/uzi-nr-sys
Alias: $uzi-systeem-oid = 2.16.528.1.1007.3.2
Alias: $gbp-oid = 2.16.840.1.113883.2.4.3.111.3.16

// # Nictiz
Alias: $ext-Comment = http://nictiz.nl/fhir/StructureDefinition/ext-Comment
Alias: $nl-core-HealthcareProvider-Organization = http://nictiz.nl/fhir/StructureDefinition/nl-core-HealthcareProvider-Organization
Alias: $nl-core-HealthProfessional-Practitioner = http://nictiz.nl/fhir/StructureDefinition/nl-core-HealthProfessional-Practitioner
Alias: $nl-core-HealthProfessional-PractitionerRole = http://nictiz.nl/fhir/StructureDefinition/nl-core-HealthProfessional-PractitionerRole
Alias: $nl-core-PractitionerRole = http://nictiz.nl/fhir/StructureDefinition/nl-core-HealthProfessional-PractitionerRole
Alias: $nl-core-Organization = http://nictiz.nl/fhir/StructureDefinition/nl-core-HealthcareProvider-Organization
Alias: $nl-core-Patient = http://nictiz.nl/fhir/StructureDefinition/nl-core-Patient
Alias: $organization-type = http://nictiz.nl/fhir/NamingSystem/organization-type
Alias: $zib-AllergyIntolerance = http://nictiz.nl/fhir/StructureDefinition/zib-AllergyIntolerance
Alias: $zib-Product = http://nictiz.nl/fhir/StructureDefinition/zib-Product

Alias: $gpk = urn:oid:2.16.840.1.113883.2.4.4.1
Alias: $prk = urn:oid:2.16.840.1.113883.2.4.4.10
// Alias: $hpk = urn:oid:2.16.840.1.113883.2.4.4.