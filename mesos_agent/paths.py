"""The agent's on-disk layout in one place (cf. Mesos src/slave/paths.cpp). Pure string math.

    <work_dir>/slaves/<agent>/frameworks/<fw>/executors/<task>/runs/<run>     sandbox
    <work_dir>/slaves/<agent>/frameworks/<fw>/executors/<task>/runs/latest    -> newest run
    <work_dir>/meta/slaves/<agent>/frameworks/<fw>/executors/<task>/pid  (while it runs)

A command task is its own executor, so the executor id is the task id, as in Mesos. The
`pid` file holds the task's session leader (= process group id); `mesos_common.daemons`
and a later recovery feature find tasks through these files.
"""
from __future__ import annotations

import posixpath

SANDBOXES = "slaves"
META = "meta"
PID_FILE = "pid"


def agent_dir(work_dir: str, agent_id: str) -> str:
    return posixpath.join(work_dir, SANDBOXES, agent_id)


def executor_dir(work_dir: str, agent_id: str, framework_id: str, executor_id: str) -> str:
    return posixpath.join(agent_dir(work_dir, agent_id), "frameworks", framework_id,
                          "executors", executor_id)


def sandbox_dir(work_dir: str, agent_id: str, framework_id: str, executor_id: str,
                run_id: str) -> str:
    return posixpath.join(executor_dir(work_dir, agent_id, framework_id, executor_id),
                          "runs", run_id)


def latest_link(sandbox: str) -> str:
    """The `runs/latest` symlink next to a sandbox."""
    return posixpath.join(posixpath.dirname(sandbox), "latest")


def pid_file(work_dir: str, sandbox: str, task_id: str) -> str:
    """Where the task's pid is written: its executor directory's mirror under `meta/` (not
    the run's: a task runs once at a time, and a launch then creates one directory here,
    not three - each costs the agent an inode allocation), or, for a sandbox outside
    `<work_dir>/slaves` (tests), `meta/tasks/<task_id>/pid`."""
    root = posixpath.join(work_dir, SANDBOXES)
    norm_root, norm_box = posixpath.normpath(root), posixpath.normpath(sandbox)
    if posixpath.commonpath([norm_root, norm_box]) == norm_root and norm_box != norm_root:
        rel = posixpath.relpath(norm_box, posixpath.normpath(work_dir))
        runs = posixpath.dirname(rel)
        if posixpath.basename(runs) == "runs":
            rel = posixpath.dirname(runs)
        return posixpath.join(work_dir, META, rel, PID_FILE)
    return posixpath.join(work_dir, META, "tasks", task_id, PID_FILE)


def sandbox_roots(work_dir: str) -> list[str]:
    """Directories the files API may serve from."""
    return [posixpath.join(work_dir, SANDBOXES)]
