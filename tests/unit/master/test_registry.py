"""Registry operations are pure state changes; SQLite keeps them across restarts."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesos_common.resources import Resources
from mesos_master.registry.base import (
    AdmitAgent,
    MarkGone,
    MarkReachable,
    MarkUnreachable,
    MemoryRegistry,
    RegistryState,
    RemoveAgent,
    UpdateQuota,
    UpdateReservations,
    UpdateWeights,
)
from mesos_master.registry.sqlite import SqliteRegistry
from mesos_master.reservations import NOBODY, Reservations


def test_operations_report_whether_they_mutated() -> None:
    s = RegistryState()
    assert AdmitAgent("a", "h").apply(s)
    assert not AdmitAgent("a", "h2").apply(s)  # id taken: refused
    assert s.admitted == {"a": "h"}
    assert MarkUnreachable("a", 5.0).apply(s)
    assert s.admitted == {} and s.unreachable == {"a": 5.0}
    assert not MarkUnreachable("a", 6.0).apply(s)  # not admitted any more
    assert not AdmitAgent("a", "h").apply(s)  # unreachable ids are not reissued
    assert MarkReachable("a", "h3").apply(s)
    assert s.admitted == {"a": "h3"} and s.unreachable == {}
    assert not MarkReachable("a", "h3").apply(s)
    assert RemoveAgent("a").apply(s)
    assert not RemoveAgent("a").apply(s)
    assert s == RegistryState()


def test_memory_registry_load_is_a_copy() -> None:
    reg = MemoryRegistry()
    reg.apply(AdmitAgent("a", "h"))
    loaded = reg.load()
    loaded.admitted.clear()
    assert reg.load().admitted == {"a": "h"}


def test_sqlite_registry_survives_reopen(tmp_path) -> None:
    path = tmp_path / "registry.sqlite"
    reg = SqliteRegistry(path)
    assert reg.apply(AdmitAgent("a", "h1"))
    assert reg.apply(AdmitAgent("b", "h2"))
    assert reg.apply(MarkUnreachable("b", 12.5))
    assert not reg.apply(AdmitAgent("a", "again"))
    reg.close()
    reopened = SqliteRegistry(path)
    assert reopened.load() == RegistryState({"a": "h1"}, {"b": 12.5})
    assert reopened.apply(MarkReachable("b", "h2b"))
    assert reopened.apply(RemoveAgent("a"))
    reopened.close()
    assert SqliteRegistry(path).load() == RegistryState({"b": "h2b"}, {})


ops = st.one_of(
    st.builds(AdmitAgent, st.sampled_from("abcd"), st.sampled_from(["h1", "h2"])),
    st.builds(MarkUnreachable, st.sampled_from("abcd"), st.floats(0, 100)),
    st.builds(MarkReachable, st.sampled_from("abcd"), st.sampled_from(["h1", "h3"])),
    st.builds(RemoveAgent, st.sampled_from("abcd")),
    st.builds(MarkGone, st.sampled_from("abcd"), st.floats(0, 100)),
    st.builds(UpdateReservations, st.sampled_from("abcd"),
              st.sampled_from(["", "cpus(web):1", "cpus(web):1;mem(ads):64"]).map(
                  Resources.parse).flatmap(lambda r: st.sampled_from(
                      [Reservations.of({NOBODY: r}), Reservations.of({"ops": r}),
                       Reservations.of({"ops": r, "fw": Resources.parse("disk(web):8")})]))),
    st.builds(UpdateWeights, st.lists(st.tuples(st.sampled_from(["r1", "r2"]),
                                                st.sampled_from([0.5, 2.0])),
                                      max_size=2).map(tuple)),
    st.builds(UpdateQuota, st.sampled_from(["r1", "r2"]),
              st.sampled_from([(), (("cpus", 1.0),), (("cpus", 2.0), ("mem", 64.0))])),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(ops, max_size=25))
def test_sqlite_matches_memory(tmp_path_factory: pytest.TempPathFactory, seq: list) -> None:
    path = tmp_path_factory.mktemp("reg") / "r.sqlite"
    mem, sql = MemoryRegistry(), SqliteRegistry(path)
    for op in seq:
        assert mem.apply(op) == sql.apply(op)
        state = mem.load()
        assert not (set(state.admitted) & set(state.unreachable))
        assert not (set(state.admitted) | set(state.unreachable)) & set(state.gone)
        assert set(state.reserved) <= set(state.admitted) | set(state.unreachable)
    sql.close()
    assert SqliteRegistry(path).load() == mem.load()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(ops, max_size=8), max_size=6))
def test_group_commit_equals_one_by_one(tmp_path_factory: pytest.TempPathFactory,
                                        batches: list) -> None:
    path = tmp_path_factory.mktemp("reg") / "r.sqlite"
    mem, sql = MemoryRegistry(), SqliteRegistry(path)
    for batch in batches:
        assert [mem.apply(op) for op in batch] == sql.apply_many(batch)
    sql.close()
    assert SqliteRegistry(path).load() == mem.load()


def test_weights_and_quotas_are_durable_operations(tmp_path) -> None:
    s = RegistryState()
    assert UpdateWeights((("ads", 2.0), ("web", 0.5))).apply(s)
    assert not UpdateWeights((("ads", 2.0),)).apply(s)  # no change
    assert UpdateQuota("ads", (("cpus", 4.0), ("mem", 1024.0))).apply(s)
    assert not UpdateQuota("ads", (("cpus", 4.0), ("mem", 1024.0))).apply(s)
    assert s.weights == {"ads": 2.0, "web": 0.5} and s.quotas == {"ads": {"cpus": 4.0,
                                                                          "mem": 1024.0}}
    path = tmp_path / "r.sqlite"
    reg = SqliteRegistry(path)
    for op in (UpdateWeights((("ads", 2.0),)), UpdateQuota("ads", (("cpus", 4.0),)),
               UpdateQuota("web", (("mem", 64.0),)), UpdateQuota("web", ()),
               AdmitAgent("a", "h")):
        assert reg.apply(op)
    reg.close()
    assert SqliteRegistry(path).load() == RegistryState(
        {"a": "h"}, {}, {"ads": 2.0}, {"ads": {"cpus": 4.0}})


def test_zookeeper_encoding_keeps_gone_agents_and_reservations() -> None:
    from mesos_master.registry.zookeeper import _decode, _encode
    state = RegistryState({"a": "h"}, {"b": 1.5}, {"web": 2.0}, {"web": {"cpus": 1.0}},
                          gone={"c": 3.0}, reserved={"a": Reservations.of({
                              NOBODY: Resources.parse("cpus(web):1"),
                              "fw": Resources.parse("mem(web):64")})})
    assert _decode(_encode(state)) == state
    assert _decode(b'{"admitted": {"a": "h"}}') == RegistryState({"a": "h"})  # older documents
