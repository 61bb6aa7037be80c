"""The module's own access to a Koppeltaal domain: SMART Backend Services, as the shared
client pool does it (``integration.EhrClients``; docs/architecture.md, "The seam where an
EHR connects"), with what Koppeltaal differs in: :data:`CONNECTION`.

TOP-KT-005/-016/-021 and the Koppeltaal auth service: ``client_credentials`` with a
``private_key_jwt`` client assertion (iss = sub = our client id, aud = the token URL, a new
``jti`` each time, ``exp`` at most five minutes ahead, ``kid`` in the header so the domain
picks the right key from our JWKS). The scope we ask for is ignored: the domain grants our
role's scopes. There is no refresh token; a new token is fetched shortly before
``expires_in`` runs out (:class:`fhir_burnout.smart_launch.BackendTokenSource`).

Algorithms: RS512 by default (the Koppeltaal reference code and the POC module use it);
RS384 and ES384 when the config says so (``koppeltaal_alg`` per ``[[ehr]]``) or the key
names one in its ``alg`` (``smart_launch.assertion_algorithm``).
"""

from __future__ import annotations

from fhir_burnout.integration import Connection
from fhir_burnout.koppeltaal._trace import TracedSession

DEFAULT_ALGORITHM = "RS512"
#: What we ask for; the domain ignores it and grants the role's scopes.
DEFAULT_SCOPE = "system/*.cruds"
#: What the client pool does differently for a Koppeltaal domain: every request (discovery,
#: tokens, FHIR) carries the trace headers, and assertions are RS512 unless said otherwise.
CONNECTION = Connection(session=TracedSession, algorithm=DEFAULT_ALGORITHM)
