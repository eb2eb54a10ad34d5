"""`--containerizers auto` and explicit values (`containerizer.detect`)."""
from __future__ import annotations

from pathlib import Path

from mesos_agent.containerizer.detect import choose


def test_explicit_values_are_taken_as_given_without_asking_an_engine() -> None:
    choice = choose("mesos,docker", {"DOCKER_HOST": "unix:///nonexistent"})
    assert choice.kinds == {"docker", "mesos"} and choice.text == "docker,mesos"
    assert choose("process").text == "mesos"


def test_auto_without_an_engine_answering_is_mesos_and_says_why(tmp_path: Path) -> None:
    for host in ("unix:///nonexistent", f"unix://{tmp_path}/docker.sock", "tcp://"):
        choice = choose("auto", {"DOCKER_HOST": host})
        assert choice.text == "mesos"
        assert choice.why.startswith("auto: no Docker engine (") and "\n" not in choice.why
