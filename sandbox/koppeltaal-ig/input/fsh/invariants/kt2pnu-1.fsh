Invariant: kt2pnu-1
Description: "Practitioner name use must not be empty"
Severity: #error
* expression = "use.hasValue()"