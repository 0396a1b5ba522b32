"""The replica router's policy (drover_workers.serve.affinity): which of a version's replicas
answers a request, as tables. Pure: no Ray. The Serve side that calls it is
`replica_router.PrefixAffinityRouter` (Ray Serve's extension point
ray/serve/_private/request_router/request_router.py, `RequestRouter.choose_replicas`), checked on
real Serve in test_scaling.py."""

from __future__ import annotations

import pytest

from drover_workers.serve.affinity import (
    NO_MATCH,
    PREFERRED_BUSY,
    PREFIX_HIT,
    SESSION_HIT,
    PrefixIndex,
    ReplicaLoad,
    RoutingPolicy,
    SessionIndex,
    decide_replica,
    prefix_blocks,
    prompt_text,
)

POLICY = RoutingPolicy(block_chars=4, max_imbalance=2, kv_cache_high=0.9)


def loads(*ongoing: int, kv: tuple[float, ...] = (), waiting: tuple[int, ...] = ()) -> list:
    return [
        ReplicaLoad(
            replica=f"r{i}",
            ongoing=n,
            kv_cache_usage=kv[i] if kv else 0.0,
            waiting=waiting[i] if waiting else 0,
        )
        for i, n in enumerate(ongoing)
    ]


@pytest.mark.parametrize(
    ("ongoing", "kv", "matched", "session", "replica", "outcome"),
    [
        # Nothing cached anywhere: the least loaded, ties to the first in the given order.
        ((1, 0, 0), (), {}, None, "r1", NO_MATCH),
        ((0, 0, 0), (), {}, None, "r0", NO_MATCH),
        # The replica holding the longest prefix wins while within max_imbalance (2).
        ((2, 0, 0), (), {"r0": 5, "r1": 2}, None, "r0", PREFIX_HIT),
        # ... and loses once it is 3 busier than the least loaded: a hot prefix spreads.
        ((3, 0, 1), (), {"r0": 5}, None, "r1", PREFERRED_BUSY),
        # Among replicas holding the same longest prefix, the least loaded.
        ((2, 1, 0), (), {"r0": 5, "r1": 5}, None, "r1", PREFIX_HIT),
        # A saturated KV cache is never preferred while another has room.
        ((0, 0, 0), (0.95, 0.1, 0.2), {"r0": 5}, None, "r1", PREFERRED_BUSY),
        # ... but when every engine is saturated, the prefix still counts.
        ((0, 0, 0), (0.95, 0.92, 0.99), {"r0": 5}, None, "r0", PREFIX_HIT),
        # The session's replica first, even over a longer prefix elsewhere.
        ((1, 0, 0), (), {"r1": 9}, "r0", "r0", SESSION_HIT),
        # A busy session replica gives way to the prefix holder ...
        ((3, 1, 0), (), {"r1": 9}, "r0", "r1", PREFIX_HIT),
        # ... or, with no prefix anywhere, to the least loaded.
        ((3, 1, 0), (), {}, "r0", "r2", PREFERRED_BUSY),
        # A session whose replica is gone is no preference.
        ((0, 1), (), {}, "r7", "r0", NO_MATCH),
    ],
)
def test_decide_replica_prefers_session_then_prefix_within_the_load_bound(
    ongoing: tuple[int, ...],
    kv: tuple[float, ...],
    matched: dict[str, int],
    session: str | None,
    replica: str,
    outcome: str,
) -> None:
    choice = decide_replica(loads(*ongoing, kv=kv), matched, session_replica=session, policy=POLICY)
    assert (choice.replica, choice.outcome) == (replica, outcome), choice.reason


def test_least_loaded_breaks_equal_requests_by_engine_waiting_then_kv_cache() -> None:
    tied = loads(1, 1, 1, kv=(0.5, 0.2, 0.2), waiting=(0, 2, 0))
    assert decide_replica(tied, {}, policy=POLICY).replica == "r2"


