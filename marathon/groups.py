"""Groups (mixed into MarathonService): trees of apps addressed by id prefix.

Apps are stored flat by id; a group is the set of apps under its path, plus an explicit
record (so an empty group exists, and has dependencies and a version). A group change is
one deployment covering every app it adds, changes or removes.
"""
from __future__ import annotations

from typing import Any

from marathon import model
from marathon.errors import ApiError, group_missing
from marathon.model import ValidationFailed
from marathon.planner import plan


class GroupsMixin:
    apps: dict[str, dict[str, Any]]
    groups: dict[str, dict[str, Any]]

    def group_exists(self, gid: str) -> bool:
        prefix = gid.rstrip("/") + "/"
        return gid == "/" or gid in self.groups or any(a.startswith(prefix) for a in self.apps)

    def apps_under(self, gid: str) -> list[str]:
        prefix = gid.rstrip("/") + "/"
        return [a for a in self.apps if a.startswith(prefix)]

    def _flatten(self, raw: Any, gid: str, path: str,
                 out: dict[str, Any], groups: dict[str, Any]) -> None:
        """Collect app definitions (ids resolved against their group) from a GroupUpdate."""
        if not isinstance(raw, dict):
            raise ValidationFailed([{"path": path or "/", "errors": ["error.expected.jsobject"]}])
        unknown = set(raw) - {"id", "apps", "groups", "dependencies", "version", "scaleBy",
                              "enforceRole", "pods"}
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
                    self._flatten(item, cid, where, out, groups)
                    continue
                try:
                    out[cid] = model.validate(dict(item, id=cid), gid)
                except ValidationFailed as e:
                    raise ValidationFailed([{"path": where + (d["path"] if d["path"] != "/"
                                                              else ""), "errors": d["errors"]}
                                            for d in e.details]) from None

    def _group_target(self, gid: str, raw: Any, replace: bool) -> tuple[dict, dict]:
        new: dict[str, Any] = {}
        groups: dict[str, Any] = {}
        self._flatten(raw, gid, "", new, groups)
        target: dict[str, Any] = {}
        version = self.new_version()  # type: ignore[attr-defined]
        if replace and "apps" in raw:
            for aid in self.apps_under(gid):
                if aid not in new and aid.rsplit("/", 1)[0] in groups:
                    target[aid] = None
        for aid, doc in new.items():
            cur = self.apps.get(aid)
            if cur is not None:
                strip = {k: v for k, v in cur.items() if k not in ("version", "versionInfo")}
                if not model.needs_restart(strip, doc) and strip == doc:
                    continue
            scale_only = cur is not None and not model.needs_restart(cur, doc)
            target[aid] = self._versioned(doc, cur, version, scale_only)  # type: ignore
        for g in groups:
            groups[g]["version"] = version
        return target, groups

    def create_group(self, gid: str, raw: Any, force: bool) -> Any:
        if isinstance(raw, dict) and isinstance(raw.get("id"), str):
            gid = model.normalize_id(raw["id"], gid)
        if gid == "/" or self.group_exists(gid):
            raise ApiError(409, {"message": f"Group {gid} is already created. Use PUT to "
                                            "change this group."})
        if gid in self.apps:
            raise ApiError(409, {"message": f"An app with id [{gid}] already exists."})
        target, groups = self._group_target(gid, raw, replace=False)
        for aid in target:
            if aid in self.apps:
                raise ApiError(409, {"message": f"An app with id [{aid}] already exists."})
        return self._commit_groups(target, groups, force)

    def _commit_groups(self, target: dict[str, Any], groups: dict[str, Any],
                       force: bool) -> Any:
        d = self.start_deployment(target, force)  # type: ignore[attr-defined]
        self.groups.update(groups)
        self._save_meta()  # type: ignore[attr-defined]
        return d

    def update_group(self, gid: str, raw: Any, force: bool) -> Any:
        if isinstance(raw, dict) and set(raw) <= {"scaleBy", "id"} and "scaleBy" in raw:
            return self.scale_group(gid, raw["scaleBy"], force)
        if isinstance(raw, dict) and "version" in raw:
            return self.rollback_group(gid, raw["version"], force)
        target, groups = self._group_target(gid, raw, replace=True)
        return self._commit_groups(target, groups, force)

    def group_versions(self, gid: str) -> list[str]:
        if not self.group_exists(gid):
            raise group_missing(gid)
        prefix = gid.rstrip("/") + "/"
        return sorted((v for v, snap in self.root_history.items()  # type: ignore
                       if gid == "/" or any(a.startswith(prefix) for a in snap)), reverse=True)

    def rollback_group(self, gid: str, version: Any, force: bool) -> Any:
        """Put every app under `gid` back to what it was in root version `version`."""
        snap = self.root_history.get(version) if isinstance(version, str) else None  # type: ignore
        if snap is None:
            raise ApiError(404, {"message": f"Group '{gid}' does not exist in version {version}"})
        prefix = gid.rstrip("/") + "/"
        under = lambda a: gid == "/" or a.startswith(prefix)  # noqa: E731
        new_version = self.new_version()  # type: ignore[attr-defined]
        target: dict[str, Any] = {a: None for a in self.apps if under(a) and a not in snap}
        for aid, v in snap.items():
            old = self.versions.get(f"{aid}@{v}")  # type: ignore[attr-defined]
            cur = self.apps.get(aid)
            if not under(aid) or old is None or (cur is not None and cur["version"] == v):
                continue
            doc = {k: x for k, x in old.items() if k not in ("version", "versionInfo")}
            scale_only = cur is not None and not model.needs_restart(cur, old)
            target[aid] = self._versioned(doc, cur, new_version, scale_only)  # type: ignore
        return self.start_deployment(target, force)  # type: ignore[attr-defined]

    def dry_run(self, gid: str, raw: Any) -> list[dict[str, Any]]:
        """The steps PUT would deploy, without deploying (`?dryRun=true`)."""
        target, _ = self._group_target(gid, raw, replace=True)
        original = {a: self.apps[a] for a in target if a in self.apps}
        new = {a: d for a, d in target.items() if d is not None}
        return [{"actions": [a.to_json() for a in step]} for step in plan(original, new)]

    def scale_group(self, gid: str, factor: Any, force: bool) -> Any:
        if not self.group_exists(gid):
            raise group_missing(gid)
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or factor < 0:
            raise ValidationFailed([{"path": "/scaleBy", "errors": ["must be a number >= 0"]}])
        version = self.new_version()  # type: ignore[attr-defined]
        target = {}
        for aid in self.apps_under(gid):
            cur = self.apps[aid]
            n = int(round(cur["instances"] * factor))
            target[aid] = self._versioned(dict(cur, instances=n), cur,  # type: ignore
                                          version, scale_only=True)
        return self.start_deployment(target, force)  # type: ignore[attr-defined]

    def delete_group(self, gid: str, force: bool) -> Any:
        if not self.group_exists(gid):
            raise group_missing(gid)
        d = self.start_deployment({a: None for a in self.apps_under(gid)},  # type: ignore
                                  force)
        prefix = gid.rstrip("/") + "/"
        for g in list(self.groups):
            if g == gid or g.startswith(prefix):
                del self.groups[g]
        self._save_meta()  # type: ignore[attr-defined]
        return d
