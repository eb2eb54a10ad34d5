"""Resource probing, `--resources` overrides and `--attributes` parsing."""
from __future__ import annotations

import psutil
import pytest

from mesos_agent.probe import AttributeParseError, override, parse_attributes, probe_resources
from mesos_common.resources import ResourceError, Resources


def test_probe_reports_cpus_mem_disk_ports(tmp_path) -> None:
    r = probe_resources(str(tmp_path / "not" / "yet"))
    assert r.scalar("cpus") == psutil.cpu_count(logical=True)
    total = psutil.virtual_memory().total / 2**20
    assert r.scalar("mem") == pytest.approx(total - min(1024, total / 2), abs=1.5)
    assert 0 < r.scalar("disk") <= psutil.disk_usage(str(tmp_path)).free / 2**20
    assert r.ranges("ports") == ((31000, 32000),)


def test_named_resources_replace_probed_ones_others_stay() -> None:
    probed = Resources.parse("cpus:8;mem:4096;disk:1000;ports:[31000-32000]")
    r = override(probed, "cpus:2;ports(web):[80-80];gpus:1")
    assert r == Resources.parse("cpus:2;mem:4096;disk:1000;ports(web):[80-80];gpus:1")
    assert override(probed, None) == probed and override(probed, "  ") == probed
    with pytest.raises(ResourceError):
        override(probed, "cpus:lots")


def test_attributes() -> None:
    assert parse_attributes("rack:r1;zone:a;level:3;w:0.5") == {
        "rack": "r1", "zone": "a", "level": 3.0, "w": 0.5}
    assert parse_attributes("ports:[1-10]; disks:{a,b} ;") == {"ports": "[1-10]",
                                                               "disks": "{a,b}"}
    assert parse_attributes(None) == {} and parse_attributes("") == {}
    assert parse_attributes("host:web-1.example.com") == {"host": "web-1.example.com"}


@pytest.mark.parametrize("text,needle", [
    ("rack", "expected name:value"), ("rack:", "expected name:value"),
    (":x", "invalid attribute name"), ("a b:c", "invalid attribute name"),
    ("rack:1;rack:2", "given twice"),
])
def test_bad_attributes(text: str, needle: str) -> None:
    with pytest.raises(AttributeParseError, match=needle):
        parse_attributes(text)
