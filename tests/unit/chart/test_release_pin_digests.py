"""images/pin_digests.py, the release step that pins image digests in the chart: run on a copy of
the chart, then the copy rendered through Helm's Go SDK as a release would install it."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml
from chart_support import CHART_DIR, NAMESPACE, RELEASE, ROOT, by_kind, one

SCRIPT = ROOT / "images" / "pin_digests.py"
OPERATOR = "sha256:" + "0a" * 32
WORKERS = "sha256:" + "1b" * 32
WORKERS_CPU = "sha256:" + "2c" * 32
DIGESTS = ["--operator", OPERATOR, "--workers", WORKERS, "--workers-cpu", WORKERS_CPU]


def _load_script() -> Any:
    spec = importlib.util.spec_from_file_location("pin_digests", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pin_digests = _load_script()


@pytest.fixture
def chart_copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(CHART_DIR, tmp_path / "drover"))


def run_pin(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def render_copy(chart_dir: Path) -> list[dict[str, Any]]:
    with helm.Chart.load(chart_dir) as loaded:
        rendered = loaded.render({}, name=RELEASE, namespace=NAMESPACE)
    return [
        doc
        for path, text in sorted(rendered.items())
        if not path.endswith("NOTES.txt")
        for doc in yaml.safe_load_all(text)
        if doc
    ]


def operator_config(docs: list[dict[str, Any]]) -> dict[str, Any]:
    configs = [d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-config")]
    assert len(configs) == 1
    config: dict[str, Any] = yaml.safe_load(configs[0]["data"]["config.yaml"])
    return config


def test_pinned_chart_runs_the_operator_by_digest_and_configures_the_workers_digests(
    chart_copy: Path,
) -> None:
    values = chart_copy / "values.yaml"
    result = run_pin("--values", values, *DIGESTS, "--version", "1.2.3")
    assert result.returncode == 0, result.stderr

    docs = render_copy(chart_copy)
    repository = yaml.safe_load(values.read_text())["image"]["repository"]
    container = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"{repository}@{OPERATOR}"
    images = operator_config(docs)["images"]
    assert images["workers"]["digest"] == WORKERS
    assert images["workersCpu"]["digest"] == WORKERS_CPU
    labels = one(docs, "Deployment")["metadata"]["labels"]
    assert labels["helm.sh/chart"] == "drover-1.2.3"
    assert labels["app.kubernetes.io/version"] == "1.2.3"


def test_pinned_chart_lints_and_packages_as_the_file_the_workflow_pushes(
    chart_copy: Path, tmp_path: Path
) -> None:
    result = run_pin("--values", chart_copy / "values.yaml", *DIGESTS, "--version", "1.2.3")
    assert result.returncode == 0, result.stderr

    assert helm.lint(chart_copy)["errors"] == []
    archive = Path(helm.package(chart_copy, destination=tmp_path / "dist"))
    # .github/workflows/release.yml pushes dist/drover-$VERSION.tgz.
    assert archive.name == "drover-1.2.3.tgz"


def test_registry_option_points_all_three_repositories_at_the_release_registry(
    chart_copy: Path,
) -> None:
    result = run_pin("--values", chart_copy / "values.yaml", *DIGESTS, "--registry", "ghcr.io/acme")
    assert result.returncode == 0, result.stderr

    docs = render_copy(chart_copy)
    container = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"ghcr.io/acme/drover-operator@{OPERATOR}"
    images = operator_config(docs)["images"]
    assert images["workers"]["repository"] == "ghcr.io/acme/drover-workers"
    assert images["workersCpu"]["repository"] == "ghcr.io/acme/drover-workers"


def test_pinning_changes_only_the_digest_lines_and_keeps_every_comment(chart_copy: Path) -> None:
    values = chart_copy / "values.yaml"
    before = values.read_text().splitlines()
    assert run_pin("--values", values, *DIGESTS).returncode == 0
    after = values.read_text().splitlines()

    assert len(after) == len(before)
    changed = [(old, new) for old, new in zip(before, after, strict=True) if old != new]
    assert [new.strip() for _, new in changed] == [
        f'digest: "{OPERATOR}"',
        f'digest: "{WORKERS}"',
        f'digest: "{WORKERS_CPU}"',
    ]
    assert all(old.strip() == 'digest: ""' for old, _ in changed)


def test_chart_version_and_app_version_follow_the_release_and_keep_their_quoting(
    chart_copy: Path,
) -> None:
    chart = chart_copy / "Chart.yaml"
    result = run_pin("--values", chart_copy / "values.yaml", *DIGESTS, "--version", "2.0.0-rc.1")
    assert result.returncode == 0, result.stderr

    text = chart.read_text()
    assert "\nversion: 2.0.0-rc.1\n" in text
    assert '\nappVersion: "2.0.0-rc.1"\n' in text
    assert "description: >-" in text


@pytest.mark.parametrize(
    ("flag", "bad"),
    [
        ("--operator", "sha256:abc"),
        ("--workers", "sha256:" + "A" * 64),
        ("--workers-cpu", "md5:" + "0" * 64),
        ("--operator", OPERATOR + "\n"),
    ],
)
def test_malformed_digest_exits_2_with_a_message_and_writes_nothing(
    chart_copy: Path, flag: str, bad: str
) -> None:
    values = chart_copy / "values.yaml"
    before = values.read_text()
    args = dict(zip(DIGESTS[::2], DIGESTS[1::2], strict=True)) | {flag: bad}

    result = run_pin("--values", values, *[part for item in args.items() for part in item])

    assert result.returncode == 2
    assert f"argument {flag}: {bad!r} is not a digest" in result.stderr
    assert "sha256:<64 lowercase hex digits>" in result.stderr
    assert "Traceback" not in result.stderr
    assert values.read_text() == before


def test_version_with_a_leading_v_is_rejected(chart_copy: Path) -> None:
    result = run_pin("--values", chart_copy / "values.yaml", *DIGESTS, "--version", "v1.2.3")

    assert result.returncode == 2
    assert "no 'v'" in result.stderr
    assert "Traceback" not in result.stderr


def test_values_without_an_image_key_fail_naming_the_key_and_write_nothing(
    tmp_path: Path,
) -> None:
    values = tmp_path / "values.yaml"
    text = 'image:\n  digest: ""\nconfig:\n  images:\n    workers:\n      digest: ""\n'
    values.write_text(text)

    result = run_pin("--values", values, *DIGESTS)

    assert result.returncode == 1
    assert "config.images.workersCpu.digest: expected the key once, found it 0 times" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr
    assert values.read_text() == text


def test_set_scalar_finds_the_key_by_its_parents_and_keeps_quoting_and_comment() -> None:
    text = (
        "config:\n"
        "  images:\n"
        "    workers:\n"
        "      digest: ''   # wins over the tag\n"
        "image:\n"
        "  # -- the operator's digest\n"
        "  digest: ''   # wins over the tag\n"
        "  tag: x\n"
    )

    result = pin_digests.set_scalar(text, ("image", "digest"), OPERATOR)

    assert result.splitlines()[6] == f"  digest: '{OPERATOR}'   # wins over the tag"
    assert (
        result.splitlines()[:6] + result.splitlines()[7:]
        == text.splitlines()[:6] + (text.splitlines()[7:])
    )


def test_edit_refuses_a_key_that_holds_a_mapping() -> None:
    with pytest.raises(pin_digests.PinError, match="expected a scalar"):
        pin_digests.edit(
            "image:\n  digest:\n    nested: 1\n", {("image", "digest"): OPERATOR}, source="v"
        )
