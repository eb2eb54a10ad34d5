"""What the example command-line frameworks share: the user name and driver start-up."""
from __future__ import annotations

import argparse
import getpass

from frameworks.scheduler import Scheduler, SchedulerDriver
from mesos_common import flags, leader
from mesos_common.auth.flags import add_peer_security_flags, peer_security_from
from mesos_common.curve import CurveError
from mesos_common.messages import FrameworkInfo


def current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


def add_security_flags(p: flags.FlagParser) -> None:
    """--principal, --secret, --master_public_key."""
    add_peer_security_flags(p, principal_flags=True)


def make_driver(p: flags.FlagParser, sched: Scheduler, name: str, role: str,
                master: str, ns: argparse.Namespace | None = None) -> SchedulerDriver:
    """A driver for `sched` as the current user; a bad --master ends with a one-line error.
    With `ns`, its security flags (add_security_flags) apply."""
    info = FrameworkInfo(name=name, user=current_user(), roles=(role,))
    security = {}
    if ns is not None:
        cred = peer_security_from(ns, p).credential
        security = {"principal": cred.principal if cred else None,
                    "secret": cred.secret if cred else None,
                    "master_public_key": ns.master_public_key}
    try:
        return SchedulerDriver(sched, info, master, **security)
    except leader.DetectError as e:
        p.error(f"--master: {e}")
        raise  # not reached: error() exits
    except CurveError as e:
        p.error(str(e))
        raise
