"""make_task and ResourcesLeft: tasks really come out of offers, and pack."""
from __future__ import annotations

import pytest

from frameworks.tasks import ResourcesLeft, make_task
from mesos_common.messages import CommandInfo, ContainerInfo, DockerInfo, Offer, TaskInfo
from mesos_common.resources import ResourceError, Resources


def offer(text: str = "cpus:1;mem:128;disk:100;ports:[31000-31002]") -> Offer:
    return Offer("o1", "fw", "a1", "host1", Resources.parse(text))


def test_make_task_takes_resources_and_ports_from_the_offer() -> None:
    t = make_task("t1", offer(), "echo $PORT0", cpus=0.5, mem=64, disk=10, ports=2,
                  env={"A": "1"})
    assert t.task_id == "t1" and t.name == "t1" and t.agent_id == "a1"
    assert t.resources == Resources.parse("cpus:0.5;mem:64;disk:10;ports:[31000-31001]")
    assert t.command is not None and t.command.value == "echo $PORT0" and t.command.shell
    assert t.command.environment == {"PORT0": "31000", "PORT1": "31001",
                                     "PORTS": "31000,31001", "A": "1"}


def test_make_task_without_shell_name_and_container() -> None:
    c = ContainerInfo(type="DOCKER", docker=DockerInfo("alpine:3"))
    t = make_task("t1", offer(), "/bin/true", 0.1, 32, name="nice", shell=False, container=c)
    assert t.name == "nice" and t.command is not None and not t.command.shell
    assert t.container == c and t.resources == Resources.parse("cpus:0.1;mem:32")
    entry = make_task("t2", offer(), None, 0.1, 32, container=c)
    assert entry.command == CommandInfo(value="", shell=False)


def test_make_task_raises_when_it_does_not_fit() -> None:
    with pytest.raises(ResourceError):
        make_task("t1", offer(), "x", cpus=2, mem=32)
    with pytest.raises(ResourceError):
        make_task("t1", offer(), "x", cpus=0.1, mem=32, ports=4)


def test_scalars_come_from_reservations_first() -> None:
    o = offer("cpus(web):0.25;cpus:1;mem:64")
    t = make_task("t1", o, "x", cpus=0.5, mem=32)
    assert t.resources == Resources.parse("cpus(web):0.25;cpus:0.25;mem:32")
    assert o.resources.contains(t.resources)


def test_resources_left_packs_until_full() -> None:
    left = ResourcesLeft(offer("cpus:0.35;mem:100;ports:[31000-31009]"))
    tasks: list[TaskInfo] = []
    while (t := left.take(f"t{len(tasks)}", "sleep 1", 0.1, 32, ports=1)) is not None:
        tasks.append(t)
    assert [t.task_id for t in tasks] == ["t0", "t1", "t2"]  # mem: 3 * 32 <= 100
    assert left.tasks == tasks
    assert [t.command.environment["PORT0"] if t.command else None
            for t in tasks] == ["31000", "31001", "31002"]
    assert left.left == Resources.parse("cpus:0.05;mem:4;ports:[31003-31009]")
    assert not left.fits(0.05, 8) and left.fits(0.05, 4)
    total = Resources()
    for t in tasks:
        total += t.resources
    assert left.offer.resources.contains(total)


def test_point_one_cpus_pack_exactly() -> None:
    left = ResourcesLeft(offer("cpus:0.3;mem:96"))
    assert sum(left.take(f"t{i}", "x", 0.1, 32) is not None for i in range(5)) == 3
