"""Custom resources checked offline against the CustomResourceDefinitions their operators publish.

The CRDs are in `../shared/crds/` beside the repository (their README names each project, commit and
license; CI has them there too). Each served version's `openAPIV3Schema` becomes a JSON Schema that says
what the API server would accept and keep:

- an object with `properties` and no `additionalProperties` refuses any other field: the API server prunes
  unknown fields of a structural schema silently, so a misspelled field would vanish, not fail;
  `x-kubernetes-preserve-unknown-fields: true` keeps them (a policy's `definition`, a queue's `arguments`);
- `x-kubernetes-int-or-string: true` takes an integer or a string (quantities, ports);
- `nullable: true` also takes null; `required`, `enum`, `pattern`, bounds and item schemas as written;
- `metadata` is Kubernetes' ObjectMeta, as kubernetes-validate's strict schema has it.

Not checked offline: the CRDs' CEL rules (`x-kubernetes-validations`) and value formats, which only the
API server evaluates, and what the operators' admission webhooks add.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import referencing
import yaml
from kubernetes_validate import utils as kubernetes_validate

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT.parent / "shared" / "crds"  # beside the repository, as in CI
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
# kubernetes-validate's strict schemas (ObjectMeta) of the newest Kubernetes the manifests are checked with.
KUBERNETES_VERSION = "1.37.0"


class MissingCrds(RuntimeError):
    """The operators' CRDs are not where the checks look for them."""


@dataclass(frozen=True)
class CustomResourceSchemas:
    """The JSON Schema of every served (apiVersion, kind) of the CRDs in a folder."""

    schemas: dict[tuple[str, str], dict]
    registry: referencing.Registry

    @property
    def groups(self) -> set[str]:
        return {api_version.split("/")[0] for api_version, _ in self.schemas}

    def is_custom(self, doc: dict) -> bool:
        """Whether a manifest belongs to one of these CRDs' API groups (built-in kinds do not)."""
        return doc.get("apiVersion", "").split("/")[0] in self.groups

    def problems(self, doc: dict) -> list[str]:
        """What the API server would refuse or drop in one custom resource, one line per problem."""
        where = f"{doc.get('kind')} {doc.get('metadata', {}).get('name')}"
        schema = self.schemas.get((doc.get("apiVersion"), doc.get("kind")))
        if schema is None:
            return [f"{where}: no CRD serves {doc.get('apiVersion')} {doc.get('kind')}"]
        validator = jsonschema.Draft202012Validator(schema, registry=self.registry)
        return sorted(
            f"{where}: {'.'.join(str(part) for part in error.absolute_path) or '(root)'}: {error.message}"
            for error in validator.iter_errors(doc)
        )


def load(folder: Path = CRDS) -> CustomResourceSchemas:
    """The schemas of every CRD file in `folder` (recursively); a missing folder is an error, not a skip."""
    return _load(folder.resolve())


@functools.cache
def _load(folder: Path) -> CustomResourceSchemas:
    files = sorted(folder.rglob("*.yaml")) if folder.is_dir() else []
    crds = [doc for path in files for doc in yaml.safe_load_all(path.read_text()) if _is_crd(doc)]
    if not crds:
        raise MissingCrds(
            f"no CustomResourceDefinitions in {folder}: the operators' published CRDs belong there, beside "
            "the repository (../shared/crds, see its README); the production overlay cannot be validated "
            "without them"
        )
    schemas = {}
    for crd in crds:
        spec = crd["spec"]
        for version in spec["versions"]:
            if version.get("served", True):
                api_version = f"{spec['group']}/{version['name']}"
                schemas[(api_version, spec["names"]["kind"])] = resource_schema(
                    version["schema"]["openAPIV3Schema"]
                )
    return CustomResourceSchemas(schemas=schemas, registry=_kubernetes_definitions())


def _is_crd(doc) -> bool:
    return isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition"


def resource_schema(open_api: dict) -> dict:
    """The JSON Schema of a whole resource: its CRD's structural schema, with `metadata` as ObjectMeta."""
    schema = to_json_schema(open_api)
    schema["properties"]["metadata"] = {"$ref": f"{_definitions_id()}#/$defs/{OBJECT_META}"}
    return schema


def to_json_schema(node: dict) -> dict:
    """One node of a CRD's OpenAPI v3 structural schema as JSON Schema (rules in the module docstring)."""
    schema = {
        key: value
        for key, value in node.items()
        if key in ("type", "enum", "required", "pattern", "minimum", "maximum", "minLength", "maxLength")
        or key in ("minItems", "maxItems", "uniqueItems", "minProperties", "maxProperties", "multipleOf")
    }
    if node.get("x-kubernetes-int-or-string"):
        schema.pop("type", None)
        schema["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    elif "anyOf" in node or "allOf" in node or "oneOf" in node:
        for key in ("anyOf", "allOf", "oneOf"):
            if key in node:
                schema[key] = [to_json_schema(option) for option in node[key]]
    if node.get("nullable") and "type" in schema:
        schema["type"] = [schema["type"], "null"]
    if "items" in node:
        schema["items"] = to_json_schema(node["items"])
    if "properties" in node:
        schema["properties"] = {name: to_json_schema(child) for name, child in node["properties"].items()}
    additional = node.get("additionalProperties")
    if isinstance(additional, dict):
        schema["additionalProperties"] = to_json_schema(additional)
    elif node.get("type") == "object" and not node.get("x-kubernetes-preserve-unknown-fields"):
        # Pruned by the API server: anything not declared is dropped, so it is refused here.
        schema["additionalProperties"] = bool(additional)
    return schema


@functools.cache
def _definitions_resource() -> referencing.Resource:
    path = f"kubernetes-json-schema/v{KUBERNETES_VERSION}-local-strict/_definitions.json"
    return referencing.Resource.from_contents(kubernetes_validate.schema_contents(path, KUBERNETES_VERSION))


def _definitions_id() -> str:
    return _definitions_resource().id()


def _kubernetes_definitions() -> referencing.Registry:
    return _definitions_resource() @ referencing.Registry()
