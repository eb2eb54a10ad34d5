"""The agent's fetcher (Mesos's): puts a task's `CommandInfo.uris` into its sandbox before the
task starts, as `fetch_plan` decides, and logs what it does to the sandbox's `stderr`.

Downloads are aiohttp requests on the agent's loop (one GET per URI; its Content-Length
books the cache before the body is read); copies, unpacking, chmod and chown run in a small
pool of threads shared by all fetches, so a fetch never holds the loop, and tasks without
URIs never wait for one. Cached URIs (`cache`) are downloaded once per user into the cache
directory and unpacked or copied from there; a fetch of a URI whose download is under way
waits for it. The cache starts empty with each agent process (as Mesos's). Unpacking never
writes outside the sandbox: tar members go through tarfile's `data` filter (no absolute
paths, `..`, links out, devices or setuid bits), zip members are checked the same way, and
every destination's directory must resolve inside the sandbox.
"""
from __future__ import annotations

import asyncio
import gzip
import logging
import lzma
import os
import shutil
import stat
import tarfile
import time
import zipfile
import zlib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import aiohttp
import attrs

from mesos_agent.containerizer.base import LaunchError
from mesos_agent.containerizer.sandbox import make_sandbox
from mesos_agent.containerizer.users import Account, UnknownUser, account, chown_tree
from mesos_agent.fetch_plan import (
    FILE,
    GZ,
    TAR,
    ZIP,
    CacheBook,
    PlanError,
    Step,
    cache_file,
    plan_all,
)
from mesos_common.cgroups import agent_key
from mesos_common.messages import URI, TaskInfo

log = logging.getLogger(__name__)

WORKERS = 2  # threads for copies and unpacking, shared by every fetch
CHUNK = 1 << 16
STALL_TIMEOUT = 60.0  # Mesos's --fetcher_stall_timeout: a download that sends nothing so long fails
_UNPACK_ERRORS = (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, zlib.error,
                  lzma.LZMAError, ValueError)
T = TypeVar("T")


class FetchError(Exception):
    """A URI could not be fetched; the message names it. The task fails
    (REASON_FETCHER_FAILED)."""


def launched_as(task: TaskInfo, user: str | None) -> TaskInfo:
    """The task as its containerizer gets it: a process task's command carries the user it
    runs as (the agent core's choice: the command's, the framework's, or none)."""
    cmd = task.command
    if cmd is None or cmd.user == user or _is_docker(task):
        return task
    return attrs.evolve(task, command=attrs.evolve(cmd, user=user))


def _is_docker(task: TaskInfo) -> bool:
    return task.container is not None and task.container.type == "DOCKER"


def cache_dir_for(work_dir: str, flag: str) -> str:
    """The agent's cache directory: `<work_dir>/fetch`, or its own directory under
    `--fetcher_cache_dir` (agents sharing a host never share a cache)."""
    return os.path.join(flag, agent_key(work_dir)) if flag else os.path.join(work_dir, "fetch")


class FetchCancelled(Exception):
    """The task no longer wants its URIs (it was killed): the fetch stopped."""


