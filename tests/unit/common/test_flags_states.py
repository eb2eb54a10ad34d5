from __future__ import annotations

import argparse

import pytest

from mesos_common import flags
from mesos_common import task_states as ts
from mesos_common.leader import DetectError, parse_master_spec


def make_parser():
    p = flags.FlagParser("prog", "test")
    p.add_flag("port", type=flags.port, default=5050)
    p.add_flag("work_dir", default=None)
    p.add_flag("timeout", type=flags.duration, default=15.0)
    p.add_flag("checkpoint", type=flags.boolean, default=True)
    return p


def test_defaults_env_and_flags(monkeypatch):
    monkeypatch.delenv("MESOS_PORT", raising=False)
    assert make_parser().parse([]).port == 5050
    monkeypatch.setenv("MESOS_PORT", "6000")
    monkeypatch.setenv("MESOS_TIMEOUT", "100ms")
    ns = make_parser().parse([])
    assert ns.port == 6000 and ns.timeout == pytest.approx(0.1)
    assert make_parser().parse(["--port=7000"]).port == 7000  # flag beats env
    assert make_parser().parse(["--no-checkpoint"]).checkpoint is False
    assert make_parser().parse(["--checkpoint=false"]).checkpoint is False
    assert make_parser().parse(["--checkpoint"]).checkpoint is True


@pytest.mark.parametrize("argv,env,needle", [
    (["--port", "70000"], {}, "out of range"),
    (["--port", "x"], {}, "invalid port"),
    (["--bogus"], {}, "unrecognized arguments"),
    (["--timeout", "soon"], {}, "invalid duration"),
    ([], {"MESOS_PORT": "abc"}, "MESOS_PORT"),
    ([], {"MESOS_LOG_LEVEL": "loud"}, "log_level"),
])
def test_bad_flags_one_line_and_exit_2(argv, env, needle, monkeypatch, capsys):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(SystemExit) as e:
        make_parser().parse(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err


@pytest.mark.parametrize("text,secs", [("15secs", 15), ("100ms", 0.1), ("2mins", 120), ("3", 3),
                                       ("1.5s", 1.5), ("1hrs", 3600)])
def test_durations(text, secs):
    assert flags.duration(text) == pytest.approx(secs)


@pytest.mark.parametrize("text,size", [("2GB", 2 << 30), ("512MB", 512 << 20), ("64kb", 65536),
                                       ("100B", 100), ("1048576", 1 << 20), ("0", 0),
                                       ("1.5GB", 3 << 29)])
def test_byte_sizes(text, size):
    assert flags.byte_size(text) == size


def test_bad_byte_size():
    with pytest.raises(argparse.ArgumentTypeError, match="invalid size"):
        flags.byte_size("lots")


def test_terminal_states_go_nowhere():
    for s in ts.TERMINAL_STATES:
        assert not any(ts.can_transition(s, t) for t in ts.ALL_STATES)
    assert ts.can_transition(ts.STAGING, ts.RUNNING)
    assert ts.can_transition(ts.UNREACHABLE, ts.RUNNING)
    assert not ts.can_transition(ts.RUNNING, ts.STAGING)
    assert set(ts.TRANSITIONS) == ts.ALL_STATES


def test_partition_aware_mapping():
    assert ts.for_framework(ts.UNREACHABLE, partition_aware=False) == ts.LOST
    assert ts.for_framework(ts.UNREACHABLE, partition_aware=True) == ts.UNREACHABLE
    assert ts.for_framework(ts.RUNNING, partition_aware=False) == ts.RUNNING


def test_master_spec():
    assert parse_master_spec("h:5050, http://g:1/") == [("h", 5050), ("g", 1)]
    for bad in ["h", "h:x", ":5050", "h:0", "zk://z:2181/m"]:
        with pytest.raises(DetectError):
            parse_master_spec(bad)
