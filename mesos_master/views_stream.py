"""/master/state as a stream of JSON text pieces, so the runtime can serve 100k tasks without
stalling its event loop (issue #7: a 35 MB document built and dumped in one go blocked the
master for half a minute and heartbeats with it).

`state_pieces` is a pure generator: the runtime writes each piece and lets the loop run in
between. It takes snapshots (lists of records) before it walks them, so the core may change
while a request is being served; each task is rendered as it is when reached (the document is
not one atomic snapshot, as it is in Mesos; every part of it is consistent on its own). Tasks,
the bulk of the document, are rendered by `task_text` straight to JSON text, with the resource
maps of the (shared) Resources objects cached: about 2.5 times faster than building dicts for
`json.dumps`. The document equals `views.state_json` (tests hold them to it).
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from json.encoder import encode_basestring_ascii as _q  # C: a quoted, escaped JSON string
from typing import Any

from attrs import frozen

from mesos_common.auth.acls import Acls
from mesos_common.resources import Resources
from mesos_master import views
from mesos_master.core import Master
from mesos_master.state import Framework, Task

CHUNK = 250  # records per piece: a few ms of work between two turns of the event loop
_RES_CACHE_SIZE = 4096
_res_cache: dict[Resources, str] = {}


def _res_text(res: Resources) -> str:
    text = _res_cache.get(res)
    if text is None:
        if len(_res_cache) >= _RES_CACHE_SIZE:
            _res_cache.clear()
        text = _res_cache[res] = json.dumps(res.to_map())
    return text


def _num(x: float) -> str:
    """What json.dumps writes for a number, without its per-call overhead."""
    if type(x) is float and math.isfinite(x):
        return float.__repr__(x)
    return json.dumps(x)


def _statuses_text(task: Task) -> str:
    h = task.history
    parts = []
    for i in range(0, len(h), 3):
        healthy = h[i + 2]
        extra = "" if healthy is None else f',"healthy":{"true" if healthy else "false"}'
        parts.append(f'{{"state":{_q(h[i])},"timestamp":{_num(h[i + 1])}{extra}}}')
    return "[" + ",".join(parts) + "]"


def task_text(task: Task) -> str:
    """One task of /master/state as JSON text (the same object as views._task_json)."""
    info = task.info
    labels = ",".join(f'{{"key":{_q(k)},"value":{_q(v)}}}' for k, v in sorted(info.labels.items()))
    container = ""
    if info.container is not None:
        container = ',"container":' + json.dumps(views.container_json(info.container))
    return (f'{{"id":{_q(info.task_id)},"name":{_q(info.name)},'
            f'"framework_id":{_q(task.framework_id)},"executor_id":"",'
            f'"slave_id":{_q(task.agent_id)},"state":{_q(task.state)},'
            f'"resources":{_res_text(info.resources)},"role":{_q(task.role)},'
            f'"statuses":{_statuses_text(task)},"labels":[{labels}]{container}}}')


def _list(items: list[Any], render: Any) -> Iterator[str]:
    """A JSON array of `items`, CHUNK at a time."""
    yield "["
    for start in range(0, len(items), CHUNK):
        sep = "," if start else ""
        yield sep + ",".join(render(x) for x in items[start:start + CHUNK])
    yield "]"


def _sum_chunked(tasks: list[Task], out: list[Resources]) -> Iterator[str]:
    """Sum the resources of live tasks into out[0], yielding (empty pieces) between chunks."""
    total = Resources()
    for start in range(0, len(tasks), CHUNK * 4):
        for t in tasks[start:start + CHUNK * 4]:
            if not t.resources_recovered:
                total = total + t.resources
        yield ""
    out.append(total)


@frozen
class Viewer:
    """What a principal may see (the `view_frameworks` / `view_tasks` ACLs, whose object is
    the framework's user and the task's user); None where everything is visible."""

    principal: str | None
    acls: Acls

    @classmethod
    def of(cls, principal: str | None, acls: Acls) -> Viewer | None:
        return None if acls.empty else cls(principal, acls)

    def framework(self, fw: Framework) -> bool:
        return self.acls.allowed(self.principal, "view_frameworks", fw.info.user or None)

    def tasks(self, fw: Framework, tasks: list[Task]) -> list[Task]:
        def user(t: Task) -> str | None:
            cmd = t.info.command
            return (cmd.user if cmd is not None else None) or fw.info.user or None
        return [t for t in tasks if self.acls.allowed(self.principal, "view_tasks", user(t))]


def _framework_pieces(master: Master, fw: Framework, executors: list[dict[str, Any]],
                      viewer: Viewer | None = None) -> Iterator[str]:
    tasks = [t for _, t in sorted(fw.tasks.items())]  # ids are unique: string compares only
    unreachable, completed = list(fw.unreachable_tasks.values()), list(fw.completed_tasks)
    if viewer is not None:
        tasks, unreachable = viewer.tasks(fw, tasks), viewer.tasks(fw, unreachable)
        completed = viewer.tasks(fw, completed)
    used: list[Resources] = []
    yield from _sum_chunked(tasks, used)
    head = views.framework_head(master, fw, used[0], executors)
    text = json.dumps(head)
    yield text[:-1] + ',"tasks":'
    yield from _list(tasks, task_text)
    yield ',"unreachable_tasks":'
    yield from _list(unreachable, task_text)
    yield ',"completed_tasks":'
    yield from _list(completed, task_text)
    yield "}"


def _frameworks(master: Master, fws: list[Framework], viewer: Viewer | None = None
                ) -> Iterator[str]:
    if viewer is not None:
        fws = [fw for fw in fws if viewer.framework(fw)]
    executors = views.executors_by_framework(master) if fws else {}
    yield "["
    for i, fw in enumerate(fws):
        if i:
            yield ","
        yield from _framework_pieces(master, fw, executors.get(fw.id, []), viewer)
    yield "]"


def state_pieces(master: Master, now: float, flags: Mapping[str, str],
                 viewer: Viewer | None = None) -> Iterator[str]:
    """The /master/state document (views.state_json) as pieces of JSON text."""
    head = views.state_head(master, now, flags)
    agents = [a for _, a in sorted(master.agents.items())]
    frameworks = [f for _, f in sorted(master.frameworks.items())]
    completed = list(master.completed_frameworks)
    yield json.dumps(head)[:-1] + ',"slaves":'
    yield from _list(agents, lambda a: json.dumps(views.agent_json(a)))
    yield ',"frameworks":'
    yield from _frameworks(master, frameworks, viewer)
    yield ',"completed_frameworks":'
    yield from _frameworks(master, completed, viewer)
    yield "}"


def tasks_pieces(master: Master, limit: int, offset: int, descending: bool,
                 viewer: Viewer | None = None) -> Iterator[str]:
    """GET /master/tasks (Mesos' v0 endpoint): `{"tasks": [...]}`, every framework's live,
    unreachable and completed tasks ordered by id, `offset` then at most `limit` of them."""
    tasks: list[Task] = []
    for fw in sorted(master.frameworks.values(), key=lambda f: f.id):
        mine = [*fw.tasks.values(), *fw.unreachable_tasks.values(), *fw.completed_tasks]
        tasks += mine if viewer is None else viewer.tasks(fw, mine)
    tasks.sort(key=lambda t: t.id, reverse=descending)
    yield '{"tasks":'
    yield from _list(tasks[offset:offset + limit], task_text)
    yield "}"
