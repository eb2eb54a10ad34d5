"""Why apps wait (`/v2/queue` summaries) from the offers matched against them."""
from __future__ import annotations

from marathon import launch_queue as lq
from marathon.offer_log import KEEP, OfferLog
from tests.unit.marathon.test_launch_queue import app, docker_app, offer


def test_summary_counts_offers_and_funnels_reasons_in_check_order():
    log = OfferLog()
    web, dock = app(id="/web", mem=64), docker_app(id="/dock")
    wants = [lq.Want(dock, 1), lq.Want(web, 1)]
    log.record(offer(containerizers=("mesos",)), wants, {"/web"}, {}, 100.0)
    log.record(offer("cpus:2;mem:16;ports:[31000-31009]"), wants, set(), {}, 101.0)
    log.record(offer(containerizers=("mesos",)), [lq.Want(dock, 1)], set(), {}, 102.0)
    s = log.summary("/dock")
    assert s["processedOffersCount"] == 3 and s["unusedOffersCount"] == 3
    assert s["rejectSummaryLaunchAttempt"] == [
        {"reason": "no agent with the docker containerizer", "declined": 2, "processed": 3},
        {"reason": "insufficient mem", "declined": 1, "processed": 1}]
    assert s["rejectSummaryLastOffers"] == s["rejectSummaryLaunchAttempt"]
    assert s["lastUnusedOfferAt"] == "1970-01-01T00:01:42.000Z" and "lastUsedOfferAt" not in s
    web_summary = log.summary("/web")
    assert web_summary["unusedOffersCount"] == 1
    assert web_summary["lastUsedOfferAt"] == "1970-01-01T00:01:40.000Z"
    (unused,) = log.last_unused("/web")
    assert unused["reason"] == ["insufficient mem"]
    assert unused["offer"]["hostname"] == "h1" and unused["offer"]["agentId"] == "a-h1"
    assert {"name": "mem", "role": "*", "scalar": 16.0} in unused["offer"]["resources"]
    assert {"name": "ports", "role": "*", "ranges": [{"begin": 31000, "end": 31009}]} in \
        unused["offer"]["resources"]


def test_an_offer_others_used_up_and_bounded_memory():
    log = OfferLog()
    a = app(id="/a")
    for i in range(KEEP + 5):
        log.record(offer(), [lq.Want(a, 1)], set(), {}, float(i))
    assert len(log.last_unused("/a")) == KEEP
    assert log.last_unused("/a")[0]["reason"] == [lq.TAKEN]
    assert log.summary("/a")["unusedOffersCount"] == KEEP + 5
    log.forget("/a")
    assert log.summary("/a")["processedOffersCount"] == 0 and log.last_unused("/a") == []
