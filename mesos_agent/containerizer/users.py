"""The user a task runs as (Mesos `CommandInfo.user`, else `FrameworkInfo.user`, with
`--switch_user`): its ids looked up on this host, and its sandbox handed over to it.
Blocking lookups and file work: the launch helper and the fetcher's threads call these."""
from __future__ import annotations

import os
import pwd
import stat

from attrs import frozen


class UnknownUser(LookupError):
    """The task's user does not exist here: it fails rather than run as someone else."""


@frozen
class Account:
    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]  # supplementary groups (the primary one included, as initgroups)
    home: str = "/"

    def is_current(self) -> bool:
        """Would switching to it change nothing (the agent already runs as it)?"""
        return self.uid == os.geteuid() and self.gid == os.getegid()


def account(name: str) -> Account:
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        raise UnknownUser(f"Failed to get user information for '{name}': no such user "
                          "on this agent") from None
    try:
        groups = tuple(os.getgrouplist(name, pw.pw_gid))
    except OSError:
        groups = (pw.pw_gid,)
    return Account(name, pw.pw_uid, pw.pw_gid, groups, pw.pw_dir or "/")


def chown_tree(path: str, uid: int, gid: int) -> None:
    """Give `path` and everything under it to uid:gid (links themselves, never followed)."""
    os.chown(path, uid, gid, follow_symlinks=False)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)


def closed_ancestor(path: str) -> str | None:
    """The first directory on the way to `path` that other users cannot pass through (no
    search bit for others), if any: a task switched to another user could not reach its
    sandbox under it by path (`$MESOS_SANDBOX`, `getcwd()`)."""
    path = os.path.abspath(path)
    while True:
        try:
            if not os.stat(path).st_mode & stat.S_IXOTH:
                return path
        except FileNotFoundError:
            pass
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path = parent
