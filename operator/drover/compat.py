"""The versions of KubeRay and Ray that Drover is built and tested against: the one place.

The tests validate every RayJob and RayService against KubeRay's CRDs of this version
(`../shared/vendor-schemas/kuberay-v<KUBERAY_VERSION>/`), the local executor copies this
version's controller behaviour (each copy cites the function), `constraints.txt` pins this Ray,
and the workers images are built on it (images/workers/Dockerfile).
`tests/unit/test_version_pins.py` fails when one of them drifts.
"""

from __future__ import annotations

KUBERAY_VERSION = "1.7.0"
RAY_VERSION = "2.60.0"
KUBERAY_SCHEMAS_DIR = f"kuberay-v{KUBERAY_VERSION}"
