"""zk:// specs and the json.info_ leader rule (pure parts of mesos_common.leader)."""
from __future__ import annotations

import pytest

from mesos_common.leader import (
    DetectError,
    MasterInfo,
    leader_znode,
    parse_zk,
    sequence_of,
    validate_master_spec,
)


def test_parse_zk_hosts_and_path() -> None:
    spec = parse_zk("zk://h1:2181,10.0.0.2:2182/corral/ha/")
    assert (spec.hosts, spec.path) == ("h1:2181,10.0.0.2:2182", "/corral/ha")
    assert parse_zk("zk://u:p@h:1/m").hosts == "h:1"


@pytest.mark.parametrize("bad", ["zk://h:2181", "zk://h:2181/", "zk:///corral",
                                 "zk://h/corral", "zk://h:99999/c", "zk://h:x/c"])
def test_parse_zk_rejects(bad: str) -> None:
    with pytest.raises(DetectError):
        parse_zk(bad)


def test_validate_master_spec_accepts_both_forms() -> None:
    validate_master_spec("zk://h:1/x")
    validate_master_spec("h:5050,g:5050")
    for bad in ("zk://h:1", "nohost"):
        with pytest.raises(DetectError):
            validate_master_spec(bad)


def test_lowest_sequence_leads_and_others_are_ignored() -> None:
    assert sequence_of("json.info_0000000012") == 12
    assert sequence_of("registry") is None and sequence_of("json.info_x") is None
    kids = ["registry", "json.info_0000000010", "json.info_0000000002", "json.info_0000000011"]
    assert leader_znode(kids) == "json.info_0000000002"
    assert leader_znode(["registry"]) is None and leader_znode([]) is None


def test_master_info_from_znode_json_ignores_extra_fields() -> None:
    info = MasterInfo.from_json({"id": "m", "hostname": "h", "ip": "1.2.3.4", "port": 5050,
                                 "zmq_endpoint": "tcp://1.2.3.4:5049", "version": "1",
                                 "pid": "master@1.2.3.4:5050"})
    assert info.port == 5050 and info.zmq_endpoint.endswith(":5049")
    with pytest.raises(DetectError):
        MasterInfo.from_json({"id": "m"})
