"""Local control plane, resource registry: which kinds the server serves and how.

Holds the built-in kinds the operator and its tests use, and the resources that a
CustomResourceDefinition registers (and unregisters when the CRD goes away).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass
class Resource:
    """One served group/version/resource."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    short_names: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    subresources: set[str] = field(default_factory=set)  # "status", "scale"
    has_generation: bool = False
    schema: dict[str, Any] | None = None  # openAPIV3Schema (CRDs only)
    printer_columns: list[dict[str, Any]] = field(default_factory=list)
    scale_paths: dict[str, str] = field(default_factory=dict)
    storage_version: str = ""
    crd_name: str = ""  # set for custom resources
    preserve_unknown: bool = False
    selectable_fields: list[str] = field(default_factory=list)  # beyond metadata.name/namespace

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def storage_key(self) -> tuple[str, str]:
        """Objects of all versions of one group/resource share one storage."""
        return (self.group, self.plural)

    @property
    def verbs(self) -> list[str]:
        return list(ALL_VERBS)


_EVENT_FIELDS = [
    *(
        f"involvedObject.{k}"
        for k in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
    ),
    *(
        f"regarding.{k}"
        for k in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
    ),
    "reason",
    "reportingComponent",
    "reportingController",
    "source",
    "type",
]
# Field selectors kube-apiserver supports per built-in resource (besides metadata.name/namespace).
BUILTIN_FIELDS: dict[tuple[str, str], list[str]] = {
    ("", "pods"): ["spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                   "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP",
                   "status.nominatedNodeName"],
    ("", "events"): _EVENT_FIELDS,
    ("events.k8s.io", "events"): _EVENT_FIELDS,
    ("", "secrets"): ["type"],
    ("", "namespaces"): ["status.phase"],
    ("", "services"): ["spec.clusterIP", "spec.type"],
    ("", "nodes"): ["spec.unschedulable"],
    ("batch", "jobs"): ["status.successful"],
}  # fmt: skip


def _b(group: str, version: str, kind: str, plural: str, **kw: Any) -> Resource:
    kw.setdefault("selectable_fields", list(BUILTIN_FIELDS.get((group, plural), [])))
    return Resource(group, version, kind, plural, storage_version=version, **kw)


BUILTINS: list[Resource] = [
    _b(
        "",
        "v1",
        "Namespace",
        "namespaces",
        namespaced=False,
        short_names=["ns"],
        subresources={"status", "finalize"},
    ),
    _b("", "v1", "ConfigMap", "configmaps", short_names=["cm"]),
    _b("", "v1", "Secret", "secrets"),
    _b(
        "",
        "v1",
        "Service",
        "services",
        short_names=["svc"],
        categories=["all"],
        subresources={"status"},
    ),
    _b("", "v1", "ServiceAccount", "serviceaccounts", short_names=["sa"]),
    _b(
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        short_names=["pvc"],
        subresources={"status"},
    ),
    _b(
        "",
        "v1",
        "Pod",
        "pods",
        short_names=["po"],
        categories=["all"],
        subresources={"status"},
        has_generation=True,
    ),
    _b("", "v1", "Event", "events", short_names=["ev"]),
    _b("", "v1", "Endpoints", "endpoints", short_names=["ep"]),
    _b("", "v1", "Node", "nodes", namespaced=False, short_names=["no"], subresources={"status"}),
    _b(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        short_names=["deploy"],
        categories=["all"],
        subresources={"status", "scale"},
        has_generation=True,
        scale_paths={"spec": ".spec.replicas", "status": ".status.replicas"},
    ),
    _b(
        "batch",
        "v1",
        "Job",
        "jobs",
        categories=["all"],
        subresources={"status"},
        has_generation=True,
    ),
    _b("coordination.k8s.io", "v1", "Lease", "leases"),
    _b("events.k8s.io", "v1", "Event", "events", short_names=["ev"]),
    _b("rbac.authorization.k8s.io", "v1", "Role", "roles"),
    _b("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings"),
    _b("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", namespaced=False),
    _b(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        namespaced=False,
    ),
    _b(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        namespaced=False,
        short_names=["crd", "crds"],
        subresources={"status"},
        has_generation=True,
    ),
]

