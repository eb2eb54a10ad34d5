"""Chaos totals from a round log: faults counted when applied, failed rounds and lost
changes from the results, the worst times kept."""
from __future__ import annotations

import json

from tests.hosts.chaos import summarize


def test_a_log_sums_to_its_totals(tmp_path):
    fault = {"at": 1, "kind": "kill_master_leader", "target": "leader:master", "duration": 3}
    events = [
        {"event": "start", "round": 1, "faults": [fault]},
        {"event": "fault", "round": 1, "fault": fault, "host": "m1"},
        {"event": "fault", "round": 1, "fault": dict(fault, kind="loss"), "host": None},
        {"event": "result", "round": 1, "problems": [], "acked": 5, "converge_s": 2.0,
         "longest_below_capacity_s": 1.5},
        {"event": "start", "round": 2, "faults": []},
        {"event": "fault", "round": 2, "fault": dict(fault, kind="partition_agent"),
         "host": "a1"},
        {"event": "result", "round": 2, "problems": ["lost change: /x: instances", "lost on an "
                                                     "untouched host: t on a2"],
         "acked": 7, "converge_s": 9.0, "longest_below_capacity_s": 0.5},
    ]
    log = tmp_path / "chaos.jsonl"
    log.write_text("".join(json.dumps(e) + "\n" for e in events))
    t = summarize(log).to_json()
    assert t["rounds"] == 2 and t["failed_rounds"] == [2]
    assert t["faults"] == {"kill_master_leader": 1, "partition_agent": 1}  # loss found no host
    assert (t["leader_kills"], t["partitions"], t["losses"]) == (1, 1, 0)
    assert (t["changes_acked"], t["changes_lost"], t["tasks_lost_on_untouched_hosts"]) == (12, 1, 1)
    assert (t["longest_converge_s"], t["longest_below_capacity_s"]) == (9.0, 1.5)
