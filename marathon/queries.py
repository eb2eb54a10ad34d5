"""The API's reads over the core's state (pure): apps, versions, the queue, group versions.

Reads change nothing, so they do not go through the core's `handle`; a missing app or
version is an ApiError (404) as Marathon answers it.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from marathon import views
from marathon.core_state import MarathonState
from marathon.errors import ApiError, app_missing, group_missing
from marathon.tracker import ACTIVE


def label_match(labels: dict[str, str], selector: str) -> bool:
    for term in re.findall(r"[^,()]+(?:\([^)]*\))?", selector):
        term = term.strip()
        mt = re.fullmatch(r"(\S+?)\s*(==|!=|\s+in\s+|\s+notin\s+)\s*(.*)", term)
        if not mt:
            if term and term not in labels:
                return False
            continue
        key, op, val = mt.group(1), mt.group(2).strip(), mt.group(3).strip()
        vals = [v.strip() for v in val.strip("()").split(",")]
        have = labels.get(key)
        if (op == "==" and have != val) or (op == "!=" and have == val) \
                or (op == "in" and have not in vals) or (op == "notin" and have in vals):
            return False
    return True


def get_app(st: MarathonState, app_id: str) -> dict[str, Any]:
    app = st.apps.get(app_id)
    if app is None:
        raise app_missing(app_id)
    return app


def list_apps(st: MarathonState, cmd: str | None = None, id_part: str | None = None,
              label: str | None = None, embed: Iterable[str] = ()) -> list[dict[str, Any]]:
    emb = views.embeds(embed)
    out = []
    for aid in sorted(st.apps):
        app = st.apps[aid]
        if cmd and cmd.lower() not in app.get("cmd", "").lower():
            continue
        if id_part and id_part.lower() not in aid.lower():
            continue
        if label and not label_match(app.get("labels", {}), label):
            continue
        out.append(views.app_info(st, app, emb))
    return out


def app_versions(st: MarathonState, app_id: str) -> list[str]:
    get_app(st, app_id)
    return sorted(k.split("@", 1)[1] for k in st.versions
                  if k.split("@", 1)[0] == app_id)[::-1]


def app_version(st: MarathonState, app_id: str, version: str) -> dict[str, Any]:
    get_app(st, app_id)
    doc = st.versions.get(f"{app_id}@{version}")
    if doc is None:
        raise ApiError(404, {"message": f"App '{app_id}' does not exist in version {version}"})
    return doc


def queue(st: MarathonState, now: float, embed_offers: bool) -> list[dict[str, Any]]:
    out = []
    for aid in sorted(st.queued_since):
        app = st.apps.get(aid)
        if app is None:
            continue
        live = sum(n for (state, killing, _, _), n in st.tally.counts(aid).items()
                   if state in ACTIVE and not killing)  # counts, not a scan
        count = max(0, int(app["instances"]) - live)
        out.append(views.queue_item(st, app, count, now, embed_offers))
    return out


def group_versions(st: MarathonState, gid: str) -> list[str]:
    if not st.group_exists(gid):
        raise group_missing(gid)
    prefix = gid.rstrip("/") + "/"
    return sorted((v for v, snap in st.root_history.items()
                   if gid == "/" or any(a.startswith(prefix) for a in snap)), reverse=True)
