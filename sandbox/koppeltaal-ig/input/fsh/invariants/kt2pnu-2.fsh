Invariant: kt2pnu-2
Description: "Patient name use must not be empty"
* severity = #error
* expression = "use.hasValue()"