# Group preference order in discovery, as kube-apiserver lists them.
GROUP_ORDER = [
    "",
    "apps",
    "events.k8s.io",
    "batch",
    "coordination.k8s.io",
    "rbac.authorization.k8s.io",
    "apiextensions.k8s.io",
]


class Registry:
    """Lookup of served resources by (group, version, plural) and by kind."""

    def __init__(self) -> None:
        self._by_gvr: dict[tuple[str, str, str], Resource] = {}
        self._crd_keys: dict[str, list[tuple[str, str, str]]] = {}
        self.revision = 0  # bumped whenever the set of served resources changes
        for res in BUILTINS:
            self._by_gvr[(res.group, res.version, res.plural)] = res

    def get(self, group: str, version: str, plural: str) -> Resource | None:
        return self._by_gvr.get((group, version, plural))

    def all(self) -> list[Resource]:
        return list(self._by_gvr.values())

    def group_versions(self) -> dict[str, list[str]]:
        """group -> served versions, preferred (storage/first) version first."""
        out: dict[str, list[str]] = {}
        for res in self._by_gvr.values():
            versions = out.setdefault(res.group, [])
            if res.version not in versions:
                versions.append(res.version)
        for group, versions in out.items():
            versions.sort(key=lambda v: _version_priority(v), reverse=True)
            out[group] = versions
        return out

    def in_group_version(self, group: str, version: str) -> list[Resource]:
        return [r for r in self._by_gvr.values() if r.group == group and r.version == version]

    def by_kind(self, api_version: str, kind: str) -> Resource | None:
        group, _, version = api_version.rpartition("/")
        for res in self._by_gvr.values():
            if res.group == group and res.version == version and res.kind == kind:
                return res
        return None

    def is_crd_resource(self, group: str, plural: str) -> bool:
        return any(
            r.crd_name for r in self._by_gvr.values() if r.group == group and r.plural == plural
        )

    def register_crd(self, crd: dict[str, Any]) -> None:
        """(Re)register every served version of a CRD."""
        self.unregister_crd(crd["metadata"]["name"])
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        versions = spec.get("versions") or []
        storage = next(
            (v["name"] for v in versions if v.get("storage")),
            versions[0]["name"] if versions else "v1",
        )
        keys = []
        for ver in versions:
            if not ver.get("served", True):
                continue
            subs = ver.get("subresources") or {}
            schema = (ver.get("schema") or {}).get("openAPIV3Schema")
            res = Resource(
                group=spec.get("group", ""),
                version=ver["name"],
                kind=names.get("kind", ""),
                plural=names.get("plural", ""),
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                short_names=list(names.get("shortNames") or []),
                categories=list(names.get("categories") or []),
                subresources={k for k in ("status", "scale") if k in subs},
                has_generation=True,
                schema=schema,
                printer_columns=list(ver.get("additionalPrinterColumns") or []),
                scale_paths=_scale_paths(subs.get("scale")),
                storage_version=storage,
                crd_name=crd["metadata"]["name"],
                preserve_unknown=bool(spec.get("preserveUnknownFields")),
                selectable_fields=[
                    str(f.get("jsonPath", "")).lstrip(".")
                    for f in ver.get("selectableFields") or []
                ],
            )
            key = (res.group, res.version, res.plural)
            self._by_gvr[key] = res
            keys.append(key)
        self.revision += 1
        self._crd_keys[crd["metadata"]["name"]] = keys

    def unregister_crd(self, name: str) -> None:
        for key in self._crd_keys.pop(name, []):
            self._by_gvr.pop(key, None)
        self.revision += 1


def _scale_paths(scale: dict[str, Any] | None) -> dict[str, str]:
    if not scale:
        return {}
    out = {
        "spec": scale.get("specReplicasPath", ".spec.replicas"),
        "status": scale.get("statusReplicasPath", ".status.replicas"),
    }
    if scale.get("labelSelectorPath"):
        out["selector"] = scale["labelSelectorPath"]
    return out


def _version_priority(version: str) -> tuple[int, int, int]:
    """Kubernetes version ordering: GA > beta > alpha, higher numbers first."""
    import re

    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not m:
        return (-1, 0, 0)
    stage = {"alpha": 0, "beta": 1, None: 2}[m.group(2)]
    return (stage, int(m.group(1)), int(m.group(3) or 0))
