"""The operator pod runs locked down: non-root, read-only root, no capabilities, seccomp."""

from __future__ import annotations

import helm_python as helm
import pytest
from chart_support import ALL_ON, NAMESPACED, one


@pytest.mark.parametrize(
    "values", [None, ALL_ON, NAMESPACED], ids=["defaults", "all-features", "namespaced"]
)
def test_operator_pod_security_settings(render, values) -> None:
    pod = one(render(values), "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod["containers"]:
        ctx = container["securityContext"]
        assert ctx["runAsNonRoot"] is True
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["readOnlyRootFilesystem"] is True
        assert ctx["privileged"] is False
        assert ctx["capabilities"] == {"drop": ["ALL"]}
        assert "add" not in ctx["capabilities"]
        assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
        assert container["resources"]["requests"]["cpu"]
        assert container["resources"]["limits"]["memory"]


def test_tmp_is_a_writable_empty_dir_and_config_is_read_only(render) -> None:
    pod = one(render(None), "Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
    assert not mounts["/tmp"].get("readOnly", False)
    assert mounts["/etc/drover"]["readOnly"] is True
    assert volumes[mounts["/etc/drover"]["name"]]["configMap"]["name"] == "drover-config"


def test_probes_hit_kopfs_health_endpoint_on_the_health_port(render) -> None:
    docs = render({"operator": {"healthPort": 9999}})
    container = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["health"] == 9999
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}


def test_root_uid_is_refused(chart) -> None:
    with pytest.raises(helm.HelmValuesError, match="runAsUser"):
        chart.validate_schema({"podSecurityContext": {"runAsUser": 0}})
