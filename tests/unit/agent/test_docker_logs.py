"""The pure parts of copying container output: the engine's multiplexed log frames, its
timestamps, and appending only lines newer than the cursor (the engine is exercised in
tests/integration/test_agent_docker.py)."""
from __future__ import annotations

import struct
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from mesos_agent.containerizer.docker_engine import STDERR, STDOUT, FrameReader
from mesos_agent.containerizer.docker_logs import Cursor, since_param, timestamp_ns, write_frames


def frame(stream: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(payload)) + payload


@given(st.lists(st.tuples(st.sampled_from([STDOUT, STDERR]), st.binary(max_size=40)),
                max_size=8), st.lists(st.integers(1, 30), max_size=10))
def test_frames_come_out_whole_however_the_stream_is_cut(frames, cuts) -> None:
    body = b"".join(frame(s, p) for s, p in frames)
    reader, out, at = FrameReader(), [], 0
    for n in cuts:
        out += reader.feed(body[at:at + n])
        at += n
    out += reader.feed(body[at:])
    assert out == frames
    assert reader.feed(frame(STDOUT, b"torn")[:-1]) == []  # a torn last frame is held back


def test_timestamps() -> None:
    assert timestamp_ns(b"1970-01-01T00:00:01.5Z") == 1_500_000_000
    assert timestamp_ns(b"2026-12-07T03:09:51.000000001Z") % 10**9 == 1
    assert timestamp_ns(b"1970-01-01T00:00:02Z") == 2 * 10**9
    assert since_param(1_500_000_007) == "1.500000007" and since_param(0) is None


def test_only_newer_lines_are_appended_to_their_files(tmp_path: Path) -> None:
    cursor = Cursor(str(tmp_path))
    write_frames(cursor, [(STDOUT, b"1970-01-01T00:00:01Z one\n"),
                          (STDERR, b"1970-01-01T00:00:02Z two\n")])
    assert cursor.since_ns == 2 * 10**9
    # `since` is inclusive: the engine sends the last line again, with what is new
    write_frames(cursor, [(STDERR, b"1970-01-01T00:00:02Z two\n"),
                          (STDOUT, b"1970-01-01T00:00:03.25Z three\n"),
                          (STDOUT, b"not-a-stamp junk\n")])
    assert (tmp_path / "stdout").read_bytes() == b"one\nthree\n"
    assert (tmp_path / "stderr").read_bytes() == b"two\n"
    assert cursor.since_ns == 3_250_000_000