def test_a_short_common_prefix_is_no_preference() -> None:
    policy = RoutingPolicy(block_chars=4, min_match_blocks=3)
    choice = decide_replica(loads(1, 0), {"r0": 2}, policy=policy)
    assert (choice.replica, choice.outcome) == ("r1", NO_MATCH)


def test_a_reason_names_the_busy_preferred_replica_and_its_load() -> None:
    choice = decide_replica(loads(5, 0), {"r0": 3}, policy=POLICY)
    assert choice.preferred == "r0"
    assert "r0 is busy (5 in flight" in choice.reason


def test_no_candidate_is_an_error_not_a_guess() -> None:
    with pytest.raises(ValueError, match="at least one candidate"):
        decide_replica([], {}, policy=POLICY)


def test_prefix_blocks_are_chained_so_equal_hashes_mean_equal_prefixes() -> None:
    a = prefix_blocks("abcdefghij", 4)
    b = prefix_blocks("abcdefgXij", 4)
    c = prefix_blocks("abcdWXYZ", 4)
    assert len(a) == 2  # only whole blocks
    assert a[0] == b[0] and a[1] != b[1]
    # The same second block after a different first block is a different hash.
    assert prefix_blocks("zzzzefgh", 4)[1] != a[1]
    assert c[0] == a[0] and c[1] != a[1]
    # A LoRA adapter's blocks never match its base's.
    assert prefix_blocks("abcdefgh", 4, salt="/adapters/x")[0] != a[0]


@pytest.mark.parametrize(
    ("request_body", "text"),
    [
        ({"prompt": "Hello"}, "Hello"),
        (
            {"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]},
            "<|system|>S\n<|user|>U\n",
        ),
        ({"messages": []}, ""),
        ({"input": ["embed me"]}, ""),
    ],
)
def test_prompt_text_keeps_roles_and_order(request_body: dict, text: str) -> None:
    assert prompt_text(request_body) == text


def test_a_later_turn_of_a_chat_extends_the_earlier_turns_prefix() -> None:
    turn1 = [
        {"role": "system", "content": "You are terse. " * 4},
        {"role": "user", "content": "Hi"},
    ]
    turn2 = [*turn1, {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "?"}]
    one = prefix_blocks(prompt_text({"messages": turn1}), 8)
    two = prefix_blocks(prompt_text({"messages": turn2}), 8)
    assert two[: len(one)] == one


def test_prefix_index_matches_leading_blocks_and_forgets_the_least_recent() -> None:
    index = PrefixIndex(max_blocks=3)
    index.record("r0", [b"a", b"b"])
    index.record("r1", [b"a"])
    assert index.matched([b"a", b"b", b"c"], ["r0", "r1", "r2"]) == {"r0": 2, "r1": 1, "r2": 0}
    index.record("r0", [b"x", b"y"])  # r0 holds 3 at most: "a" goes first
    assert index.matched([b"a", b"b"], ["r0"]) == {"r0": 0}
    assert index.size("r0") == 3
    index.forget({"r1"})
    assert index.size("r0") == 0 and index.size("r1") == 1


def test_session_index_keeps_the_last_replica_and_ignores_no_session() -> None:
    sessions = SessionIndex(max_sessions=2)
    sessions.record("a", "r0")
    sessions.record("a", "r1")
    sessions.record("", "r2")
    sessions.record("b", "r0")
    sessions.record("c", "r0")  # "a" was least recently used: forgotten
    assert (sessions.get("a"), sessions.get("b"), sessions.get("")) == (None, "r0", None)


def test_policy_reads_camel_and_snake_case_kwargs_and_ignores_labels() -> None:
    policy = RoutingPolicy.from_kwargs(
        {"blockChars": 64, "max_imbalance": 8, "service": "bot", "version": "v1"}
    )
    assert (policy.block_chars, policy.max_imbalance) == (64, 8)
