"""ZkStore's pure parts: key escaping (one znode name per key) and transaction planning
and chunking (under ZooKeeper's 1 MB request limit, in order, last write wins)."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from marathon.store_zk import (
    CHUNK_BYTES,
    MAX_DOC_BYTES,
    Op,
    StoreError,
    chunk,
    escape,
    plan_ops,
    unescape,
)

# characters ZooKeeper refuses in a znode name (besides '/'): controls, surrogates, specials
BAD = {chr(c) for c in [*range(0x00, 0x20), *range(0x7F, 0xA0)]}


def _valid_znode_name(name: str) -> bool:
    return (name not in ("", ".", "..") and "/" not in name
            and not any(ch in BAD or 0xD800 <= ord(ch) <= 0xF8FF or ord(ch) >= 0xFFF0
                        for ch in name))


@pytest.mark.parametrize("key,name", [
    ("/prod/web", "%2Fprod%2Fweb"),
    ("/web@2026-11-26T19:40:35.155Z", "%2Fweb%402026-11-26T19%3A40%3A35.155Z"),
    ("web.instance-1._app.1", "web.instance-1._app.1"),
    ("", "%"), (".", "%2E"), ("..", "%2E%2E"), ("%", "%25"), ("%2F", "%252F"),
])
def test_escape_examples(key, name):
    assert escape(key) == name
    assert unescape(name) == key


@given(st.text(max_size=60))
def test_escape_round_trips_to_a_valid_znode_name(key):
    name = escape(key)
    assert _valid_znode_name(name)
    assert name.isascii()
    assert unescape(name) == key


@given(st.lists(st.text(max_size=12), max_size=20, unique=True))
def test_escape_is_injective(keys):
    assert len({escape(k) for k in keys}) == len(keys)


def test_plan_turns_last_writes_into_creates_sets_and_deletes():
    pending = {("app", "/a"): b"1", ("app", "/b"): None, ("app", "/c"): b"3",
               ("task", "t1"): None}
    existing = {"app": {"%2Fc", "%2Fb"}, "task": set()}
    ops = plan_ops("/m/state", pending, existing)
    assert ops == [Op("create", "/m/state/app/%2Fa", b"1"),
                   Op("delete", "/m/state/app/%2Fb"),
                   Op("set", "/m/state/app/%2Fc", b"3")]  # deleting a missing t1: no op


def _ops(sizes: list[int]) -> list[Op]:
    return [Op("create", f"/s/k/{i}", b"x" * n) for i, n in enumerate(sizes)]


def test_chunking_keeps_order_and_stays_under_the_limit():
    ops = _ops([200_000] * 7 + [10] * 5)
    chunks = chunk(ops, CHUNK_BYTES)
    assert [op for c in chunks for op in c] == ops
    assert len(chunks) == 4  # 200k docs two by two under 512 KiB; the small ones join the last
    assert all(sum(op.size for op in c) <= CHUNK_BYTES for c in chunks)


def test_one_big_document_goes_alone_and_a_too_big_one_is_refused():
    ops = _ops([10, CHUNK_BYTES + 1, 10])
    assert [len(c) for c in chunk(ops)] == [1, 1, 1]
    with pytest.raises(StoreError, match="too large"):
        chunk(_ops([MAX_DOC_BYTES + 1]))


@given(st.lists(st.integers(0, 200_000), max_size=40), st.integers(1_000, 600_000))
def test_chunking_property(sizes, limit):
    ops = _ops(sizes)
    chunks = chunk(ops, limit)
    assert [op for c in chunks for op in c] == ops
    assert all(c for c in chunks)
    for c in chunks:
        assert len(c) == 1 or sum(op.size for op in c) <= limit
    for a, b in zip(chunks, chunks[1:], strict=False):  # greedy: the next op did not fit
        assert sum(op.size for op in a) + b[0].size > limit
