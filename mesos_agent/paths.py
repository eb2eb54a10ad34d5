"""The agent's on-disk layout in one place (cf. Mesos src/slave/paths.cpp). Pure string math.

    <work_dir>/slaves/<agent>/frameworks/<fw>/executors/<task>/runs/<run>     sandbox
    <work_dir>/slaves/<agent>/frameworks/<fw>/executors/<task>/runs/latest    -> newest run
    <work_dir>/meta/checkpoint/...                                           checkpoint.py
    <work_dir>/meta/launched                           the launch log (mesos_common.launch_log)
    <work_dir>/meta/gpus/<task>                        its GPUs (containerizer/gpu.py)

A command task is its own executor, so the executor id is the task id, as in Mesos; a custom
executor's sandbox (its id in place of <task>) is also its tasks'. The
launch log names each task's session leader (= process group id) and its start time, for
recovery, `mesos_common.daemons` and tests.
"""
from __future__ import annotations

import posixpath

SANDBOXES = "slaves"
META = "meta"


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


def sandbox_roots(work_dir: str) -> list[str]:
    """Directories the files API may serve from."""
    return [posixpath.join(work_dir, SANDBOXES)]


def spread_roots(sandbox: str) -> list[str]:
    """The directories whose subdirectories should each start a fresh block group: the
    sandbox root (one per agent id) and an agent's `frameworks` (one per framework), so a
    run's sandboxes land away from the inodes the last run freed (see
    `containerizer.sandbox.mark_top_dir`). Empty for a path outside the layout above."""
    parts = sandbox.rstrip("/").split("/")
    if len(parts) < 9 or parts[-2] != "runs" or parts[-4] != "executors" \
            or parts[-6] != "frameworks" or parts[-8] != SANDBOXES:
        return []
    return ["/".join(parts[:-7]), "/".join(parts[:-5])]