class Fetcher:
    def __init__(self, cache_dir: str, cache_size: int, workers: int = WORKERS,
                 stall_timeout: float = STALL_TIMEOUT) -> None:
        self.cache_dir = cache_dir
        self.stall_timeout = stall_timeout
        self.book = CacheBook(max(0, cache_size))
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="fetcher")
        self._session: aiohttp.ClientSession | None = None
        self._downloads: dict[str, asyncio.Future[None]] = {}  # cache key -> its download
        self._cache_ready = False
        self._cache_lock = asyncio.Lock()

    async def fetch(self, task_id: str, uris: Iterable[URI], sandbox: str,
                    owner: Account | None = None,
                    wanted: Callable[[], bool] = lambda: True) -> None:
        """Fetch every URI into `sandbox` (created here), in order; then give the sandbox to
        `owner`. Raises FetchError naming the URI that failed; FetchCancelled once `wanted()`
        is false (asked between URIs and between chunks of a download)."""
        try:
            steps = plan_all(uris, owner.name if owner is not None else None)
        except PlanError as e:
            raise FetchError(f"Failed to fetch all URIs for container '{task_id}': {e}") from None
        await self._io(make_sandbox, sandbox)
        out = _SandboxLog(sandbox)
        try:
            for step in steps:
                if not wanted():
                    raise FetchCancelled(task_id)
                out.line(f"Fetching URI '{step.uri}'")
                try:
                    await self._fetch_one(step, sandbox, out, wanted)
                except FetchError as e:
                    why = str(e) if step.uri in str(e) else f"Failed to fetch '{step.uri}': {e}"
                    out.line(why)
                    raise FetchError(f"Failed to fetch all URIs for container '{task_id}': "
                                     f"{why}") from None
            if owner is not None and not owner.is_current():
                await self._io(chown_tree, sandbox, owner.uid, owner.gid)
            out.line(f"Fetched {len(steps)} URI(s) into the sandbox")
        except FetchCancelled:
            out.line("The task was killed: fetching stopped")
            raise
        finally:
            out.close()

    async def fetch_task(self, task: TaskInfo, sandbox: str,
                         wanted: Callable[[], bool] = lambda: True) -> None:
        """`fetch` a task's URIs (`launched_as`); a process task's sandbox becomes its
        user's. Raises LaunchError for an unknown user."""
        assert task.command is not None
        user = None if _is_docker(task) else task.command.user
        owner = None
        if user:
            try:
                owner = await self._io(account, user)
            except UnknownUser as e:
                raise LaunchError(str(e)) from None
        await self.fetch(task.task_id, task.command.uris, sandbox, owner, wanted)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------ one URI

    async def _fetch_one(self, step: Step, sandbox: str, out: _SandboxLog,
                         wanted: Callable[[], bool]) -> None:
        if step.cache_key is None or self.book.capacity == 0:
            path, _ = await self._download(step, lambda size: _target(sandbox, step.dest),
                                           wanted)
            await self._io(_finish, step, path, sandbox)
            return
        await self._fetch_cached(step, step.cache_key, sandbox, out, wanted)

    async def _fetch_cached(self, step: Step, key: str, sandbox: str, out: _SandboxLog,
                            wanted: Callable[[], bool]) -> None:
        while (pending := self._downloads.get(key)) is not None:
            await asyncio.shield(pending)
        cached = os.path.join(self.cache_dir, cache_file(key))
        if self.book.acquire(key, time.monotonic()) is not None:
            out.line(f"Using the cached copy of '{step.uri}'")
            try:
                await self._io(_deliver, step, cached, sandbox)
            finally:
                self.book.release(key)
            return
        done = asyncio.get_running_loop().create_future()
        self._downloads[key] = done  # before any await: later fetches of the key wait
        booked = False

        def choose(size: int | None) -> str:
            nonlocal booked
            got = None if size is None else self.book.reserve(key, size, time.monotonic())
            if got is None:
                told = "unknown" if size is None else f"{size} bytes"
                out.line(f"Not caching '{step.uri}' (size {told}, cache of "
                         f"{self.book.capacity} bytes): fetching it directly")
                return _target(sandbox, step.dest)
            for k in got.evict:
                _unlink(os.path.join(self.cache_dir, cache_file(k)))
            booked = True
            return cached + ".part"

        try:
            await self._prepare_cache()
            path, size = await self._download(step, choose, wanted)
            if not booked:
                await self._io(_finish, step, path, sandbox)
                return
            os.replace(path, cached)
            keep = self.book.downloaded(key, size)
            booked = False
            try:
                await self._io(_deliver, step, cached, sandbox)
            finally:
                if keep:
                    self.book.release(key)
                else:
                    _unlink(cached)
        finally:
            if booked:  # the download failed after its booking
                self.book.drop(key)
                _unlink(cached + ".part")
            del self._downloads[key]
            done.set_result(None)

    async def _prepare_cache(self) -> None:
        """Empty the cache directory once per agent process (its books start empty)."""
        async with self._cache_lock:
            if not self._cache_ready:
                await self._io(_reset_dir, self.cache_dir)
                self._cache_ready = True

    async def _download(self, step: Step, choose: Callable[[int | None], str],
                        wanted: Callable[[], bool]) -> tuple[str, int]:
        """Fetch `step`'s bytes to the path `choose(size)` picks once the size is known
        (None: the server did not say); (that path, bytes written)."""
        if step.scheme == FILE:
            try:
                size = (await self._io(os.stat, step.source)).st_size
            except OSError as e:
                raise FetchError(f"Failed to fetch '{step.uri}': {e.strerror or e}") from None
            path = choose(size)
            try:
                return path, await self._io(_copy, step.source, path)
            except OSError as e:
                raise FetchError(f"Failed to fetch '{step.uri}': {e.strerror or e}") from None
        try:
            async with self._client().get(step.source) as resp:
                if resp.status >= 400:
                    raise FetchError(f"Failed to fetch '{step.uri}': HTTP {resp.status} "
                                     f"{resp.reason or ''}".rstrip())
                path = choose(resp.content_length)
                return path, await _save(resp, path, wanted)
        except (TimeoutError, aiohttp.ClientError) as e:
            raise FetchError(f"Failed to fetch '{step.uri}': {type(e).__name__}: {e}") from None
        except OSError as e:
            raise FetchError(f"Failed to fetch '{step.uri}': {e.strerror or e}") from None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:  # bytes as sent: a .tar.gz stays gzipped
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.stall_timeout,
                                            sock_read=self.stall_timeout)
            self._session = aiohttp.ClientSession(timeout=timeout, auto_decompress=False)
        return self._session

    async def _io(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)


