"""Local control plane, discovery documents: /version, /api, /apis and the per group-version
resource lists (plain APIVersions/APIGroupList/APIResourceList, which kubectl accepts).
"""

from __future__ import annotations

from typing import Any

from .registry import GROUP_ORDER, Registry, Resource

VERSION_INFO = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-drover",
    "gitCommit": "drover-local",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.23",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def build_api_versions(address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
    }


def _group_entry(group: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": entries, "preferredVersion": entries[0]}


def build_group_list(registry: Registry) -> dict[str, Any]:
    gvs = registry.group_versions()
    order = {g: i for i, g in enumerate(GROUP_ORDER)}
    groups = sorted((g for g in gvs if g), key=lambda g: (order.get(g, len(order)), g))
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group_entry(g, gvs[g]) for g in groups],
    }


def build_group(registry: Registry, group: str) -> dict[str, Any] | None:
    versions = registry.group_versions().get(group)
    if not versions or not group:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_entry(group, versions)}


def _resource_entry(res: Resource) -> list[dict[str, Any]]:
    entry: dict[str, Any] = {
        "name": res.plural,
        "singularName": res.singular,
        "namespaced": res.namespaced,
        "kind": res.kind,
        "verbs": res.verbs,
    }
    if res.short_names:
        entry["shortNames"] = res.short_names
    if res.categories:
        entry["categories"] = res.categories
    out = [entry]
    for sub in sorted(res.subresources):
        if sub == "scale":
            out.append(
                {
                    "name": f"{res.plural}/scale",
                    "singularName": "",
                    "namespaced": res.namespaced,
                    "group": "autoscaling",
                    "version": "v1",
                    "kind": "Scale",
                    "verbs": ["get", "patch", "update"],
                }
            )
        elif sub == "finalize":
            out.append(
                {
                    "name": f"{res.plural}/finalize",
                    "singularName": "",
                    "namespaced": res.namespaced,
                    "kind": res.kind,
                    "verbs": ["update"],
                }
            )
        else:
            out.append(
                {
                    "name": f"{res.plural}/{sub}",
                    "singularName": "",
                    "namespaced": res.namespaced,
                    "kind": res.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
    return out


def build_resource_list(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    resources = registry.in_group_version(group, version)
    if not resources:
        return None
    items = [e for r in sorted(resources, key=lambda r: r.plural) for e in _resource_entry(r)]
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": items}


AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def wants_aggregated(accept: str) -> bool:
    """kubectl asks for aggregated discovery first (`as=APIGroupDiscoveryList;v=v2`)."""
    return any(
        "as=APIGroupDiscoveryList" in part and "v=v2" in part.replace("v=v2beta1", "")
        for part in accept.split(",")
    )


def _aggregated_resource(res: Resource) -> dict[str, Any]:
    kind = {"group": res.group, "version": res.version, "kind": res.kind}
    entry: dict[str, Any] = {
        "resource": res.plural,
        "responseKind": kind,
        "scope": "Namespaced" if res.namespaced else "Cluster",
        "singularResource": res.singular,
        "verbs": res.verbs,
    }
    if res.short_names:
        entry["shortNames"] = res.short_names
    if res.categories:
        entry["categories"] = res.categories
    subs = []
    for sub in sorted(res.subresources):
        if sub == "scale":
            scale = {"group": "autoscaling", "version": "v1", "kind": "Scale"}
            subs.append(
                {"subresource": sub, "responseKind": scale, "verbs": ["get", "patch", "update"]}
            )
        elif sub == "status":
            subs.append(
                {"subresource": sub, "responseKind": kind, "verbs": ["get", "patch", "update"]}
            )
    if subs:
        entry["subresources"] = subs
    return entry


def build_aggregated(registry: Registry, core: bool) -> dict[str, Any]:
    """APIGroupDiscoveryList (apidiscovery.k8s.io/v2) for /api (core) or /apis (groups)."""
    gvs = registry.group_versions()
    order = {g: i for i, g in enumerate(GROUP_ORDER)}
    groups = (
        [""] if core else sorted((g for g in gvs if g), key=lambda g: (order.get(g, len(order)), g))
    )
    items = []
    for group in groups:
        versions = []
        for version in gvs.get(group, []):
            resources = sorted(registry.in_group_version(group, version), key=lambda r: r.plural)
            versions.append(
                {
                    "version": version,
                    "freshness": "Current",
                    "resources": [_aggregated_resource(r) for r in resources],
                }
            )
        items.append({"metadata": {"name": group, "creationTimestamp": None}, "versions": versions})
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    }
