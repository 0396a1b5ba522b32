"""drover.config: defaults, the mounted YAML, DROVER_* overrides, and clear errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import drover.config_loader as config_module
from drover import __version__ as VERSION
from drover.config import ConfigError, OperatorConfig
from drover.config_loader import load_config

GPU_CONFIG = {
    "watchNamespaces": ["ml", "ml-staging"],
    "acceleratorClasses": {
        "nvidia-l4": {
            "resourceName": "nvidia.com/gpu",
            "memoryGiB": 24,
            "nodeSelector": {"cloud.google.com/gke-accelerator": "nvidia-l4"},
            "tolerations": [
                {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
            ],
        },
        "cpu": {"resourceName": ""},
    },
    "prometheus": {"url": "http://prom.monitoring:9090/", "timeoutSeconds": 2.5},
    "images": {"workers": {"repository": "example.com/workers", "tag": "1"}},
    "serving": {"httpPort": 8001, "routePrefix": "/llm"},
    "operator": {"healthPort": 9080, "metricsPort": 9081, "peeringName": "ml-ops"},
    "reconcile": {"dependencyRetrySeconds": 5},
}


def write(tmp_path: Path, data: object, name: str = "config.yaml") -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return str(path)


def error_of(path: str | None, environ: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as raised:
        load_config(path, environ)
    return str(raised.value)


@pytest.fixture
def no_default_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config_module, "DEFAULT_CONFIG_PATH", str(tmp_path / "absent.yaml"))


def test_missing_default_file_gives_the_defaults(no_default_file) -> None:
    config = load_config(None, {})
    assert config == OperatorConfig()
    assert config.clusterwide
    assert config.operator.health_port == 8080
    assert config.operator.metrics_port == 8081
    assert config.operator.liveness_endpoint == "http://0.0.0.0:8080/healthz"
    assert config.serving.http_port == 8000
    assert config.prometheus.url == "http://prometheus-operated.monitoring:9090"
    assert config.accelerator_classes["cpu"].is_cpu


def test_gpu_class_defaults_to_nvidia_resource() -> None:
    config = OperatorConfig.model_validate({"acceleratorClasses": {"a100": {"memoryGiB": 80}}})
    assert config.accelerator_classes["a100"].resource_name == "nvidia.com/gpu"
    assert not config.accelerator_classes["a100"].is_cpu


def test_reads_every_key_of_the_mounted_file(tmp_path) -> None:
    config = load_config(write(tmp_path, GPU_CONFIG), {})
    assert config.watch_namespaces == ["ml", "ml-staging"]
    assert not config.clusterwide
    l4 = config.accelerator_classes["nvidia-l4"]
    assert (l4.resource_name, l4.memory_gib) == ("nvidia.com/gpu", 24)
    assert l4.node_selector == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert l4.tolerations[0].operator == "Exists" and l4.tolerations[0].effect == "NoSchedule"
    assert config.prometheus.url == "http://prom.monitoring:9090"  # trailing slash dropped
    assert config.prometheus.timeout_seconds == 2.5
    assert config.images.workers.reference == "example.com/workers:1"
    assert config.images.workers_cpu.reference == f"ghcr.io/drover-dev/drover-workers:{VERSION}-cpu"
    assert config.serving.route_prefix == "/llm"
    assert config.operator.liveness_endpoint == "http://0.0.0.0:9080/healthz"
    assert config.operator.peering_name == "ml-ops"
    assert config.reconcile.dependency_retry_seconds == 5
    assert config.reconcile.progress_poll_seconds == 10


def test_config_path_comes_from_drover_config(tmp_path) -> None:
    path = write(tmp_path, {"prometheus": {"url": "http://elsewhere:9090"}})
    assert load_config(None, {"DROVER_CONFIG": path}).prometheus.url == "http://elsewhere:9090"


def test_environment_overrides_the_file(tmp_path) -> None:
    environ = {
        "DROVER_PROMETHEUS_URL": "https://prom.example.com",
        "DROVER_NAMESPACES": "team-a, team-b",
        "DROVER_HEALTH_PORT": "7000",
        "DROVER_METRICS_PORT": "7001",
        "DROVER_IMAGE_WORKERS": "example.com/w:2",
        "DROVER_IMAGE_WORKERS_CPU": f"example.com:5000/w@sha256:{'0' * 64}",
        "DROVER_IMAGE_PULL_POLICY": "Always",
        "DROVER_PEERING_PRIORITY": "42",
        "DROVER_AUTOSCALE_INTERVAL_SECONDS": "3",
    }
    config = load_config(write(tmp_path, GPU_CONFIG), environ)
    assert config.prometheus.url == "https://prom.example.com"
    assert config.prometheus.timeout_seconds == 2.5  # untouched keys keep the file's value
    assert config.watch_namespaces == ["team-a", "team-b"]
    assert (config.operator.health_port, config.operator.metrics_port) == (7000, 7001)
    assert config.images.workers.reference == "example.com/w:2"
    assert config.images.workers_cpu.repository == "example.com:5000/w"
    assert config.images.workers_cpu.reference == f"example.com:5000/w@sha256:{'0' * 64}"
    assert config.images.pull_policy == "Always"
    assert config.operator.peering_priority == 42
    assert config.reconcile.autoscale_interval_seconds == 3


@pytest.mark.parametrize("value", ["", "*"])
def test_drover_namespaces_empty_or_star_means_every_namespace(tmp_path, value) -> None:
    config = load_config(write(tmp_path, GPU_CONFIG), {"DROVER_NAMESPACES": value})
    assert config.clusterwide and config.watch_namespaces == []


def test_empty_file_gives_the_defaults(tmp_path) -> None:
    assert load_config(write(tmp_path, ""), {}) == OperatorConfig()


def test_explicitly_named_missing_file_is_an_error(tmp_path) -> None:
    message = error_of(None, {"DROVER_CONFIG": str(tmp_path / "nope.yaml")})
    assert "nope.yaml does not exist" in message and "DROVER_CONFIG" in message


def test_invalid_yaml_names_the_line(tmp_path) -> None:
    message = error_of(write(tmp_path, "prometheus:\n  url: [unclosed\n"), {})
    assert "not valid YAML at line" in message


def test_a_list_instead_of_a_mapping_is_refused(tmp_path) -> None:
    message = error_of(write(tmp_path, "- a\n- b\n"), {})
    assert "must be a YAML mapping" in message and "found a list" in message


@pytest.mark.parametrize(
    ("data", "key", "hint"),
    [
        ({"prometheus": {"url": "prometheus:9090"}}, "prometheus.url", "http(s) URL"),
        ({"prometheus": {"adress": "x"}}, "prometheus.adress", "not a known key"),
        ({"operator": {"healthPort": 0}}, "operator.healthPort", "greater than or equal to 1"),
        ({"operator": {"metricsPort": "http"}}, "operator.metricsPort", "valid integer"),
        (
            {"acceleratorClasses": {"l4": {"resourceName": "gpu"}}},
            "acceleratorClasses.l4.resourceName",
            "nvidia.com/gpu",
        ),
        (
            {"acceleratorClasses": {"l4": {"resourceName": 7}}},
            "acceleratorClasses.l4.resourceName",
            "valid string",
        ),
        (
            {"acceleratorClasses": {"l4": {"tolerations": [{"operator": "Is"}]}}},
            "acceleratorClasses.l4.tolerations.0.operator",
            "'Exists' or 'Equal'",
        ),
        ({"acceleratorClasses": {"L4": {}}}, "acceleratorClasses", "DNS label"),
        ({"watchNamespaces": ["Team_A"]}, "watchNamespaces", "not a namespace name"),
        ({"serving": {"routePrefix": "llm"}}, "serving.routePrefix", 'start with "/"'),
        ({"reconcile": {"progressPollSeconds": 0}}, "reconcile.progressPollSeconds", "greater"),
        # A poll slower than KubeRay's cluster TTL (60 s) would miss job results.
        ({"reconcile": {"progressPollSeconds": 60}}, "reconcile.progressPollSeconds", "30"),
        ({"images": {"pullPolicy": "Sometimes"}}, "images.pullPolicy", "IfNotPresent"),
        ({"images": {"workers": "Example.com/W:1"}}, "images.workers.repository", "pattern"),
        ({"images": {"workers": {"repository": "x"}}}, "images.workers", "a tag or a digest"),
        (
            {"images": {"workersCpu": {"repository": "x", "digest": "sha256:12"}}},
            "images.workersCpu.digest",
            "pattern",
        ),
        (
            {"acceleratorClasses": {"l4": {"memory": "lots"}}},
            "acceleratorClasses.l4.memory",
            "pattern",
        ),
        (
            {"acceleratorClasses": {"l4": {"cpu": "2 cores"}}},
            "acceleratorClasses.l4.cpu",
            "pattern",
        ),
        (
            {"acceleratorClasses": {"mi300": {"image": {"repository": "r/rocm"}}}},
            "acceleratorClasses.mi300.image",
            "r/rocm:",
        ),
    ],
)
def test_bad_file_values_name_the_key_and_the_fix(tmp_path, data, key, hint) -> None:
    path = write(tmp_path, data)
    message = error_of(path, {})
    assert f"{key}:" in message
    assert hint in message
    assert f"fix it in {path}" in message
    assert "pydantic" not in message and "Traceback" not in message


def test_bad_environment_value_names_the_variable(tmp_path) -> None:
    message = error_of(write(tmp_path, {}), {"DROVER_METRICS_PORT": "nine"})
    assert "operator.metricsPort:" in message
    assert "environment variable DROVER_METRICS_PORT" in message


def test_every_problem_is_listed_at_once(tmp_path) -> None:
    data = {"prometheus": {"url": "x"}, "serving": {"httpPort": 0}}
    message = error_of(write(tmp_path, data), {})
    assert "prometheus.url:" in message and "serving.httpPort:" in message


def test_config_module_imports_neither_kopf_nor_kubernetes() -> None:
    code = (
        "import sys, drover.config, drover.config_loader; "
        "bad = [m for m in ('kopf', 'kubernetes', 'aiohttp') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_each_class_runs_its_image_else_the_gpu_or_the_cpu_build() -> None:
    config = OperatorConfig.model_validate(
        {
            "images": {"workers": "r.example/w:1", "workersCpu": "r.example/w:1-cpu"},
            "acceleratorClasses": {
                "l4": {"resourceName": "nvidia.com/gpu"},
                "mi300": {"resourceName": "amd.com/gpu", "image": "r.example/w-rocm:1"},
                "cpu": {"resourceName": ""},
            },
        }
    )
    images, classes = config.images, config.accelerator_classes
    assert images.for_class(classes["l4"]) == "r.example/w:1"
    assert images.for_class(classes["mi300"]) == "r.example/w-rocm:1"
    assert images.for_class(classes["cpu"]) == "r.example/w:1-cpu"
    assert images.for_class(None) == "r.example/w:1-cpu"  # fetch and index jobs


def test_a_class_sizes_its_worker_pods() -> None:
    from drover.api.common import AcceleratorRequest
    from drover.builders.placement import resolve_placement

    classes = OperatorConfig.model_validate(
        {"acceleratorClasses": {"l4": {"cpu": "7500m", "memory": "48Gi"}, "cpu": {}}}
    ).accelerator_classes
    request = AcceleratorRequest.model_validate({"class": "l4", "count": 1})
    placement = resolve_placement(request, classes, field="spec.accelerator")
    assert (placement.cpu, placement.memory, placement.cpus) == ("7500m", "48Gi", 7.5)
    cpu = resolve_placement(AcceleratorRequest.model_validate({"class": "cpu"}), classes, field="x")
    assert (cpu.cpu, cpu.memory) == ("2", "8Gi")
