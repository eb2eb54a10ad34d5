"""The API's commands on apps, tasks, groups and the queue (mixed into MarathonService).

Each command validates first, then commits through `start_deployment` (which persists
before anything is answered), so a rejected request changes nothing.
"""
from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING, Any, Iterable

from marathon import model, views
from marathon.errors import ApiError, app_missing
from marathon.model import ValidationFailed
from marathon.tracker import ACTIVE

if TYPE_CHECKING:
    from marathon.service import Deployment

SERVICE_PORTS = (10000, 20000)


def _label_match(labels: dict[str, str], selector: str) -> bool:
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


class AppsMixin:
    """Needs the MarathonService attributes (apps, versions, tasks, ...)."""

    apps: dict[str, dict[str, Any]]
    versions: dict[str, dict[str, Any]]
    tasks: dict[str, Any]
    groups: dict[str, dict[str, Any]]

    # ------------------------------------------------------------ building versions

    def _used_service_ports(self, exclude: str) -> set[int]:
        used = set()
        for aid, app in self.apps.items():
            if aid != exclude:
                used.update(p for p in views.service_ports(app) if p)
        return used

    def _assign_ports(self, doc: dict[str, Any], previous: dict[str, Any] | None) -> None:
        """Port 0 in portDefinitions / servicePort 0 in portMappings -> a free service port,
        keeping the ports the previous version had at the same index."""
        used = self._used_service_ports(doc["id"])
        prev = views.service_ports(previous) if previous else []
        if "portDefinitions" in doc:
            items, key = doc["portDefinitions"], "port"
        else:
            items, key = (doc.get("container") or {}).get("portMappings", []), "servicePort"
        nxt = SERVICE_PORTS[0]
        for i, p in enumerate(items):
            if p.get(key):
                continue
            if i < len(prev) and prev[i] and prev[i] not in used:
                p[key] = prev[i]
            else:
                while nxt in used:
                    nxt += 1
                if nxt >= SERVICE_PORTS[1]:
                    raise ApiError(422, {"message": "no service ports left"})
                p[key] = nxt
            used.add(p[key])

    def _versioned(self, doc: dict[str, Any], previous: dict[str, Any] | None,
                   version: str, scale_only: bool = False) -> dict[str, Any]:
        doc = copy.deepcopy(doc)
        self._assign_ports(doc, previous)
        doc["version"] = version
        last_config = (previous or {}).get("versionInfo", {}).get("lastConfigChangeAt")
        if previous is None or not scale_only:
            last_config = version
        doc["versionInfo"] = {"lastScalingAt": version, "lastConfigChangeAt": last_config}
        return doc

    def _definition(self, raw: Any, app_id: str | None = None,
                    current: dict[str, Any] | None = None, partial: bool = True,
                    base: str = "/") -> dict[str, Any]:
        """Validate a body (merged onto `current` when partial) into a canonical app."""
        if not isinstance(raw, dict):
            raise ValidationFailed([{"path": "/", "errors": ["error.expected.jsobject"]}],
                                   "Invalid JSON")
        body = {k: v for k, v in raw.items() if k != "version"}
        if app_id is not None:
            body["id"] = app_id
        if current is not None and partial:
            cur = {k: v for k, v in current.items() if k not in ("version", "versionInfo")}
            body = model.merge_update(cur, body)
        return model.validate(body, base)

    # ------------------------------------------------------------ apps

    def get_app(self, app_id: str) -> dict[str, Any]:
        app = self.apps.get(app_id)
        if app is None:
            raise app_missing(app_id)
        return app

    def list_apps(self, cmd: str | None = None, id_part: str | None = None,
                  label: str | None = None, embed: Iterable[str] = ()) -> list[dict[str, Any]]:
        emb = views.embeds(embed)
        out = []
        for aid in sorted(self.apps):
            app = self.apps[aid]
            if cmd and cmd.lower() not in app.get("cmd", "").lower():
                continue
            if id_part and id_part.lower() not in aid.lower():
                continue
            if label and not _label_match(app.get("labels", {}), label):
                continue
            out.append(views.app_info(self, app, emb))  # type: ignore[arg-type]
        return out

    def create_app(self, raw: Any, force: bool) -> tuple[dict[str, Any], Deployment]:
        doc = self._definition(raw)
        if doc["id"] in self.apps:
            raise ApiError(409, {"message": f"An app with id [{doc['id']}] already exists."})
        if doc["id"] in self.groups:
            raise ApiError(409, {"message": f"A group with id [{doc['id']}] already exists."})
        app = self._versioned(doc, None, self.new_version())  # type: ignore[attr-defined]
        d = self.start_deployment({app["id"]: app}, force)  # type: ignore[attr-defined]
        return app, d

    def update_app(self, app_id: str, raw: Any, force: bool,
                   partial: bool = True) -> tuple[bool, Deployment]:
        """PUT: create when missing (True), else update (False); `{"version"}` rolls back."""
        current = self.apps.get(app_id)
        if isinstance(raw, dict) and "version" in raw and set(raw) - {"version", "id"}:
            raise ApiError(400, {"message": "The 'version' field may only be combined with "
                                            "the 'id' field."})
        if isinstance(raw, dict) and "version" in raw:
            old = self.versions.get(f"{app_id}@{raw['version']}")
            if old is None:
                raise ApiError(404, {"message": f"App '{app_id}' does not exist in version "
                                                f"{raw['version']}"})
            doc = {k: v for k, v in old.items() if k not in ("version", "versionInfo")}
        else:
            doc = self._definition(raw, app_id, current, partial)
        scale_only = current is not None and not model.needs_restart(current, doc)
        app = self._versioned(doc, current, self.new_version(), scale_only)  # type: ignore
        return current is None, self.start_deployment({app_id: app}, force)  # type: ignore

    def update_apps(self, raws: Any, force: bool, partial: bool = True) -> Deployment:
        if not isinstance(raws, list):
            raise ValidationFailed([{"path": "/", "errors": ["error.expected.jsarray"]}],
                                   "Invalid JSON")
        target: dict[str, Any] = {}
        version = self.new_version()  # type: ignore[attr-defined]
        for i, raw in enumerate(raws):
            try:
                if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
                    raise ValidationFailed([{"path": "/id", "errors": ["error.path.missing"]}])
                aid = model.normalize_id(raw["id"])
                cur = self.apps.get(aid)
                doc = self._definition(raw, None, cur, partial)
            except ValidationFailed as e:
                raise ValidationFailed([{"path": f"({i}){d['path']}", "errors": d["errors"]}
                                        for d in e.details]) from None
            scale_only = cur is not None and not model.needs_restart(cur, doc)
            target[doc["id"]] = self._versioned(doc, cur, version, scale_only)
        return self.start_deployment(target, force)  # type: ignore[attr-defined]

    def delete_app(self, app_id: str, force: bool) -> Deployment:
        self.get_app(app_id)
        return self.start_deployment({app_id: None}, force)  # type: ignore[attr-defined]

    def restart_app(self, app_id: str, force: bool) -> Deployment:
        cur = self.get_app(app_id)
        app = dict(cur, version=self.new_version())  # type: ignore[attr-defined]
        app["versionInfo"] = {"lastScalingAt": app["version"],
                              "lastConfigChangeAt": app["version"]}
        return self.start_deployment({app_id: app}, force,  # type: ignore[attr-defined]
                                     restart=[app_id])

    def scale_app(self, app_id: str, instances: int, force: bool) -> Deployment:
        cur = self.get_app(app_id)
        return self.update_app(app_id, {"instances": max(0, instances)}, force)[1] \
            if cur else None  # type: ignore[return-value]

    def app_versions(self, app_id: str) -> list[str]:
        self.get_app(app_id)
        return sorted(k.split("@", 1)[1] for k in self.versions
                      if k.split("@", 1)[0] == app_id)[::-1]

    def app_version(self, app_id: str, version: str) -> dict[str, Any]:
        self.get_app(app_id)
        doc = self.versions.get(f"{app_id}@{version}")
        if doc is None:
            raise ApiError(404, {"message": f"App '{app_id}' does not exist in version {version}"})
        return doc

    # ------------------------------------------------------------ tasks

    def kill_tasks(self, ids: list[str], scale: bool, force: bool) -> tuple[list[Any], Any]:
        """Kill the given tasks; with scale, lower each app's instances by its kills."""
        killed = [self.tasks[i] for i in ids if i in self.tasks]
        fresh = [t for t in killed if t.active and not t.killing]  # not already dying
        if not scale:
            for t in killed:
                self.kill(t.id)  # type: ignore[attr-defined]
            return killed, None
        target: dict[str, Any] = {}
        version = self.new_version()  # type: ignore[attr-defined]
        for aid in {t.app_id for t in killed}:
            cur = self.apps.get(aid)
            if cur is None:
                continue
            n = len([t for t in fresh if t.app_id == aid])
            target[aid] = self._versioned(dict(cur, instances=max(0, cur["instances"] - n)),
                                          cur, version, scale_only=True)
        d = self.start_deployment(target, force) if target else None  # type: ignore
        for t in killed:
            self.kill(t.id)  # type: ignore[attr-defined]
        if d is not None:
            self.tick()  # type: ignore[attr-defined]
        return killed, d

    # ------------------------------------------------------------ queue

    def queue(self, embed_offers: bool) -> list[dict[str, Any]]:
        now = self.now()  # type: ignore[attr-defined]
        out = []
        for aid in sorted(self.queued_since):  # type: ignore[attr-defined]
            app = self.apps.get(aid)
            if app is None:
                continue
            live = sum(n for (state, killing, _, _), n  # counts, not a scan
                       in self.tally.counts(aid).items()  # type: ignore[attr-defined]
                       if state in ACTIVE and not killing)
            count = max(0, int(app["instances"]) - live)
            out.append(views.queue_item(self, app, count, now, embed_offers))  # type: ignore
        return out

    def reset_delay(self, app_id: str) -> None:
        if app_id not in self.queued_since and app_id not in self.backoffs:  # type: ignore
            raise ApiError(404, {"message": f"Application {app_id} not found in tasks queue."})
        self.backoffs.pop(app_id, None)  # type: ignore[attr-defined]
        self.tick()  # type: ignore[attr-defined]
