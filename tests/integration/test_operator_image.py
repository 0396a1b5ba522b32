"""The operator image, built and run for real: `make test-images` (CI runs it after `make test`).

No registry is reachable here, so the base image is made locally: Debian bookworm by
`debootstrap` into a folder, imported with `podman import`. `images/build.sh` (what `make images`
runs) builds images/operator/Dockerfile on it with podman. The image then runs the way the
chart's Deployment runs it (its command, environment, user, read-only root filesystem, dropped
capabilities, the ConfigMap mounted at /etc/drover and an emptyDir at /tmp), against the local
control plane over the host network, and must reconcile examples/foundationmodel.yaml into its
RayJob, on the workers image and pull policy the chart configures.

Facts of these machines the test adapts to (not the product): podman runs containers only with
runc and with `nofile`/`nproc` limits of 1024 (crun refuses the host's hybrid cgroups, and the
default limits are refused: "error setting rlimit type 7"), set in a containers.conf of the
test's own; and outbound HTTPS goes through a proxy whose CA the host trusts, so the local base
image carries the host's CA bundle for pip.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml
from tests.integration.conftest import ROOT, kubectl, wait_for

from drover import __version__
from drover_sandbox.apiserver.launcher import free_port

pytestmark = [pytest.mark.images, pytest.mark.slow]

BASE = "localhost/drover-test-base:bookworm"
REGISTRY = "localhost/drover-test"
OPERATOR = f"{REGISTRY}/drover-operator:{__version__}"
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
"""


