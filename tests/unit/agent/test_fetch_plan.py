"""The fetcher's pure part: URI -> step (source, sandbox path, unpacking, cache key), and the
cache's books (cap, LRU eviction of idle entries, bypass when a download cannot fit)."""
from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from mesos_agent.fetch_plan import (
    FILE,
    GZ,
    HTTP,
    TAR,
    ZIP,
    CacheBook,
    PlanError,
    Step,
    archive_kind,
    cache_key,
    plan,
)
from mesos_agent.fetcher import launched_as
from mesos_common.messages import URI, CommandInfo, ContainerInfo, DockerInfo, TaskInfo
from mesos_common.resources import Resources


def test_http_file_and_plain_paths_land_under_their_base_name():
    assert plan(URI("http://h:80/a/app.tar.gz?x=1"), None) == Step(
        "http://h:80/a/app.tar.gz?x=1", HTTP, "http://h:80/a/app.tar.gz?x=1", "app.tar.gz", TAR)
    assert plan(URI("https://h/my%20file.txt"), None).dest == "my file.txt"
    s = plan(URI("file:///opt/pkg.zip"), "bob")
    assert (s.scheme, s.source, s.dest, s.archive, s.cache_key) == (
        FILE, "/opt/pkg.zip", "pkg.zip", ZIP, None)
    assert plan(URI("/opt/data.gz"), None).source == "/opt/data.gz"


def test_extract_executable_and_output_file():
    assert plan(URI("http://h/x.tgz", extract=False), None).archive is None
    exe = plan(URI("http://h/tool.tar", executable=True), None)
    assert exe.executable and exe.archive is None  # Mesos: extract is ignored then
    out = plan(URI("http://h/x", output_file="bin/./tool.tar.xz"), None)
    assert (out.dest, out.archive) == ("bin/tool.tar.xz", TAR)
    g = plan(URI("http://h/notes.txt.gz"), None)
    assert (g.archive, g.unpacked_name) == (GZ, "notes.txt")
    assert plan(URI("http://h/readme"), None).archive is None


@pytest.mark.parametrize("name,kind", [
    ("a.tar", TAR), ("a.TGZ", TAR), ("a.tar.bz2", TAR), ("a.tbz2", TAR), ("a.txz", TAR),
    ("a.tar.xz", TAR), ("a.zip", ZIP), ("a.gz", GZ), ("a.tar.gz", TAR), ("a.tar.gz.txt", None)])
def test_archive_kinds(name, kind):
    assert archive_kind(name) == kind


@pytest.mark.parametrize("uri", [
    URI("ftp://h/x"), URI("hdfs://nn/x"), URI("relative/path"), URI("http:///nohost"),
    URI("http://h/"), URI("http://h/x", output_file="../escape"),
    URI("http://h/x", output_file="/etc/passwd"), URI("http://h/x", output_file="a/../../b"),
    URI("file://otherhost/x"), URI("http://h/dir/..")])
def test_bad_uris_are_refused_naming_the_uri(uri):
    with pytest.raises(PlanError, match=uri.value.replace("?", r"\?")):
        plan(uri, None)


def test_cache_key_is_per_user_and_uri():
    a = plan(URI("http://h/a.tgz", cache=True), "alice").cache_key
    assert a == cache_key("alice", "http://h/a.tgz") != cache_key(None, "http://h/a.tgz")


def test_cache_evicts_least_recently_used_idle_entries_and_bypasses_what_cannot_fit():
    book = CacheBook(100)
    for i, key in enumerate("abc"):
        reserved = book.reserve(key, 30, now=i)
        assert reserved is not None and reserved.evict == ()
        assert book.downloaded(key, 30)
        book.release(key)
    assert book.acquire("a", now=5) is not None  # a used last; in use now
    reserved = book.reserve("d", 50, now=6)
    assert reserved is not None and reserved.evict == ("b", "c")
    book.release("a")
    assert book.reserve("huge", 101, now=7) is None  # larger than the cache: bypass
    assert book.reserve("e", 60, now=8) is None  # d is still downloading, a's 30 not enough
    assert set(book.entries) == {"a", "d"}
    assert book.acquire("d", now=9) is None  # not ready yet
    assert not book.downloaded("d", 90) and "d" not in book.entries  # came out too big
    book.check_invariants()


class CacheMachine(RuleBasedStateMachine):
    """Any sequence of bookings, downloads, uses and failures keeps the cap, evicts only idle
    ready entries and, of those, the least recently used first."""

    def __init__(self) -> None:
        super().__init__()
        self.book = CacheBook(1000)
        self.now = 0.0
        self.keys = [f"k{i}" for i in range(8)]

    def tick(self) -> float:
        self.now += 1
        return self.now

    @rule(i=st.integers(0, 7), size=st.integers(0, 1200))
    def reserve(self, i: int, size: int) -> None:
        key = self.keys[i]
        if key in self.book.entries:
            return
        before = {k: (e.users, e.ready, e.last_used) for k, e in self.book.entries.items()}
        got = self.book.reserve(key, size, self.tick())
        if got is None:
            assert key not in self.book.entries
            return
        kept_idle = [before[k][2] for k in before if k not in got.evict
                     and before[k][0] == 0 and before[k][1]]
        for k in got.evict:
            users, ready, used = before[k]
            assert users == 0 and ready, k
            assert all(used <= t for t in kept_idle), "evicted a more recently used entry"

    @precondition(lambda self: any(not e.ready for e in self.book.entries.values()))
    @rule(data=st.data(), grow=st.integers(-50, 200), ok=st.booleans())
    def finish_download(self, data: st.DataObject, grow: int, ok: bool) -> None:
        key = data.draw(st.sampled_from(sorted(k for k, e in self.book.entries.items()
                                               if not e.ready)))
        if not ok:
            self.book.drop(key)
            return
        if self.book.downloaded(key, max(0, self.book.entries[key].size + grow)):
            self.book.release(key)

    @rule(i=st.integers(0, 7))
    def use(self, i: int) -> None:
        e = self.book.acquire(self.keys[i], self.tick())
        if e is not None:
            assert e.ready and e.users >= 1

    @rule(i=st.integers(0, 7))
    def done_using(self, i: int) -> None:
        e = self.book.entries.get(self.keys[i])
        if e is not None and e.ready:
            self.book.release(self.keys[i])

    @invariant()
    def capped(self) -> None:
        self.book.check_invariants()


TestCacheMachine = CacheMachine.TestCase
TestCacheMachine.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)


def test_a_process_task_carries_its_run_as_user_and_a_docker_task_is_left_alone():
    task = TaskInfo(name="t", task_id="t", agent_id="A", resources=Resources.parse("cpus:1"),
                    command=CommandInfo("id", user="bob"))
    assert launched_as(task, "bob") is task
    as_alice, as_is = launched_as(task, "alice").command, launched_as(task, None).command
    assert as_alice is not None and as_alice.user == "alice"
    assert as_is is not None and as_is.user is None  # --switch_user=false
    docker = TaskInfo(name="d", task_id="d", agent_id="A", resources=Resources.parse("cpus:1"),
                      command=CommandInfo("id", user="bob"),
                      container=ContainerInfo("DOCKER", DockerInfo("img")))
    assert launched_as(docker, None) is docker
