"""The API's commands on apps, tasks, deployments, the queue and event subscriptions.

Each command validates first, then writes through `start_deployment`, so a refused request
changes nothing; the runtime commits before the answer goes out.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marathon import core_events as ev
from marathon import model
from marathon.core_base import CoreBase
from marathon.core_state import Deployment
from marathon.errors import ApiError, app_missing
from marathon.model import ValidationFailed


def definition(raw: Any, app_id: str | None = None, current: dict[str, Any] | None = None,
               partial: bool = True, base: str = "/") -> dict[str, Any]:
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


class AppCommands(CoreBase):
    def _app(self, app_id: str) -> dict[str, Any]:
        app = self.state.apps.get(app_id)
        if app is None:
            raise app_missing(app_id)
        return app

    def create_app(self, e: ev.CreateApp) -> tuple[dict[str, Any], Deployment]:
        st = self.state
        doc = definition(e.raw)
        if doc["id"] in st.apps:
            raise ApiError(409, {"message": f"An app with id [{doc['id']}] already exists."})
        if doc["id"] in st.groups:
            raise ApiError(409, {"message": f"A group with id [{doc['id']}] already exists."})
        app = self._versioned(doc, None, self.new_version())
        return app, self.start_deployment({app["id"]: app}, e.force)

    def update_app(self, e: ev.UpdateApp) -> tuple[bool, Deployment]:
        """Create when missing (True), else update (False); `{"version"}` rolls back."""
        app_id, raw = e.app_id, e.raw
        current = self.state.apps.get(app_id)
        if isinstance(raw, dict) and "version" in raw and set(raw) - {"version", "id"}:
            raise ApiError(400, {"message": "The 'version' field may only be combined with "
                                            "the 'id' field."})
        if isinstance(raw, dict) and "version" in raw:
            old = self.state.versions.get(f"{app_id}@{raw['version']}")
            if old is None:
                raise ApiError(404, {"message": f"App '{app_id}' does not exist in version "
                                                f"{raw['version']}"})
            doc = {k: v for k, v in old.items() if k not in ("version", "versionInfo")}
        else:
            doc = definition(raw, app_id, current, e.partial)
        scale_only = current is not None and not model.needs_restart(current, doc)
        app = self._versioned(doc, current, self.new_version(), scale_only)
        return current is None, self.start_deployment({app_id: app}, e.force)

    def update_apps(self, e: ev.UpdateApps) -> Deployment:
        if not isinstance(e.raws, list):
            raise ValidationFailed([{"path": "/", "errors": ["error.expected.jsarray"]}],
                                   "Invalid JSON")
        target: dict[str, Any] = {}
        version = self.new_version()
        for i, raw in enumerate(e.raws):
            try:
                if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
                    raise ValidationFailed([{"path": "/id", "errors": ["error.path.missing"]}])
                cur = self.state.apps.get(model.normalize_id(raw["id"]))
                doc = definition(raw, None, cur, e.partial)
            except ValidationFailed as err:
                raise ValidationFailed([{"path": f"({i}){d['path']}", "errors": d["errors"]}
                                        for d in err.details]) from None
            scale_only = cur is not None and not model.needs_restart(cur, doc)
            target[doc["id"]] = self._versioned(doc, cur, version, scale_only)
        return self.start_deployment(target, e.force)

    def delete_app(self, e: ev.DeleteApp) -> Deployment:
        self._app(e.app_id)
        return self.start_deployment({e.app_id: None}, e.force)

    def restart_app(self, e: ev.RestartApp) -> Deployment:
        app = dict(self._app(e.app_id), version=self.new_version())
        app["versionInfo"] = {"lastScalingAt": app["version"],
                              "lastConfigChangeAt": app["version"]}
        return self.start_deployment({e.app_id: app}, e.force, restart=[e.app_id])

    def scale_app(self, e: ev.ScaleApp) -> Deployment:
        self._app(e.app_id)
        return self.update_app(ev.UpdateApp(e.app_id, {"instances": max(0, e.instances)},
                                            e.force))[1]

    def kill_tasks(self, e: ev.KillTasks) -> tuple[list[Any], Deployment | None]:
        """Kill the given tasks; with scale, lower each app's instances by its kills."""
        st = self.state
        killed = [st.tasks[i] for i in e.ids if i in st.tasks]
        fresh = [t for t in killed if t.active and not t.killing]  # not already dying
        if not e.scale:
            for t in killed:
                self.kill(t.id)
            return killed, None
        target: dict[str, Any] = {}
        version = self.new_version()
        for aid in {t.app_id for t in killed}:
            cur = st.apps.get(aid)
            if cur is None:
                continue
            n = len([t for t in fresh if t.app_id == aid])
            target[aid] = self._versioned(dict(cur, instances=max(0, cur["instances"] - n)),
                                          cur, version, scale_only=True)
        d = self.start_deployment(target, e.force) if target else None
        for t in killed:
            self.kill(t.id)
        if d is not None:
            self.tick()
        return killed, d

    def cancel_deployment(self, e: ev.CancelDeployment) -> Deployment | None:
        """Force: just drop it. Otherwise roll the affected apps back in a new deployment."""
        st = self.state
        d = st.deployments.get(e.deployment_id)
        if d is None:
            raise ApiError(404, {"message": f"DeploymentPlan {e.deployment_id} does not exist"})
        self._finish(d, ok=False, reason="canceled")
        if e.force:
            return None
        target: dict[str, dict[str, Any] | None] = {}
        version = self.new_version()
        for aid in d.affected:
            old, cur = d.original.get(aid), st.apps.get(aid)
            target[aid] = None if old is None else self._changed(old, cur, version)
        return self.start_deployment(target, force=True)

    def reset_delay(self, e: ev.ResetDelay) -> None:
        st = self.state
        if e.app_id not in st.queued_since and e.app_id not in st.backoffs:
            raise ApiError(404, {"message": f"Application {e.app_id} not found in tasks queue."})
        st.backoffs.pop(e.app_id, None)
        self.tick()

    def subscribe(self, e: ev.Subscribe) -> None:
        if e.url not in self.state.subscriptions:
            self.state.subscriptions.append(e.url)
            self._save_meta()

    def unsubscribe(self, e: ev.Unsubscribe) -> None:
        if e.url in self.state.subscriptions:
            self.state.subscriptions.remove(e.url)
            self._save_meta()


#: The API's commands handled here (marathon/core.py composes the core's table).
COMMANDS: dict[type, Callable[[AppCommands, Any], Any]] = {
    ev.CreateApp: AppCommands.create_app,
    ev.UpdateApp: AppCommands.update_app,
    ev.UpdateApps: AppCommands.update_apps,
    ev.DeleteApp: AppCommands.delete_app,
    ev.RestartApp: AppCommands.restart_app,
    ev.ScaleApp: AppCommands.scale_app,
    ev.KillTasks: AppCommands.kill_tasks,
    ev.CancelDeployment: AppCommands.cancel_deployment,
    ev.ResetDelay: AppCommands.reset_delay,
    ev.Subscribe: AppCommands.subscribe,
    ev.Unsubscribe: AppCommands.unsubscribe,
}