@pytest.fixture(scope="module")
def podman_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    for tool in ("podman", "runc", "debootstrap"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed: run `make test-images`, which installs it")
    conf = tmp_path_factory.mktemp("podman") / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    return {**os.environ, "CONTAINERS_CONF": str(conf)}


def podman(env: dict[str, str], *args: str, timeout: float = 600, check: bool = True) -> str:
    proc = subprocess.run(
        ["podman", *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def container_logs(env: dict[str, str], name: str) -> str:
    """The container's stdout and stderr (kopf logs to stderr), the last 6,000 characters."""
    proc = subprocess.run(
        ["podman", "logs", name], env=env, capture_output=True, text=True, timeout=60
    )
    return (proc.stdout + proc.stderr)[-6000:]


@pytest.fixture(scope="module")
def base_image(podman_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> str:
    """Debian bookworm with python3 and venv, from debootstrap (made once per machine)."""
    exists = subprocess.run(["podman", "image", "exists", BASE], env=podman_env)
    if exists.returncode == 0:
        return BASE
    rootfs = tmp_path_factory.mktemp("base") / "rootfs"
    subprocess.run(
        [
            "debootstrap",
            "--variant=minbase",
            "--include=python3,python3-venv,ca-certificates",
            "bookworm",
            str(rootfs),
            "http://deb.debian.org/debian",
        ],
        check=True,
        capture_output=True,
        timeout=900,
    )
    shutil.copy("/etc/ssl/certs/ca-certificates.crt", rootfs / "etc/ssl/certs/ca-certificates.crt")
    (rootfs / "etc/pip.conf").write_text("[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n")
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    subprocess.run(
        ["podman", "import", "-", BASE],
        stdin=tar.stdout,
        env=podman_env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    assert tar.wait() == 0
    shutil.rmtree(rootfs, ignore_errors=True)
    return BASE


@pytest.fixture(scope="module")
def operator_image(podman_env: dict[str, str], base_image: str) -> str:
    """`make images` for the operator alone, on the local base."""
    env = {
        **podman_env,
        "IMAGES": "operator",
        "REGISTRY": REGISTRY,
        "CONTAINER_TOOL": "podman",
        "OPERATOR_BASE_IMAGE": base_image,
        "IMAGE_BUILD_FLAGS": "--network=host",
    }
    proc = subprocess.run(
        [str(ROOT / "images" / "build.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, f"images/build.sh failed:\n{proc.stdout[-4000:]}\n{proc.stderr}"
    return OPERATOR


def test_the_operator_image_runs_non_root_with_drover_run_and_no_ml_stack(
    podman_env: dict[str, str], operator_image: str
) -> None:
    config = json.loads(podman(podman_env, "image", "inspect", operator_image))[0]["Config"]
    assert config["User"] == "65532:65532"
    assert config["Entrypoint"] == ["drover", "run"]
    probe = (
        "import importlib.util as u, drover; "
        "print(drover.__version__, [m for m in ('torch', 'ray', 'vllm', 'kopf') if u.find_spec(m)])"
    )
    out = podman(
        podman_env, "run", "--rm", "--entrypoint", "python", operator_image, "-c", probe
    ).split(maxsplit=1)
    assert out == [__version__, "['kopf']\n"]


def pod_of(docs: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the operator pod's spec, its ConfigMap) from a chart render."""
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    config_map = next(d for d in docs if d["kind"] == "ConfigMap")
    return deployment["spec"]["template"]["spec"], config_map


def run_args(
    pod: dict[str, Any], config_map: dict[str, Any], files: Path, namespace: str, kubeconfig: Path
) -> list[str]:
    """`podman run` arguments doing what the kubelet does with the chart's operator pod.

    The kubelet hands the container runtime what kuberuntime's security_context.go
    `convertToRuntimeSecurityContext` makes of the securityContext: RunAsUser/RunAsGroup (the
    pod's, where the container sets none: `determineEffectiveSecurityContext`), ReadonlyRootfs,
    dropped capabilities, and NoNewPrivs from allowPrivilegeEscalation: false; those are the
    flags below. A ConfigMap volume is projected read-only with mode 0644 (the API's default
    `defaultMode`, SetDefaults_ConfigMapVolumeSource). One difference, on purpose: an emptyDir
    without `medium: Memory` is a directory on the node's disk, mounted here as a tmpfs, which
    the operator cannot tell apart (it only writes a few files under /tmp).
    """
    container = pod["containers"][0]
    security = container["securityContext"]
    args = ["--network=host", f"--user={pod['securityContext']['runAsUser']}:"
            f"{pod['securityContext']['runAsGroup']}"]  # fmt: skip
    if security.get("readOnlyRootFilesystem"):
        args.append("--read-only")
    if "ALL" in security.get("capabilities", {}).get("drop", []):
        args.append("--cap-drop=ALL")
    if security.get("allowPrivilegeEscalation") is False:
        args.append("--security-opt=no-new-privileges")
    field_values = {"metadata.name": "drover-operator-test", "metadata.namespace": namespace}
    for env in container["env"]:
        value = env.get("value")
        if value is None:
            value = field_values[env["valueFrom"]["fieldRef"]["fieldPath"]]
        args.append(f"--env={env['name']}={value}")
    volumes = {v["name"]: v for v in pod["volumes"]}
    for mount in container["volumeMounts"]:
        volume = volumes[mount["name"]]
        if "emptyDir" in volume:
            args.append(f"--tmpfs={mount['mountPath']}:rw,mode=1777,size=64m")
        else:
            assert volume["configMap"]["name"] == config_map["metadata"]["name"]
            folder = files / mount["name"]
            folder.mkdir(mode=0o755)
            for key, text in config_map["data"].items():
                (folder / key).write_text(text)
                (folder / key).chmod(0o644)
            args.append(f"--volume={folder}:{mount['mountPath']}:ro")
    # Out of a cluster there is no service account token: the kubeconfig of the control plane.
    copied = files / "kubeconfig"
    shutil.copy(kubeconfig, copied)
    copied.chmod(0o644)
    args += [f"--volume={copied}:/var/run/drover/kubeconfig:ro"]
    args += ["--env=KUBECONFIG=/var/run/drover/kubeconfig"]
    args += ["--entrypoint", json.dumps(container["command"])]
    return args


@pytest.fixture
def operator_container(
    podman_env: dict[str, str],
    operator_image: str,
    drover_crds: Path,
    namespace: str,
    tmp_path: Path,
) -> Iterator[tuple[str, dict[str, Any], int]]:
    """The image run as the chart's Deployment defines it, watching `namespace`."""
    health = free_port()
    values = {
        "image": {"repository": REGISTRY + "/drover-operator"},
        "watchNamespaces": [namespace],
        "operator": {"healthPort": health, "metricsPort": free_port()},
        "config": {"prometheus": {"url": f"http://127.0.0.1:{free_port()}"}},
    }
    with helm.Chart.load(ROOT / "charts" / "drover") as chart:
        rendered = chart.render(values, name="drover", namespace="drover-system")
    docs = [d for path, text in rendered.items() if path.endswith(".yaml")
            for d in yaml.safe_load_all(text) if d]  # fmt: skip
    pod, config_map = pod_of(docs)
    assert pod["containers"][0]["image"] == operator_image
    # The peering object the chart creates in each watched namespace.
    peering = next(d for d in docs if d["kind"] == "KopfPeering")
    apply(drover_crds, peering)
    files = tmp_path / "pod"
    files.mkdir()
    name = f"drover-image-test-{uuid.uuid4().hex[:8]}"
    args = run_args(pod, config_map, files, namespace, drover_crds)
    podman(podman_env, "run", "--detach", f"--name={name}", *args, operator_image)
    try:
        yield name, yaml.safe_load(config_map["data"]["config.yaml"]), health
    finally:
        print(container_logs(podman_env, name))
        podman(podman_env, "rm", "--force", "--time=5", name, check=False)


def apply(kubeconfig: Path, doc: dict[str, Any]) -> None:
    env = {**os.environ, "KUBECACHEDIR": str(kubeconfig.parent / "kubecache")}
    subprocess.run(
        ["kubectl", f"--kubeconfig={kubeconfig}", "apply", "-f", "-"],
        input=json.dumps(doc),
        text=True,
        check=True,
        capture_output=True,
        timeout=60,
        env=env,
    )


def test_the_operator_image_reconciles_an_example_into_its_rayjob(
    podman_env: dict[str, str],
    operator_container: tuple[str, dict[str, Any], int],
    drover_crds: Path,
    namespace: str,
) -> None:
    name, config, health = operator_container
    model = yaml.safe_load((ROOT / "examples" / "foundationmodel.yaml").read_text())
    model["metadata"]["namespace"] = namespace
    apply(drover_crds, model)

    def rayjob() -> dict[str, Any] | None:
        out = kubectl(drover_crds, "get", "rayjobs", "-n", namespace, "-o", "json").stdout
        items = json.loads(out)["items"]
        return items[0] if items else None

    try:
        job = wait_for("the operator image to create the RayJob", rayjob, timeout=120)
    except AssertionError:
        print(container_logs(podman_env, name))
        raise
    owner = job["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"]) == ("FoundationModel", model["metadata"]["name"])
    head = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    cpu_image = config["images"]["workersCpu"]
    assert head["image"] == f"{cpu_image['repository']}:{cpu_image['tag']}"
    assert head["image"] == f"ghcr.io/drover-dev/drover-workers:{__version__}-cpu"
    assert head["imagePullPolicy"] == config["images"]["pullPolicy"] == "IfNotPresent"

    def status() -> dict[str, Any] | None:
        out = kubectl(drover_crds, "get", "foundationmodel", model["metadata"]["name"], "-n",
                      namespace, "-o", "json").stdout  # fmt: skip
        return json.loads(out).get("status", {}).get("conditions")

    conditions = wait_for("the FoundationModel's conditions", status, timeout=60)
    assert {c["type"] for c in conditions} >= {"Ready", "CacheReady", "Fetched"}
    with urllib.request.urlopen(f"http://127.0.0.1:{health}/healthz", timeout=10) as resp:
        assert resp.status == 200
