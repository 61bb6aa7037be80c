"""Writing the FHIR package: an NPM-style .tgz and collection Bundles in JSON and XML.

The NPM package follows the FHIR package specification (https://confluence.hl7.org/display/FHIR/
NPM+Package+Specification): ``package/package.json``, one file per resource and
``package/.index.json``. Everything written is byte-identical between two builds of the same
input: sorted entries, fixed timestamps, no owner names, gzip without a time stamp.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fhir_burnout.fhir import FhirXmlError, resource_from_xml, resource_to_xml
from fhir_burnout.resources._model import Programme

FHIR_VERSION = "4.0.1"


@dataclass(frozen=True)
class WrittenPackage:
    """Where the build wrote its outputs."""

    tgz: Path
    bundle_json: Path
    bundle_xml: Path
    resources: int


def dumps(data: Any) -> bytes:
    """Our JSON layout: two-space indent, UTF-8, newline at the end."""
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def resource_filename(resource: dict[str, Any]) -> str:
    """The file name of a resource inside the package."""
    return f"{resource['resourceType']}-{resource['id']}.json"


def _epoch(programme: Programme) -> int:
    return int(datetime.fromisoformat(programme.date).replace(tzinfo=UTC).timestamp())


def package_manifest(programme: Programme) -> dict[str, Any]:
    """``package/package.json``."""
    return {
        "name": programme.name,
        "version": programme.version,
        "title": programme.title.get("en") or programme.title.get(programme.language),
        "description": programme.description.get("en")
        or programme.description.get(programme.language),
        "canonical": programme.canonical,
        "url": programme.contact or programme.canonical,
        "author": programme.publisher,
        "license": programme.licence_id,
        "fhirVersions": [FHIR_VERSION],
        "type": "Conformance",
        "date": programme.date.replace("-", "") + "000000",
        "jurisdiction": f"urn:iso:std:iso:3166#{programme.jurisdiction}"
        if programme.jurisdiction
        else None,
        "dependencies": {"hl7.fhir.r4.core": FHIR_VERSION},
    }


def package_index(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """``package/.index.json`` (index-version 2)."""
    files = []
    for r in resources:
        entry = {
            "filename": resource_filename(r),
            "resourceType": r["resourceType"],
            "id": r["id"],
        }
        for key in ("url", "version", "kind", "type"):
            value = r.get(key)
            if isinstance(value, str):
                entry[key] = value
        files.append(entry)
    return {"index-version": 2, "files": files}


def collection_bundle(programme: Programme, resources: list[dict[str, Any]]) -> dict[str, Any]:
    """A collection Bundle of every resource, full URLs being their canonical URLs."""
    return {
        "resourceType": "Bundle",
        "id": f"{programme.name.replace('.', '-')}-{programme.version}",
        "meta": {"lastUpdated": f"{programme.date}T00:00:00Z"},
        "type": "collection",
        "timestamp": f"{programme.date}T00:00:00Z",
        "entry": [
            {"fullUrl": str(r.get("url") or f"urn:fhir-burnout:{r['id']}"), "resource": r}
            for r in resources
        ],
    }


def bundle_to_xml(bundle: dict[str, Any]) -> bytes:
    """FHIR XML of a Bundle (see fhir_burnout.fhir: every value kept exactly as written)."""
    return resource_to_xml(bundle)


def bundle_from_xml(data: bytes) -> dict[str, Any]:
    """Read FHIR XML of a Bundle back to FHIR JSON (safe parser, see fhir_burnout.fhir)."""
    bundle = resource_from_xml(data)
    if bundle["resourceType"] != "Bundle":
        raise FhirXmlError(f"not a FHIR Bundle: the root element is {bundle['resourceType']}")
    return bundle


def _tar_bytes(members: list[tuple[str, bytes]], mtime: int) -> bytes:
    raw = io.BytesIO()
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar,
    ):
        for name, content in sorted(members):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(content), mtime, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(content))
    return raw.getvalue()


def write_package(
    programme: Programme, resources: list[dict[str, Any]], out: str | Path
) -> WrittenPackage:
    """Write the .tgz package, bundle.json and bundle.xml into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    members = [("package/package.json", dumps(package_manifest(programme)))]
    members.append(("package/.index.json", dumps(package_index(resources))))
    members += [(f"package/{resource_filename(r)}", dumps(r)) for r in resources]
    tgz = out / f"{programme.name}-{programme.version}.tgz"
    tgz.write_bytes(_tar_bytes(members, _epoch(programme)))
    bundle = collection_bundle(programme, resources)
    bundle_json = out / "bundle.json"
    bundle_json.write_bytes(dumps(bundle))
    bundle_xml = out / "bundle.xml"
    bundle_xml.write_bytes(bundle_to_xml(bundle))
    return WrittenPackage(tgz, bundle_json, bundle_xml, len(resources))


def read_package(tgz: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Read a package back: its manifest and its resources, in index order."""
    manifest: dict[str, Any] = {}
    resources: dict[str, dict[str, Any]] = {}
    index: list[str] = []
    with tarfile.open(tgz, mode="r:gz") as tar:
        for member in tar.getmembers():
            if not member.isfile():
                continue
            handle = tar.extractfile(member)
            if handle is None:
                continue
            data = json.loads(handle.read().decode("utf-8"))
            name = member.name.removeprefix("package/")
            if name == "package.json":
                manifest = data
            elif name == ".index.json":
                index = [f["filename"] for f in data.get("files", [])]
            elif "/" not in name and name.endswith(".json"):
                resources[name] = data
    ordered = [resources[n] for n in index if n in resources]
    ordered += [r for n, r in sorted(resources.items()) if n not in index]
    return manifest, ordered
