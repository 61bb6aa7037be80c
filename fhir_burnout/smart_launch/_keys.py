"""The app's signing keys (for private_key_jwt) and the JWKS it publishes.

``keys_dir/manifest.json`` lists the keys, newest first; each private key is a JWK file
beside it. Rotation adds a new current key and keeps the old ones published until their
``retire_at``, so an EHR that cached our JWKS still verifies assertions in flight.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from joserfc.jwk import ECKey, RSAKey

#: RS384 and ES384 for SMART (App Launch 2.2 names them); RS512 for Koppeltaal domains.
KEY_ALGORITHMS = ("RS384", "ES384", "RS512")
RETIRE_AFTER_SECONDS = 7 * 24 * 3600


def _manifest(keys_dir: Path) -> list[dict[str, Any]]:
    path = keys_dir / "manifest.json"
    if not path.exists():
        return []
    return list(json.loads(path.read_text(encoding="utf-8")))


def generate_key(keys_dir: str | Path, alg: str = "RS384", *, now: float | None = None) -> str:
    """Create a new current signing key; older keys retire a week later. Returns its kid."""
    if alg not in KEY_ALGORITHMS:
        raise ValueError(f"alg must be one of {KEY_ALGORITHMS}")
    keys_dir = Path(keys_dir)
    keys_dir.mkdir(parents=True, exist_ok=True)
    now = time.time() if now is None else now
    key = (
        RSAKey.generate_key(3072, private=True)
        if alg.startswith("RS")
        else ECKey.generate_key("P-384", private=True)
    )
    kid = key.thumbprint()
    private = {**key.as_dict(private=True), "alg": alg, "kid": kid, "use": "sig"}
    path = keys_dir / f"{kid}.jwk"
    path.write_text(json.dumps(private), encoding="utf-8")
    path.chmod(0o600)
    manifest = _manifest(keys_dir)
    for entry in manifest:
        entry.setdefault("retire_at", now + RETIRE_AFTER_SECONDS)
    manifest.insert(0, {"kid": kid, "alg": alg, "created_at": now})
    (keys_dir / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return kid


def current_private_key(keys_dir: str | Path) -> dict[str, Any] | None:
    """The newest private key, or None when no key was generated yet."""
    keys_dir = Path(keys_dir)
    manifest = _manifest(keys_dir)
    if not manifest:
        return None
    return dict(json.loads((keys_dir / f"{manifest[0]['kid']}.jwk").read_text(encoding="utf-8")))


def public_jwks(keys_dir: str | Path, *, now: float | None = None) -> dict[str, Any]:
    """The JWKS to publish: every key that has not retired yet, public parts only."""
    keys_dir = Path(keys_dir)
    now = time.time() if now is None else now
    keys = []
    for entry in _manifest(keys_dir):
        if entry.get("retire_at", now + 1) <= now:
            continue
        private = json.loads((keys_dir / f"{entry['kid']}.jwk").read_text(encoding="utf-8"))
        imported = (
            RSAKey.import_key(private) if private["kty"] == "RSA" else ECKey.import_key(private)
        )
        public = {
            **imported.as_dict(private=False),
            "alg": entry["alg"],
            "kid": entry["kid"],
            "use": "sig",
        }
        keys.append(public)
    return {"keys": keys}
