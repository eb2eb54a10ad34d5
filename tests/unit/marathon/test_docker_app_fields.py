"""A Docker app's volumes, parameters, args, user and forcePullImage: validated by Marathon's
model and carried into the TaskInfo the launch queue builds."""
from __future__ import annotations

import pytest

from marathon import launch_queue
from marathon.model import ValidationFailed, validate
from mesos_common import messages as m
from mesos_common.resources import Resources

DOCKER = {"type": "DOCKER", "docker": {"image": "corral/busybox:test"}}


def app(**fields) -> dict:
    return validate({"id": "/d", "cpus": 0.1, "mem": 32, "portDefinitions": [], **fields})


@pytest.mark.parametrize("volume,text", [
    ({"containerPath": "data", "mode": "RW", "persistent": {"size": 10}},
     "persistent volumes are not supported"),
    ({"containerPath": "/data", "external": {"name": "v", "provider": "dvdi"}},
     "external volumes are not supported"),
    ({"containerPath": "/data", "mode": "RO"}, "hostPath is required"),
])
def test_volumes_without_a_host_path_are_refused_by_name(volume: dict, text: str) -> None:
    with pytest.raises(ValidationFailed) as e:
        app(cmd="true", container={**DOCKER, "volumes": [volume]})
    [detail] = e.value.details
    assert detail["path"] == "/container/volumes(0)" and text in detail["errors"][0]


def test_docker_fields_reach_the_task_info() -> None:
    a = app(args=["sleep", "30"], user="nobody", container={
        "type": "DOCKER", "volumes": [{"containerPath": "/ro", "hostPath": "/srv", "mode": "RO"},
                                      {"containerPath": "/cache", "hostPath": "cachevol"}],
        "docker": {"image": "corral/busybox:test", "forcePullImage": True,
                   "parameters": [{"key": "cap-add", "value": "NET_ADMIN"}]}})
    offer = m.Offer(id="o1", framework_id="F", agent_id="A1", hostname="h",
                    resources=Resources.parse("cpus:1;mem:256"))
    [launch] = launch_queue.match(offer, [launch_queue.Want({**a, "version": "v1"}, 1)], {},
                                  lambda app_id: "d.1")
    task = launch.task
    c, cmd = task.container, task.command
    assert c is not None and c.docker is not None and cmd is not None
    assert c.docker.force_pull_image and c.docker.parameters == (("cap-add", "NET_ADMIN"),)
    assert c.volumes == (m.Volume("/ro", "/srv", "RO"), m.Volume("/cache", "cachevol", "RW"))
    # args with an image: the image's entrypoint gets them; the user goes with the command
    assert cmd.value == "" and cmd.arguments == ("sleep", "30")
    assert cmd.user == "nobody" and not cmd.shell
