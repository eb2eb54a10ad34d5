"""The API's commands on groups: trees of apps addressed by id prefix.

Apps are stored flat by id; a group is the set of apps under its path, plus an explicit
record (so an empty group exists, and has dependencies and a version). A group change is
one deployment covering every app it adds, changes or removes.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marathon import core_events as ev
from marathon import model
from marathon.core_base import CoreBase
from marathon.core_state import Deployment
from marathon.errors import ApiError, group_missing
from marathon.model import ValidationFailed
from marathon.planner import plan

GROUP_KEYS = {"id", "apps", "groups", "dependencies", "version", "scaleBy", "enforceRole",
              "pods"}


def flatten(raw: Any, gid: str, path: str, out: dict[str, Any],
            groups: dict[str, Any]) -> None:
    """Collect app definitions (ids resolved against their group) from a GroupUpdate."""
    if not isinstance(raw, dict):
        raise ValidationFailed([{"path": path or "/", "errors": ["error.expected.jsobject"]}])
    unknown = set(raw) - GROUP_KEYS
    if unknown:
        raise ValidationFailed([{"path": path or "/",
                                 "errors": [f"Unknown properties {sorted(unknown)}"]}])
    groups[gid] = {"dependencies": [model.normalize_id(d, gid)
                                    for d in raw.get("dependencies", [])
                                    if isinstance(d, str)]}
    for key, kind in (("apps", "app"), ("groups", "group")):
        items = raw.get(key, [])
        if not isinstance(items, list):
            raise ValidationFailed([{"path": f"{path}/{key}",
                                     "errors": ["error.expected.jsarray"]}])
        for i, item in enumerate(items):
            where = f"{path}/{key}({i})"
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                raise ValidationFailed([{"path": f"{where}/id",
                                         "errors": ["error.path.missing"]}])
            cid = model.normalize_id(item["id"], gid)
            if not cid.startswith(gid.rstrip("/") + "/"):
                raise ValidationFailed([{"path": f"{where}/id", "errors": [
                    f"identifier {cid} is not child of {gid}. Hint: use relative paths."]}])
            if kind == "group":
                flatten(item, cid, where, out, groups)
                continue
            try:
                out[cid] = model.validate(dict(item, id=cid), gid)
            except ValidationFailed as e:
                raise ValidationFailed([{"path": where + (d["path"] if d["path"] != "/"
                                                          else ""), "errors": d["errors"]}
                                        for d in e.details]) from None


class GroupCommands(CoreBase):
    def _group_target(self, gid: str, raw: Any,
                      replace: bool) -> tuple[dict[str, dict[str, Any] | None], dict[str, Any]]:
        st = self.state
        new: dict[str, Any] = {}
        groups: dict[str, Any] = {}
        flatten(raw, gid, "", new, groups)
        target: dict[str, dict[str, Any] | None] = {}
        version = self.new_version()
        if replace and "apps" in raw:
            for aid in st.apps_under(gid):
                if aid not in new and aid.rsplit("/", 1)[0] in groups:
                    target[aid] = None
        for aid, doc in new.items():
            cur = st.apps.get(aid)
            if cur is not None:
                strip = {k: v for k, v in cur.items() if k not in ("version", "versionInfo")}
                if not model.needs_restart(strip, doc) and strip == doc:
                    continue
            scale_only = cur is not None and not model.needs_restart(cur, doc)
            target[aid] = self._versioned(doc, cur, version, scale_only)
        for g in groups:
            groups[g]["version"] = version
        return target, groups

    def create_group(self, e: ev.CreateGroup) -> Deployment:
        st, gid, raw = self.state, e.group_id, e.raw
        if isinstance(raw, dict) and isinstance(raw.get("id"), str):
            gid = model.normalize_id(raw["id"], gid)
        if gid == "/" or st.group_exists(gid):
            raise ApiError(409, {"message": f"Group {gid} is already created. Use PUT to "
                                            "change this group."})
        if gid in st.apps:
            raise ApiError(409, {"message": f"An app with id [{gid}] already exists."})
        target, groups = self._group_target(gid, raw, replace=False)
        for aid in target:
            if aid in st.apps:
                raise ApiError(409, {"message": f"An app with id [{aid}] already exists."})
        return self._commit_groups(target, groups, e.force)

    def _commit_groups(self, target: dict[str, Any], groups: dict[str, Any],
                       force: bool) -> Deployment:
        d = self.start_deployment(target, force)
        self.state.groups.update(groups)
        self._save_meta()
        return d

    def update_group(self, e: ev.UpdateGroup) -> Deployment:
        gid, raw = e.group_id, e.raw
        if isinstance(raw, dict) and set(raw) <= {"scaleBy", "id"} and "scaleBy" in raw:
            return self._scale_group(gid, raw["scaleBy"], e.force)
        if isinstance(raw, dict) and "version" in raw:
            return self._rollback_group(gid, raw["version"], e.force)
        target, groups = self._group_target(gid, raw, replace=True)
        return self._commit_groups(target, groups, e.force)

    def _rollback_group(self, gid: str, version: Any, force: bool) -> Deployment:
        """Put every app under `gid` back to what it was in root version `version`."""
        st = self.state
        snap = st.root_history.get(version) if isinstance(version, str) else None
        if snap is None:
            raise ApiError(404, {"message": f"Group '{gid}' does not exist in version {version}"})
        prefix = gid.rstrip("/") + "/"

        def under(a: str) -> bool:
            return gid == "/" or a.startswith(prefix)
        new_version = self.new_version()
        target: dict[str, Any] = {a: None for a in st.apps if under(a) and a not in snap}
        for aid, v in snap.items():
            old = st.versions.get(f"{aid}@{v}")
            cur = st.apps.get(aid)
            if not under(aid) or old is None or (cur is not None and cur["version"] == v):
                continue
            target[aid] = self._changed(old, cur, new_version)
        return self.start_deployment(target, force)

    def dry_run(self, e: ev.DryRun) -> list[dict[str, Any]]:
        """The steps PUT would deploy, without deploying (`?dryRun=true`)."""
        target, _ = self._group_target(e.group_id, e.raw, replace=True)
        original = {a: self.state.apps[a] for a in target if a in self.state.apps}
        new = {a: d for a, d in target.items() if d is not None}
        return [{"actions": [a.to_json() for a in step]} for step in plan(original, new)]

    def _scale_group(self, gid: str, factor: Any, force: bool) -> Deployment:
        st = self.state
        if not st.group_exists(gid):
            raise group_missing(gid)
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or factor < 0:
            raise ValidationFailed([{"path": "/scaleBy", "errors": ["must be a number >= 0"]}])
        version = self.new_version()
        target: dict[str, dict[str, Any] | None] = {}
        for aid in st.apps_under(gid):
            cur = st.apps[aid]
            n = int(round(cur["instances"] * factor))
            target[aid] = self._versioned(dict(cur, instances=n), cur, version,
                                          scale_only=True)
        return self.start_deployment(target, force)

    def delete_group(self, e: ev.DeleteGroup) -> Deployment:
        st, gid = self.state, e.group_id
        if not st.group_exists(gid):
            raise group_missing(gid)
        d = self.start_deployment({a: None for a in st.apps_under(gid)}, e.force)
        prefix = gid.rstrip("/") + "/"
        for g in list(st.groups):
            if g == gid or g.startswith(prefix):
                del st.groups[g]
        self._save_meta()
        return d


#: The API's commands handled here (marathon/core.py composes the core's table).
COMMANDS: dict[type, Callable[[GroupCommands, Any], Any]] = {
    ev.CreateGroup: GroupCommands.create_group,
    ev.UpdateGroup: GroupCommands.update_group,
    ev.DryRun: GroupCommands.dry_run,
    ev.DeleteGroup: GroupCommands.delete_group,
}
