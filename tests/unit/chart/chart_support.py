"""Shared values and helpers of the chart tests (fixtures are in conftest.py)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
CHART_DIR = ROOT / "charts" / "drover"
RELEASE = "drover"
NAMESPACE = "drover-system"

DIGEST = "sha256:" + "ab" * 32

# Every optional feature on, every knob set (cluster-wide mode).
ALL_ON: dict[str, Any] = {
    "replicaCount": 2,
    "image": {"repository": "registry.example.com/drover/operator", "tag": "0.1.0-rc1"},
    "imagePullSecrets": [{"name": "regcred"}],
    "rbac": {"readSecrets": True},
    "serviceAccount": {"annotations": {"iam.example.com/role": "drover"}},
    "operator": {
        "peeringName": "drover-peers",
        "extraArgs": ["--config", "/etc/drover/config.yaml"],
        "extraEnv": [{"name": "DROVER_PROMETHEUS_TIMEOUT_SECONDS", "value": "3"}],
    },
    "podAnnotations": {"example.com/team": "ml-platform"},
    "podLabels": {"example.com/tier": "control"},
    "priorityClassName": "system-cluster-critical",
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}],
    "affinity": {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": {
                        "topologyKey": "kubernetes.io/hostname",
                        "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "drover"}},
                    },
                }
            ]
        }
    },
    "config": {
        "acceleratorClasses": {
            "nvidia-l4": {
                "resourceName": "nvidia.com/gpu",
                "memoryGiB": 24,
                "nodeSelector": {"cloud.google.com/gke-accelerator": "nvidia-l4"},
                "tolerations": [
                    {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
                ],
            },
            "nvidia-a100-80gb": {
                "resourceName": "nvidia.com/gpu",
                "memoryGiB": 80,
                "nodeSelector": {"cloud.google.com/gke-accelerator": "nvidia-tesla-a100"},
                "image": {"repository": "registry.example.com/drover/workers-a100", "tag": "1"},
            },
        },
        "prometheus": {"url": "https://prometheus.monitoring.svc:9091/", "timeoutSeconds": 3},
        "images": {
            "workers": {"repository": "registry.example.com/drover/workers", "tag": "0.1.0"},
            "workersCpu": {"repository": "registry.example.com/drover/workers", "digest": DIGEST},
            "pullPolicy": "Always",
        },
        "serving": {"routePrefix": "/llm"},
        "reconcile": {"autoscaleIntervalSeconds": 30},
    },
    "metrics": {
        "service": {"annotations": {"example.com/scrape": "true"}},
        "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
        "prometheusRule": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
    },
    "grafanaDashboard": {"enabled": True, "namespace": "monitoring"},
    "networkPolicy": {"enabled": True, "namespaces": ["ml-serving"]},
}

WATCHED = ["team-a", "team-b"]
NAMESPACED = {**copy.deepcopy(ALL_ON), "watchNamespaces": WATCHED}


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]