async def _save(resp: aiohttp.ClientResponse, path: str, wanted: Callable[[], bool]) -> int:
    """The response body into `path` (a fresh file); the bytes written. Writes of one chunk
    to the page cache are short enough for the loop. FetchCancelled once not `wanted()`."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o644)
    written = 0
    try:
        async for chunk in resp.content.iter_chunked(CHUNK):
            if not wanted():
                raise FetchCancelled(resp.url)
            view = memoryview(chunk)
            while view:
                n = os.write(fd, view)
                view, written = view[n:], written + n
    finally:
        os.close(fd)
    return written


class _SandboxLog:
    """The fetcher's lines, appended to the sandbox's stderr (the task's own output follows)."""

    def __init__(self, sandbox: str) -> None:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        self._fd = os.open(os.path.join(sandbox, "stderr"), flags, 0o644)

    def line(self, text: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        try:
            os.write(self._fd, f"{stamp} fetcher: {text}\n".encode(errors="replace"))
        except OSError as e:
            log.warning("cannot write the fetcher's log: %s", e)

    def close(self) -> None:
        os.close(self._fd)


# ---------------------------------------------------------------- blocking file work (threads)


def _target(sandbox: str, rel: str) -> str:
    """`rel` in the sandbox, its directories made; FetchError when they resolve outside it
    (a link an earlier URI unpacked, say)."""
    path = os.path.join(sandbox, rel)
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    root = os.path.realpath(sandbox)
    real = os.path.realpath(parent)
    if real != root and not real.startswith(root + os.sep):
        raise FetchError(f"output path '{rel}' leads out of the sandbox")
    return path


def _copy(src: str, dst: str) -> int:
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        shutil.copyfileobj(fin, fout, CHUNK)
        return fout.tell()


def _finish(step: Step, path: str, sandbox: str) -> None:
    """After a direct download: make it executable, or unpack it beside itself."""
    if step.executable:
        os.chmod(path, 0o755)
    elif step.archive is not None:
        _unpack(step, path, sandbox)


def _deliver(step: Step, cached: str, sandbox: str) -> None:
    """From the cache into the sandbox: unpacked (only its contents land), or copied."""
    if step.archive is not None:
        _unpack(step, cached, sandbox)
        return
    path = _target(sandbox, step.dest)
    _copy(cached, path)
    if step.executable:
        os.chmod(path, 0o755)


def _unpack(step: Step, archive: str, sandbox: str) -> None:
    into = os.path.dirname(_target(sandbox, step.dest))
    try:
        if step.archive == TAR:
            with tarfile.open(archive, "r:*") as tar:
                tar.extractall(into, filter="data")
        elif step.archive == ZIP:
            _unzip(archive, into)
        elif step.archive == GZ:
            out = _target(sandbox, step.unpacked_name)
            with gzip.open(archive, "rb") as fin, open(out, "wb") as fout:
                shutil.copyfileobj(fin, fout, CHUNK)
    except (FetchError, *_UNPACK_ERRORS) as e:
        raise FetchError(f"Failed to extract '{step.uri}': {e}") from None


def _unzip(archive: str, into: str) -> None:
    """Every member inside `into` (else nothing is written), with its permission bits."""
    root = os.path.realpath(into)
    with zipfile.ZipFile(archive) as z:
        members = z.infolist()
        for m in members:
            target = os.path.realpath(os.path.join(root, m.filename))
            if target != root and not target.startswith(root + os.sep):
                raise FetchError(f"zip member '{m.filename}' leads out of the sandbox")
        for m in members:
            path = z.extract(m, root)
            mode = (m.external_attr >> 16) & 0o777
            if mode and not m.is_dir() and not os.path.islink(path):
                os.chmod(path, mode & ~(stat.S_IWGRP | stat.S_IWOTH))


def _reset_dir(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path, exist_ok=True)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
