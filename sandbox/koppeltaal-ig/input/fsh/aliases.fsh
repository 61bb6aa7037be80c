// generic code systems
Alias: $sct = http://snomed.info/sct
Alias: $DCM = http://dicom.nema.org/resources/ontology/DCM

// HL7

// Alias: $audit-event-type = http://terminology.hl7.org/CodeSystem/audit-event-type
Alias: $auditevent-type-vs = http://hl7.org/fhir/ValueSet/audit-event-type
Alias: $bcp47 = urn:ietf:bcp:47
Alias: $dicom-audit-lifecycle = http://terminology.hl7.org/CodeSystem/dicom-audit-lifecycle
Alias: $endpoint-connection-type = http://terminology.hl7.org/CodeSystem/endpoint-connection-type
Alias: $endpoint-payload-type = http://terminology.hl7.org/CodeSystem/endpoint-payload-type
Alias: $iso-21089-lifecycle = http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle
Alias: $object-role = http://terminology.hl7.org/CodeSystem/object-role
Alias: $resource-types = http://hl7.org/fhir/resource-types
Alias: $restful-interaction = http://hl7.org/fhir/restful-interaction
Alias: $security-source-type = http://terminology.hl7.org/CodeSystem/security-source-type
Alias: $task-code = http://hl7.org/fhir/CodeSystem/task-code
Alias: $v3-AddressUse = http://terminology.hl7.org/CodeSystem/v3-AddressUse
Alias: $v3-AdministrativeGender = http://terminology.hl7.org/CodeSystem/v3-AdministrativeGender
Alias: $v3-LanguageAbilityMode = http://terminology.hl7.org/CodeSystem/v3-LanguageAbilityMode
Alias: $v3-LanguageAbilityProficiency = http://terminology.hl7.org/CodeSystem/v3-LanguageAbilityProficiency
Alias: $v3-MaritalStatus = http://terminology.hl7.org/CodeSystem/v3-MaritalStatus
Alias: $v3-NullFlavor = http://terminology.hl7.org/CodeSystem/v3-NullFlavor
Alias: $v3-ParticipationType = http://terminology.hl7.org/CodeSystem/v3-ParticipationType
Alias: $v3-RoleClass = http://terminology.hl7.org/CodeSystem/v3-RoleClass
Alias: $v3-RoleCode = http://terminology.hl7.org/CodeSystem/v3-RoleCode

// Nictiz
Alias: $nl-core-CareTeam = http://nictiz.nl/fhir/StructureDefinition/nl-core-CareTeam
Alias: $organization-type = http://nictiz.nl/fhir/NamingSystem/organization-type
Alias: $rolcode-vektis-urn = urn:oid:2.16.840.1.113883.2.4.3.11.22.472

// Koppeltaal specific
Alias: $koppeltaal-definition-topic = http://vzvz.nl/fhir/CodeSystem/koppeltaal-definition-topic
Alias: $koppeltaal-endpoint-connection-type = http://vzvz.nl/fhir/CodeSystem/koppeltaal-endpoint-connection-type
Alias: $koppeltaal-endpoint-connection-type-vs = http://vzvz.nl/fhir/ValueSet/endpoint-connection-type
Alias: $koppeltaal-task-code = http://vzvz.nl/fhir/CodeSystem/koppeltaal-task-code
Alias: $koppeltaal-task-code-vs = http://vzvz.nl/fhir/ValueSet/koppeltaal-task-code
Alias: $task-instantiates = http://vzvz.nl/fhir/StructureDefinition/instantiates
