"""What fetching a task's URIs means, decided without IO (the fetcher, `fetcher.py`, does it).

`plan` turns one `CommandInfo.URI` into a `Step`: where the bytes come from (HTTP(S), or a
local file: `file://` or a plain path), where they land in the sandbox (the URI's base name,
or its `output_file`, never outside the sandbox), how to unpack them (tar with any of its
compressions, zip, gzip; Mesos's rule: by extension, unless `executable`), and the cache key
when `cache` is set (user and URI, as Mesos: each user has its own cached copies).

`CacheBook` is the fetcher cache's bookkeeping (Mesos's fetcher cache): entries keyed by
cache key with their sizes, a total capped at the cache size, eviction of the least recently
used entries that no fetch is using, and no entry at all when a download cannot fit (the
fetch then bypasses the cache).
"""
from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Iterable

from attrs import define, field, frozen
from yarl import URL

from mesos_common.messages import URI

HTTP, FILE = "http", "file"
TAR, ZIP, GZ = "tar", "zip", "gz"
# Longest suffix first: "x.tar.gz" is a tarball, not a gzipped file.
ARCHIVES = ((".tar.gz", TAR), (".tar.bz2", TAR), (".tar.xz", TAR), (".tgz", TAR),
            (".tbz2", TAR), (".txz", TAR), (".tar", TAR), (".zip", ZIP), (".gz", GZ))


class PlanError(ValueError):
    """The URI cannot be fetched as given (unsupported scheme, no file name, a path out of
    the sandbox); the message names it."""


@frozen
class Step:
    """One URI to fetch: `source` is a URL (HTTP) or a local path (FILE); `dest` a path
    relative to the sandbox; `archive` the format to unpack into dest's directory."""

    uri: str
    scheme: str
    source: str
    dest: str
    archive: str | None = None
    executable: bool = False
    cache_key: str | None = None

    @property
    def unpacked_name(self) -> str:
        """Where a gzipped file goes: dest without its `.gz`."""
        return self.dest[:-3] if self.dest.endswith(".gz") else self.dest + ".out"


def archive_kind(name: str) -> str | None:
    lower = name.lower()
    return next((kind for suffix, kind in ARCHIVES if lower.endswith(suffix)), None)


def cache_key(user: str | None, uri: str) -> str:
    return f"{user or ''}\0{uri}"


def cache_file(key: str) -> str:
    """The cache file's name for a key (a digest: URIs are no file names)."""
    return hashlib.sha256(key.encode()).hexdigest()


def _source(value: str) -> tuple[str, str, str]:
    """(scheme, source, the path whose base name names the file)."""
    try:
        url = URL(value)
    except ValueError as e:
        raise PlanError(f"URI '{value}' is not a URI ({e})") from None
    if url.scheme in ("http", "https"):
        if not url.host:
            raise PlanError(f"URI '{value}' has no host")
        return HTTP, value, url.path
    if url.scheme == "file":
        if url.host not in (None, "", "localhost"):
            raise PlanError(f"URI '{value}' names another host ({url.host})")
        return FILE, url.path, url.path
    if url.scheme == "" and value.startswith("/"):
        return FILE, value, value
    if url.scheme == "":
        raise PlanError(f"URI '{value}' is a relative path (give an absolute path or a URL)")
    raise PlanError(f"URI '{value}': unsupported scheme '{url.scheme}' (http, https, file or "
                    "a plain absolute path)")


def _relative(value: str, path: str) -> str:
    """`path` as a normalised path inside the sandbox; PlanError when it would leave it."""
    norm = posixpath.normpath(path) if path else ""
    if not norm or norm in (".", "/") or posixpath.isabs(norm) or norm.split("/")[0] == "..":
        raise PlanError(f"URI '{value}': output file '{path}' is not a path inside the sandbox")
    return norm


def plan(uri: URI, user: str | None) -> Step:
    scheme, source, named = _source(uri.value)
    if uri.output_file:
        dest = _relative(uri.value, uri.output_file)
    else:
        base = posixpath.basename(named.rstrip("/")) if scheme == FILE else \
            posixpath.basename(named)
        if not base or base in (".", ".."):
            raise PlanError(f"URI '{uri.value}' names no file (give an output file)")
        dest = _relative(uri.value, base)
    archive = None if uri.executable or not uri.extract else archive_kind(dest)
    return Step(uri.value, scheme, source, dest, archive, uri.executable,
                cache_key(user, uri.value) if uri.cache else None)


def plan_all(uris: Iterable[URI], user: str | None) -> list[Step]:
    return [plan(u, user) for u in uris]


# ---------------------------------------------------------------- the cache's books


@define
class Entry:
    size: int
    last_used: float
    users: int = 0  # fetches downloading it or copying/unpacking from it
    ready: bool = False  # downloaded; False while the first fetch is still downloading


@frozen
class Reserved:
    """Room was made for a new entry: delete these entries' files first."""

    evict: tuple[str, ...]


@define
class CacheBook:
    capacity: int
    entries: dict[str, Entry] = field(factory=dict)

    def used(self) -> int:
        return sum(e.size for e in self.entries.values())

    def acquire(self, key: str, now: float) -> Entry | None:
        """A ready entry, now in use (until `release`); None when absent or downloading."""
        e = self.entries.get(key)
        if e is None or not e.ready:
            return None
        e.users += 1
        e.last_used = now
        return e

    def release(self, key: str) -> None:
        e = self.entries.get(key)
        if e is not None and e.users > 0:
            e.users -= 1

    def reserve(self, key: str, size: int, now: float) -> Reserved | None:
        """Book `size` bytes for a download of `key` (in use by its downloader), evicting
        idle entries least recently used first; None (nothing changed) when it cannot fit."""
        assert key not in self.entries, f"{key!r} is already in the cache"
        if size < 0 or size > self.capacity:
            return None
        free = self.capacity - self.used()
        idle = sorted((e.last_used, k) for k, e in self.entries.items()
                      if e.users == 0 and e.ready)
        evict: list[str] = []
        for _, k in idle:
            if free >= size:
                break
            free += self.entries[k].size
            evict.append(k)
        if free < size:
            return None
        for k in evict:
            del self.entries[k]
        self.entries[key] = Entry(size, now, users=1)
        return Reserved(tuple(evict))

    def downloaded(self, key: str, size: int) -> bool:
        """The download of `key` ended with `size` bytes: ready (and still in use by its
        downloader). False when it came out larger than booked and would break the cap:
        the entry is dropped (delete its file once delivered, as Mesos does)."""
        e = self.entries[key]
        if size > e.size and self.used() - e.size + size > self.capacity:
            del self.entries[key]
            return False
        e.size, e.ready = size, True
        return True

    def drop(self, key: str) -> None:
        """A download failed: forget its booking."""
        self.entries.pop(key, None)

    def check_invariants(self) -> None:
        assert self.used() <= self.capacity, (self.used(), self.capacity)
        assert all(e.users >= 0 and e.size >= 0 for e in self.entries.values())
