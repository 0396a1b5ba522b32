"""Local stack, Ray executor: KubeRay v1.7.0's checks of RayJob and RayService names (pure).

Copied from `ray-operator/controllers/ray/utils/validation.go` (`ValidateRayJobMetadata`,
`ValidateRayServiceMetadata`) with apimachinery's `IsDNS1035Label`; the error texts are KubeRay's,
so a status written here reads as KubeRay's would.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# utils/constant.go: MaxRayClusterNameLength (53) - 6, for RayJobs and RayServices alike.
MAX_RAYJOB_NAME_LENGTH = 47
MAX_RAYSERVICE_NAME_LENGTH = 47

# k8s.io/apimachinery/pkg/util/validation: dns1035LabelFmt, dns1035LabelErrMsg, RegexError with
# the examples "my-name" and "abc-123". Longer than 63 is unreachable: KubeRay's 47 comes first.
_DNS1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
DNS1035_ERROR = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)


def _dns1035_errors(name: str) -> list[str]:
    errors = []
    if len(name) > 63:
        errors.append("must be no more than 63 characters")
    if _DNS1035.fullmatch(name) is None:
        errors.append(DNS1035_ERROR)
    return errors


def _go_list(errors: list[str]) -> str:
    return "[" + " ".join(errors) + "]"  # Go's %v of a []string


def validate_rayjob_metadata(metadata: Mapping[str, Any]) -> str | None:
    """`ValidateRayJobMetadata`'s error text, or None when KubeRay accepts the name."""
    name = str(metadata.get("name") or "")
    if len(name) > MAX_RAYJOB_NAME_LENGTH:
        return (
            "The RayJob metadata is invalid: RayJob name should be no more than "
            f"{MAX_RAYJOB_NAME_LENGTH} characters"
        )
    errors = _dns1035_errors(name)
    if errors:
        return (
            "The RayJob metadata is invalid: RayJob name should be a valid DNS1035 label: "
            + _go_list(errors)
        )
    return None


def validate_rayservice_metadata(metadata: Mapping[str, Any]) -> str | None:
    """`ValidateRayServiceMetadata`'s error text (name rules), or None when KubeRay accepts it."""
    name = str(metadata.get("name") or "")
    if len(name) > MAX_RAYSERVICE_NAME_LENGTH:
        return f"RayService name should be no more than {MAX_RAYSERVICE_NAME_LENGTH} characters"
    errors = _dns1035_errors(name)
    if errors:
        return "RayService name should be a valid DNS1035 label: " + _go_list(errors)
    return None
