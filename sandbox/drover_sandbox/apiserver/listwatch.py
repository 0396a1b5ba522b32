"""Local control plane, read verbs: list (selectors, limit/continue, Table) and watch (resume,
bookmarks, timeoutSeconds, 410 Gone), per namespace or cluster-wide.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import json
import time
from typing import Any

from aiohttp import web

from .crud import Req, Result, as_version, now_rfc3339
from .errors import ApiError, bad_request, gone
from .faults import Faults
from .selectors import build_matcher, field_selector_keys
from .store import Store
from .watch import TooOld

WATCH_CONTENT_TYPE = "application/json"


def matcher_for(req: Req) -> Any:
    fields = req.query.get("fieldSelector")
    allowed = {"metadata.name", "metadata.namespace", *req.res.selectable_fields}
    for key in field_selector_keys(fields):
        if key not in allowed:
            # as kube-apiserver: only indexed fields may be selected on
            raise bad_request(f"field label not supported: {key}")
    try:
        return build_matcher(req.query.get("labelSelector"), fields)
    except ValueError as exc:
        raise bad_request(str(exc)) from None


def wants_table(accept: str) -> bool:
    return "as=Table" in accept


def _encode_continue(rv: int, ns: str, name: str) -> str:
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": [ns, name]})
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_continue(token: str) -> tuple[str, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        ns, name = data["start"]
        return str(ns), str(name)
    except (ValueError, KeyError, TypeError):
        raise bad_request(f"continue key is not valid: {token}") from None


def list_objects(store: Store, req: Req) -> Result:
    res = req.res
    namespace = req.namespace if res.namespaced and req.namespace else None
    match = matcher_for(req)
    bucket = store.objects.get(res.storage_key, {})
    keys = store.sorted_keys(res.storage_key)
    lo, hi = 0, len(keys)
    if namespace is not None:  # keys sort by (namespace, name): one namespace is one slice
        lo, hi = (
            bisect.bisect_left(keys, (namespace, "")),
            bisect.bisect_left(keys, (namespace + "\0", "")),
        )
    token = req.query.get("continue")
    if token:
        lo = max(lo, bisect.bisect_right(keys, _decode_continue(token)))
    try:
        limit = int(req.query.get("limit") or 0)
    except ValueError:
        raise bad_request(f"invalid limit: {req.query.get('limit')}") from None
    selective = bool(req.query.get("labelSelector") or req.query.get("fieldSelector"))
    items: list[dict[str, Any]] = []
    meta: dict[str, Any] = {"resourceVersion": str(store.rv)}
    for i in range(lo, hi):
        obj = bucket[keys[i]]
        if not match(obj):
            continue
        if limit and len(items) == limit:
            meta["continue"] = _next_token(store, items)
            if not selective:  # as kube-apiserver: only known without selectors
                meta["remainingItemCount"] = hi - i
            break
        items.append(as_version(obj, res))
    if wants_table(req.accept):
        return Result(200, table_of(req, items, meta))
    return Result(
        200,
        {
            "kind": f"{res.kind}List",
            "apiVersion": res.group_version,
            "metadata": meta,
            "items": items,
        },
    )


def table_of(req: Req, objs: list[dict[str, Any]], list_meta: dict[str, Any]) -> dict[str, Any]:
    """A meta.k8s.io/v1 Table: a CRD's printer columns, or kube's columns for built-in kinds."""
    from . import tables

    return tables.build_table(
        objs,
        req.res.printer_columns,
        now=now_rfc3339(),
        list_meta=list_meta,
        include_object=req.query.get("includeObject", "Metadata"),
        kind=None if req.res.crd_name else req.res.kind,
    )


def _next_token(store: Store, items: list[dict[str, Any]]) -> str:
    last = items[-1]["metadata"]
    return _encode_continue(store.rv, last.get("namespace", ""), last["name"])


def _event_line(kind: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"type": kind, "object": obj}, separators=(",", ":")).encode() + b"\n"


class _Encoder:
    """Watch events as objects, or as one-row Tables when kubectl asked for tables (the column
    definitions only in the first event, as kube-apiserver sends them)."""

    def __init__(self, req: Req) -> None:
        self.req = req
        self.table = wants_table(req.accept)
        self.first = True

    def line(self, kind: str, obj: dict[str, Any]) -> bytes:
        obj = as_version(obj, self.req.res)
        if self.table:
            rv = obj["metadata"].get("resourceVersion", "")
            obj = table_of(self.req, [obj], {"resourceVersion": rv})
            if not self.first:
                obj["columnDefinitions"] = None
            self.first = False
        return _event_line(kind, obj)


async def watch(
    request: web.Request, store: Store, req: Req, faults: Faults, bookmark_interval: float
) -> web.StreamResponse:
    res = req.res
    namespace = req.namespace if res.namespaced and req.namespace else None
    match = matcher_for(req)
    if req.name:  # watch of a single object: kube turns it into a name field selector
        by_name = match
        match = lambda o: o["metadata"]["name"] == req.name and by_name(o)  # noqa: E731
    rv_text = req.query.get("resourceVersion") or ""
    try:
        rv = int(rv_text) if rv_text else 0
    except ValueError:
        raise bad_request(f"invalid resource version: {rv_text}") from None
    bookmarks = str(req.query.get("allowWatchBookmarks", "")).lower() == "true"
    timeout = req.query.get("timeoutSeconds")
    deadline = time.monotonic() + (float(timeout) if timeout else 1800.0)
    channel = store.hub.channel(res.storage_key)
    initial: list[tuple[str, dict[str, Any]]] = []
    too_old: ApiError | None = None
    if rv == 0:
        initial = [("ADDED", o) for o in store.items(res.storage_key, namespace) if match(o)]
    else:
        try:
            initial = [
                (t, o)
                for (_, t, o) in channel.since(rv)
                if (namespace is None or o["metadata"].get("namespace") == namespace) and match(o)
            ]
        except TooOld as exc:
            too_old = gone(str(exc))
        if too_old is None:
            too_old = faults.pick_rewatch_gone(rv, store.rv, req.user_agent)
    sub = store.hub.subscribe(res.storage_key, namespace)
    response = web.StreamResponse(
        status=200,
        headers={"Content-Type": WATCH_CONTENT_TYPE, "Cache-Control": "no-cache, private"},
    )
    response.enable_chunked_encoding()
    await response.prepare(request)
    sent = 0
    encoder = _Encoder(req)
    cut_after = faults.watch_cut_after
    last_rv = store.rv if rv == 0 else rv
    getter: asyncio.Future[Any] | None = None
    try:
        if too_old is not None:
            await response.write(_event_line("ERROR", too_old.to_status()))
            return response
        for kind, obj in initial:
            await response.write(encoder.line(kind, obj))
            sent += 1
            last_rv = max(last_rv, int(obj["metadata"]["resourceVersion"]))
            if cut_after and sent >= cut_after:
                return response
        if rv == 0 and str(req.query.get("sendInitialEvents", "")).lower() == "true":
            # watch-list: the initial state ends with a bookmark marked initial-events-end
            end = {
                "resourceVersion": str(last_rv),
                "annotations": {"k8s.io/initial-events-end": "true"},
            }
            await response.write(
                _event_line(
                    "BOOKMARK", {"kind": res.kind, "apiVersion": res.group_version, "metadata": end}
                )
            )
        next_bookmark = time.monotonic() + bookmark_interval
        # One get() outlives each wait: cancelling a get() whose item has just arrived (what
        # asyncio.wait_for does on a timeout) leaves that item queued, and a bookmark written then
        # would carry a resourceVersion past it, so the event behind it was skipped as already
        # sent: a watcher lost an event for good (kopf re-watches from the last version it saw).
        while True:
            now = time.monotonic()
            if now >= deadline:
                break
            wait = min(deadline, next_bookmark if bookmarks else deadline) - now
            if getter is None:
                getter = asyncio.ensure_future(sub.queue.get())
            done, _ = await asyncio.wait({getter}, timeout=max(wait, 0.001))
            if not done:
                # Nothing pending for this watcher: every event up to the channel's last one has
                # been sent (or did not match), so a bookmark may name that version.
                if bookmarks and time.monotonic() >= next_bookmark and sub.queue.empty():
                    last_rv = max(last_rv, _channel_rv(channel, last_rv))
                    await response.write(
                        _event_line(
                            "BOOKMARK",
                            {
                                "kind": res.kind,
                                "apiVersion": res.group_version,
                                "metadata": {"resourceVersion": str(last_rv)},
                            },
                        )
                    )
                    next_bookmark = time.monotonic() + bookmark_interval
                continue
            event = getter.result()
            getter = None
            if event is None:
                break
            erv, kind, obj = event
            if erv <= last_rv:
                continue
            last_rv = erv
            if not match(obj):
                continue
            await response.write(encoder.line(kind, obj))
            sent += 1
            if cut_after and sent >= cut_after:
                break
    except ConnectionError:
        pass  # the client went away; nothing to answer
    finally:
        if getter is not None:
            getter.cancel()
        store.hub.unsubscribe(res.storage_key, sub)
    return response


def _channel_rv(channel: Any, default: int) -> int:
    return channel.ring[-1][0] if channel.ring else default
