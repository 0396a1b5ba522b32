"""Local control plane, request counts: what kube-apiserver's audit log would show, summed.

Every resource request is counted by verb (kube's audit verbs: get, list, watch, create, update,
patch, delete, deletecollection), resource, subresource, response code and User-Agent;
`GET /_drover/requests` returns the counts, so tests and benchmarks can say how many creates or
writes a client sent.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

Key = tuple[str, str, str, int, str]  # (verb, group/resource, subresource, code, user agent)


def verb_of(method: str, name: str, watching: bool) -> str:
    """The audit verb kube-apiserver logs for this request."""
    if method == "GET":
        return "watch" if watching else ("get" if name else "list")
    if method == "DELETE":
        return "delete" if name else "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, method.lower())


class Audit:
    def __init__(self) -> None:
        self.counts: Counter[Key] = Counter()

    def record(
        self, verb: str, group: str, plural: str, sub: str, code: int, user_agent: str
    ) -> None:
        resource = f"{plural}.{group}" if group else plural
        self.counts[(verb, resource, sub, code, user_agent)] += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "items": [
                {
                    "verb": verb,
                    "resource": resource,
                    "subresource": sub,
                    "code": code,
                    "userAgent": agent,
                    "count": count,
                }
                for (verb, resource, sub, code, agent), count in sorted(self.counts.items())
            ]
        }
