"""values.schema.json refuses bad values with a message that names the field."""

from __future__ import annotations

import helm_python as helm
import pytest
from chart_support import ALL_ON, NAMESPACED, RELEASE

BAD_VALUES = [
    ("negative-replicas", {"replicaCount": -1}, "/replicaCount"),
    ("replicas-wrong-type", {"replicaCount": "two"}, "/replicaCount"),
    ("unknown-top-level-key", {"replicas": 2}, "'replicas'"),
    ("unknown-nested-key", {"config": {"prometheus": {"adress": "x"}}}, "'adress'"),
    (
        "prometheus-url-no-scheme",
        {"config": {"prometheus": {"url": "prom:9090"}}},
        "/config/prometheus/url",
    ),
    (
        "prometheus-url-ftp",
        {"config": {"prometheus": {"url": "ftp://prom"}}},
        "/config/prometheus/url",
    ),
    (
        "prometheus-timeout-zero",
        {"config": {"prometheus": {"timeoutSeconds": 0}}},
        "/config/prometheus/timeoutSeconds",
    ),
    (
        "accelerator-without-resource-name",
        {"config": {"acceleratorClasses": {"a100": {"memoryGiB": 80}}}},
        "resourceName",
    ),
    (
        "accelerator-resource-name-wrong-type",
        {"config": {"acceleratorClasses": {"a100": {"resourceName": 1}}}},
        "/config/acceleratorClasses/a100/resourceName",
    ),
    (
        "accelerator-resource-name-malformed",
        {"config": {"acceleratorClasses": {"a100": {"resourceName": "gpu"}}}},
        "/config/acceleratorClasses/a100/resourceName",
    ),
    (
        "accelerator-class-name-upper-case",
        {"config": {"acceleratorClasses": {"A100": {"resourceName": "nvidia.com/gpu"}}}},
        "A100",
    ),
    (
        "accelerator-toleration-bad-operator",
        {
            "config": {
                "acceleratorClasses": {
                    "l4": {"resourceName": "nvidia.com/gpu", "tolerations": [{"operator": "Is"}]}
                }
            }
        },
        "/config/acceleratorClasses/l4/tolerations/0/operator",
    ),
    (
        "accelerator-memory-negative",
        {"config": {"acceleratorClasses": {"l4": {"resourceName": "", "memoryGiB": -1}}}},
        "memoryGiB",
    ),
    (
        "accelerator-unknown-quantization",
        {"config": {"acceleratorClasses": {"l4": {"resourceName": "", "quantizations": ["int4"]}}}},
        "/config/acceleratorClasses/l4/quantizations/0",
    ),
    ("health-port-out-of-range", {"operator": {"healthPort": 70000}}, "/operator/healthPort"),
    ("metrics-port-string", {"operator": {"metricsPort": "http"}}, "/operator/metricsPort"),
    ("watch-namespace-invalid", {"watchNamespaces": ["Team_A"]}, "/watchNamespaces/0"),
    ("watch-namespaces-duplicate", {"watchNamespaces": ["a", "a"]}, "/watchNamespaces"),
    ("pull-policy-not-an-enum", {"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
    ("root-user", {"podSecurityContext": {"runAsUser": 0}}, "/podSecurityContext/runAsUser"),
    ("bad-quantity", {"resources": {"limits": {"memory": "lots"}}}, "/resources/limits/memory"),
    (
        "bad-scrape-interval",
        {"metrics": {"serviceMonitor": {"interval": "30 seconds"}}},
        "/metrics/serviceMonitor/interval",
    ),
    (
        "bad-severity",
        {"metrics": {"prometheusRule": {"severity": "page"}}},
        "/metrics/prometheusRule/severity",
    ),
    (
        "route-prefix-without-slash",
        {"config": {"serving": {"routePrefix": "llm"}}},
        "/config/serving/routePrefix",
    ),
    (
        "reconcile-interval-zero",
        {"config": {"reconcile": {"autoscaleIntervalSeconds": 0}}},
        "autoscaleIntervalSeconds",
    ),
    ("bad-digest", {"image": {"digest": "latest"}}, "/image/digest"),
]


@pytest.mark.parametrize(
    ("values", "field"), [(v, f) for _, v, f in BAD_VALUES], ids=[i for i, _, _ in BAD_VALUES]
)
def test_bad_values_are_refused_naming_the_field(chart: helm.Chart, values, field) -> None:
    with pytest.raises(helm.HelmValuesError) as refused:
        chart.validate_schema(values)
    assert field in str(refused.value)


def test_render_refuses_bad_values_too(chart: helm.Chart) -> None:
    with pytest.raises(helm.HelmValuesError, match="/replicaCount"):
        chart.render({"replicaCount": -1}, name=RELEASE)


@pytest.mark.parametrize(
    "values", [None, ALL_ON, NAMESPACED], ids=["defaults", "all-features", "namespaced"]
)
def test_good_values_are_accepted(chart: helm.Chart, values) -> None:
    chart.validate_schema(values)


def test_cpu_class_and_null_priority_are_accepted(chart: helm.Chart) -> None:
    chart.validate_schema(
        {
            "config": {"acceleratorClasses": {"cpu-large": {"resourceName": ""}}},
            "operator": {"peeringPriority": None},
            "replicaCount": 0,
        }
    )
