"""What the example command-line frameworks share: the user name and driver start-up."""
from __future__ import annotations

import getpass

from frameworks.scheduler import Scheduler, SchedulerDriver
from mesos_common import flags, leader
from mesos_common.messages import FrameworkInfo


def current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


def make_driver(p: flags.FlagParser, sched: Scheduler, name: str, role: str,
                master: str) -> SchedulerDriver:
    """A driver for `sched` as the current user; a bad --master ends with a one-line error."""
    info = FrameworkInfo(name=name, user=current_user(), roles=(role,))
    try:
        return SchedulerDriver(sched, info, master)
    except leader.DetectError as e:
        p.error(f"--master: {e}")
        raise  # not reached: error() exits
