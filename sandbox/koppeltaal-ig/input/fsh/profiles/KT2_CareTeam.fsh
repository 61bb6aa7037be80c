Profile: KT2_CareTeam
Parent: NlcoreCareTeam
Description: "The CareTeam resource represents a group of healthcare professionals and related persons who collaborate to provide coordinated care and treatment for a patient. It defines the roles and participants involved in delivering healthcare services within the Koppeltaal ecosystem."
Id: KT2CareTeam
* ^url = "http://koppeltaal.nl/fhir/StructureDefinition/KT2CareTeam"
* ^version = "0.9.0"
* ^status = #draft
* ^date = "2023-01-24"
* insert ContactAndPublisher
* insert Origin
* identifier 1..
* status 1..
* category ..0
* subject 1..
* subject only Reference(KT2_Patient)
  * ^short = "Patient treated by this care team"
* encounter ..0
* participant ^comment = "WARNING: `allSlices` is a display bug in Simplifier.net. There is no `allSlices` slice. Firely is already notified of this bug."
* participant[contactPerson] ..0
* participant[patient] ..0
* participant[patient] ^comment = "This slice is not used in the context of Koppeltaal 2.0. The patient is always represented via CareTeam.subject, not as a participant member."
* participant[healthcareProfessional] ..0
* participant[healthcareProfessional] ^comment = "This slice is not used in the context of Koppeltaal 2.0"
* participant contains
 kt2contactperson 0..* and
 kt2healthcareProfessional 0..*
* participant[kt2contactperson].role from KoppeltaalRelatedPersonRoleValueSet (extensible)
* participant[kt2contactperson].role ^comment = "The role defines the authorization level for this RelatedPerson within the CareTeam. See [RelatedPerson autorisaties](autorisaties-relatedperson.html) for the permission matrix."
* participant[kt2contactperson].role ^definition = "The authorization role of the RelatedPerson within this CareTeam. Determines which actions this person may perform."
* participant[kt2contactperson].role ^binding.description = "Koppeltaal authorization roles for RelatedPersons in a CareTeam."
* participant[kt2contactperson].member only Reference(KT2_RelatedPerson)
* participant[kt2contactperson].onBehalfOf ^comment = "This element is not used in the context of Koppeltaal 2.0"
* participant[kt2contactperson].period ^comment = "This element is not used in the context of Koppeltaal 2.0"
* participant[kt2healthcareProfessional].role from KoppeltaalPractitionerRoleValueSet (extensible)
* participant[kt2healthcareProfessional].role ^comment = "The role defines the authorization level for this Practitioner within the CareTeam. There are two authorization levels: 405623001 (Assigned practitioner/behandelaar) and zorgondersteuner (224608005 Administrative healthcare staff or 768821004 Care team coordinator). The ZorgverlenerRolCodelijst codes are included for backwards compatibility. See [Rol Code Mapping](autorisaties-rol-code-mapping.html) and [Practitioner autorisaties](autorisaties-practitioner.html) for more information."
* participant[kt2healthcareProfessional].role ^definition = "The authorization role of the Practitioner within this CareTeam. Determines which actions this person may perform. This ValueSet extends the ZorgverlenerRolCodelijst with SNOMED CT codes for authorization roles."
* participant[kt2healthcareProfessional].role ^alias = "KoppeltaalPractitionerRole"
* participant[kt2healthcareProfessional].role ^binding.description = "SNOMED CT authorization roles for Practitioners in a CareTeam (extends ZorgverlenerRolCodelijst)."
* participant[kt2healthcareProfessional].member only Reference(KT2_Practitioner)
* participant[kt2healthcareProfessional].member ^comment = "This element is used in Koppeltaal 2.0 to refer to the Practitioner who is member of the team"
* participant[kt2healthcareProfessional].onBehalfOf ^comment = "This element is not used in the context of Koppeltaal 2.0"
* participant[kt2healthcareProfessional].period ^comment = "This element is not used in the context of Koppeltaal 2.0"

* reasonCode ..0
* reasonReference ..0
* managingOrganization ..1
* managingOrganization only Reference(KT2_Organization)
* telecom ..0
* note ..0
