"""Why apps wait: per waiting app, the offers Marathon processed and the last ones it could not
use, with `launch_queue.rejections`' reasons (pure; no clock: times come in).

Feeds `/v2/queue`'s `processedOffersSummary` and `lastUnusedOffers` in Marathon's shapes:
`rejectSummary*` entries are `{"reason", "declined", "processed"}` in the order the checks run
(an offer reaches a check only when every earlier one passed, so `processed` narrows down).
"""
from __future__ import annotations

from collections import deque
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from attrs import define, field, frozen

from marathon import launch_queue as lq
from marathon.model import timestamp
from mesos_common import messages as m

KEEP = 20  # unused offers remembered per app
STAGES = (lq.NO_DOCKER, lq.NO_ROLE, "constraint", *lq.INSUFFICIENT.values(), lq.NO_PORTS, lq.TAKEN)


@frozen
class Unused:
    offer: m.Offer
    reasons: tuple[str, ...]
    at: float


@define
class _AppLog:
    processed: int = 0
    unused: int = 0
    last_used_at: float | None = None
    first: dict[str, int] = field(factory=dict)  # reason -> offers it was the first of
    recent: deque[Unused] = field(factory=lambda: deque(maxlen=KEEP))


def _stage(reason: str) -> int:
    return STAGES.index("constraint" if reason.startswith("constraint ") else reason)


def reject_summary(first: Mapping[str, int], total: int) -> list[dict[str, Any]]:
    """Marathon's funnel: how many offers reached each check and how many it declined."""
    out, processed = [], total
    for reason in sorted(first, key=lambda r: (_stage(r), r)):
        out.append({"reason": reason, "declined": first[reason], "processed": processed})
        processed -= first[reason]
    return out


class OfferLog:
    def __init__(self) -> None:
        self._apps: dict[str, _AppLog] = {}

    def record(self, offer: m.Offer, wants: Sequence[lq.Want], launched: Collection[str],
               placed: Mapping[str, Sequence[lq.Placement]], now: float) -> None:
        """`offer` was matched against `wants`; the apps in `launched` got instances from it."""
        for want in wants:
            aid = want.app["id"]
            log = self._apps.setdefault(aid, _AppLog())
            log.processed += 1
            if aid in launched:
                log.last_used_at = now
                continue
            reasons = tuple(lq.rejections(want.app, offer, placed.get(aid, ()))) or (lq.TAKEN,)
            log.unused += 1
            log.first[reasons[0]] = log.first.get(reasons[0], 0) + 1
            log.recent.append(Unused(offer, reasons, now))

    def forget(self, app_id: str) -> None:
        """The app is no longer waiting: its next launch attempt starts afresh."""
        self._apps.pop(app_id, None)

    def summary(self, app_id: str) -> dict[str, Any]:
        log = self._apps.get(app_id) or _AppLog()
        last: dict[str, int] = {}
        for u in log.recent:
            last[u.reasons[0]] = last.get(u.reasons[0], 0) + 1
        out: dict[str, Any] = {
            "processedOffersCount": log.processed, "unusedOffersCount": log.unused,
            "rejectSummaryLastOffers": reject_summary(last, len(log.recent)),
            "rejectSummaryLaunchAttempt": reject_summary(log.first, log.unused)}
        if log.recent:
            out["lastUnusedOfferAt"] = timestamp(log.recent[-1].at)
        if log.last_used_at is not None:
            out["lastUsedOfferAt"] = timestamp(log.last_used_at)
        return out

    def last_unused(self, app_id: str) -> list[dict[str, Any]]:
        log = self._apps.get(app_id)
        return [unused_json(u) for u in (log.recent if log is not None else ())]


def unused_json(u: Unused) -> dict[str, Any]:
    o = u.offer
    resources = []
    for r in o.resources.to_json():
        entry = {"name": r["name"], "role": r.get("role", "*")}
        if "scalar" in r:
            entry["scalar"] = r["scalar"]["value"]
        if "ranges" in r:
            entry["ranges"] = [{"begin": x["begin"], "end": x["end"]}
                               for x in r["ranges"]["range"]]
        if "set" in r:
            entry["set"] = list(r["set"].get("item", []))
        resources.append(entry)
    attributes = [{"name": k, **({"scalar": v} if isinstance(v, float) else {"text": v})}
                  for k, v in sorted(o.attributes.items())]
    return {"offer": {"id": o.id, "agentId": o.agent_id, "hostname": o.hostname,
                      "resources": resources, "attributes": attributes},
            "reason": list(u.reasons), "timestamp": timestamp(u.at)}
