"""Builders layer: the names of the RayJobs and RayServices Drover creates, within KubeRay's rules.

KubeRay refuses a RayJob or RayService whose name is longer than 47 characters or is not a
DNS-1035 label (`utils/validation.go`: `ValidateRayJobMetadata`, `ValidateRayServiceMetadata`),
while a Drover resource's name is a DNS-1123 subdomain (dots, a leading digit) of up to 63
characters (`api.common.NAME_RULE`; Kubernetes itself allows 253, which works here too).
`kuberay_name` keeps a name that already fits and otherwise derives one that does, ending in a
hash of the whole name, so distinct resources keep distinct children.
"""

from __future__ import annotations

import hashlib
import re

# utils/constant.go: MaxRayJobNameLength = MaxRayServiceNameLength = MaxRayClusterNameLength - 6
# (47): KubeRay appends 6 characters to make the RayCluster name, which must leave room for
# "-serve-svc" within a 63-character Service name.
KUBERAY_NAME_MAX = 47
DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")  # apimachinery's dns1035LabelFmt
HASH_CHARS = 8
LETTER_PREFIX = "d-"  # for a name that starts with a digit: DNS-1035 wants a letter first


def is_dns1035_label(name: str) -> bool:
    return len(name) <= 63 and DNS1035_LABEL.fullmatch(name) is not None


def _label_chars(text: str) -> str:
    return re.sub(r"[^a-z0-9-]", "-", text.lower())


def kuberay_name(base: str, *suffix: str) -> str:
    """`<base>-<suffix...>` if KubeRay accepts it as is; else a derived name that it accepts.

    `base` is the Drover resource's name; `suffix` are short parts that say what the child is
    (`fetch`, a source key). A derived name keeps as much of `base` as fits (dots become dashes,
    a leading digit gets a letter before it), then a hash of the full name, then the suffix.
    """
    plain = "-".join((base, *suffix))
    if len(plain) <= KUBERAY_NAME_MAX and is_dns1035_label(plain):
        return plain
    digest = hashlib.sha256(plain.encode()).hexdigest()[:HASH_CHARS]
    tail = "-".join((digest, *(_label_chars(part).strip("-") for part in suffix if part)))
    head = _label_chars(base).strip("-")
    if not head[:1].isalpha():
        head = LETTER_PREFIX + head
    room = KUBERAY_NAME_MAX - len(tail) - 1
    if room < len(LETTER_PREFIX):
        raise ValueError(f"suffix {'-'.join(suffix)!r} leaves no room for a name")
    return f"{head[:room].rstrip('-')}-{tail}"
