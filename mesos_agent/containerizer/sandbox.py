"""A task's sandbox on disk: its directories, the `latest` link, and the file-system flag
that keeps a burst of new sandboxes out of a block group that removals just emptied.
Blocking IO, no heavy imports: the launch helper (`launch_helper.py`) makes them."""
from __future__ import annotations

import array
import fcntl
import logging
import os

from mesos_agent import paths

log = logging.getLogger(__name__)


# Directories on the way to a sandbox can be crossed but not listed by a task's user; the
# sandbox itself is for its owner (the task's user, once launched) and its group only.
PASS_MODE, SANDBOX_MODE = 0o711, 0o750


def make_sandbox(sandbox: str) -> None:
    """Create the sandbox and point `runs/latest` at it (Mesos does the same). Blocking IO:
    a containerizer calls it where its launch does its other file work."""
    runs = os.path.dirname(sandbox)
    try:  # a task's first run: its executor dir, runs/ and the run, nothing else to check
        os.mkdir(os.path.dirname(runs), PASS_MODE)
        os.mkdir(runs, PASS_MODE)
        os.mkdir(sandbox, SANDBOX_MODE)
    except OSError:
        for root in paths.spread_roots(sandbox):
            _make_passable(root)
            mark_top_dir(root)
        _make_passable(runs)
        os.makedirs(sandbox, SANDBOX_MODE, exist_ok=True)
    link = paths.latest_link(sandbox)
    name = os.path.basename(sandbox)
    try:
        try:
            os.symlink(name, link)
        except FileExistsError:  # a later run: replace the link atomically
            tmp = f"{link}.tmp{os.getpid()}"
            if os.path.lexists(tmp):
                os.unlink(tmp)
            os.symlink(name, tmp)
            os.replace(tmp, link)
    except OSError as e:
        log.warning("cannot update %s: %s", link, e)


def _make_passable(path: str) -> None:
    """`os.makedirs` with PASS_MODE on every directory it makes, not only the last."""
    parent = os.path.dirname(path)
    if parent != path and not os.path.isdir(parent):
        _make_passable(parent)
    try:
        os.mkdir(path, PASS_MODE)
    except FileExistsError:
        pass


_FS_IOC_GETFLAGS, _FS_IOC_SETFLAGS = 0x80086601, 0x40086602  # linux/fs.h, 64-bit
_FS_TOPDIR_FL = 0x00020000


def mark_top_dir(path: str) -> bool:
    """Set ext2/3/4's "top of a directory hierarchy" flag (`chattr +T`) on `path`, so each
    directory made in it starts a fresh block group (the Orlov allocator) instead of
    joining its parent's. Sandboxes are made and removed by the thousand; on ext4 without
    a journal a new inode is not taken from those freed in the last minute (six minutes
    while the inode table is not yet written back), and each allocation walks past all of
    them, so a burst of launches in a group freshly emptied by removals cost 2.4 ms of
    kernel time per task against 0.08 ms in a fresh group (`benchmarks.launch_process`).
    False where the file system has no such flag (tmpfs, xfs, ...): nothing to do there."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        flags = array.array("l", [0])
        fcntl.ioctl(fd, _FS_IOC_GETFLAGS, flags, True)
        if not flags[0] & _FS_TOPDIR_FL:
            flags[0] |= _FS_TOPDIR_FL
            fcntl.ioctl(fd, _FS_IOC_SETFLAGS, flags, True)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
