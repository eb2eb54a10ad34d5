"""Marathon's state in ZooKeeper (`--zk`): the `Store` protocol over znodes.

Layout: `<zk path>/state/<kind>/<escaped key>` holds one JSON document. Keys are
percent-escaped (`/` in app ids becomes `%2F`) so every key is one znode name.

Writes go into a pending list; `commit()` writes them as ZooKeeper multi-op transactions,
chunked to stay under the server's 1 MB request limit (`jute.maxbuffer`): each chunk is
atomic, a commit bigger than one chunk is not. Every transaction also *checks* the
leader's election znode (`fence`), so a deposed leader whose session expired can never
write again. With `autocommit=True` each put/delete commits at once.

kazoo calls block; they are kept short (async requests pipelined, each waited on with a
timeout) because the service calls the store from the event loop.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, unquote

from attrs import frozen

log = logging.getLogger("marathon.store_zk")

CHUNK_BYTES = 512 * 1024  # well under jute.maxbuffer (1 MiB) with headers
MAX_DOC_BYTES = 1000 * 1000  # a znode's data must fit in one request
OP_OVERHEAD = 64  # per-op framing in a multi request (type, flags, lengths, acl)


class StoreError(Exception):
    """A write ZooKeeper refused (fenced, connection lost, too large)."""


# ------------------------------------------------------------------ pure helpers


def escape(key: str) -> str:
    """Key -> one znode name (never empty, '.', '..' or containing '/')."""
    if key == "":
        return "%"  # quote() never yields a lone '%'
    if key in (".", ".."):
        return "%2E" * len(key)
    return quote(key, safe="")


def unescape(name: str) -> str:
    return "" if name == "%" else unquote(name)


@frozen
class Op:
    verb: str  # "create" | "set" | "delete"
    path: str
    data: bytes = b""

    @property
    def size(self) -> int:
        return len(self.path.encode()) + len(self.data) + OP_OVERHEAD


def plan_ops(root: str, pending: dict[tuple[str, str], bytes | None],
             existing: dict[str, set[str]]) -> list[Op]:
    """Turn the last write per (kind, key) into znode ops, given which names exist now
    (`existing[kind]`); deleting a missing key is no op."""
    ops = []
    for (kind, key), data in pending.items():
        name = escape(key)
        path = f"{root}/{escape(kind)}/{name}"
        there = name in existing.get(kind, set())
        if data is None:
            if there:
                ops.append(Op("delete", path))
        else:
            ops.append(Op("set" if there else "create", path, data))
    return ops


def chunk(ops: Iterable[Op], limit: int = CHUNK_BYTES) -> list[list[Op]]:
    """Split ops, in order, into runs whose total size stays within `limit` (one op larger
    than `limit` goes alone; one that cannot fit any request is refused)."""
    out: list[list[Op]] = []
    cur: list[Op] = []
    size = 0
    for op in ops:
        if len(op.data) > MAX_DOC_BYTES:
            raise StoreError(f"{op.path}: document of {len(op.data)} bytes is too large "
                             f"for ZooKeeper (max {MAX_DOC_BYTES})")
        if cur and size + op.size > limit:
            out.append(cur)
            cur, size = [], 0
        cur.append(op)
        size += op.size
    if cur:
        out.append(cur)
    return out


# ------------------------------------------------------------------ the store


class ZkStore:
    """`Store` over a started KazooClient (owned by the caller, usually the elector)."""

    write_in_thread = True  # take() on the loop, write(batch) in a worker thread

    def __init__(self, client: Any, path: str, fence: str | None = None,
                 autocommit: bool = True, timeout: float = 5.0,
                 chunk_bytes: int = CHUNK_BYTES) -> None:
        self.client = client
        self.root = f"{path.rstrip('/')}/state"
        self.fence = fence
        self.autocommit = autocommit
        self.timeout = timeout
        self.chunk_bytes = chunk_bytes
        self._existing: dict[str, set[str]] = {}  # kind -> escaped names known to exist
        self._pending: dict[tuple[str, str], bytes | None] = {}
        self.commits = 0  # transactions written (for tests and metrics)

    # -------------------------------------------------------------- Store protocol

    def put(self, kind: str, key: str, doc: Any) -> None:
        self._pending.pop((kind, key), None)  # re-insert: writes keep their order
        self._pending[(kind, key)] = json.dumps(doc).encode()
        if self.autocommit:
            self.commit()

    def delete(self, kind: str, key: str) -> None:
        self._pending.pop((kind, key), None)
        self._pending[(kind, key)] = None
        if self.autocommit:
            self.commit()

    def load(self, kind: str) -> dict[str, Any]:
        """Every document of `kind`, oldest write first (like SQLite's rowid order)."""
        names = self._list(kind)
        kdir = f"{self.root}/{escape(kind)}"
        reqs = [(n, self.client.get_async(f"{kdir}/{n}")) for n in names]
        got = []
        for n, r in reqs:
            try:
                data, stat = r.get(timeout=self.timeout)
            except Exception as e:  # NoNodeError: deleted since listing (not by us)
                if type(e).__name__ == "NoNodeError":
                    self._existing[kind].discard(n)
                    continue
                raise
            got.append((stat.mzxid, n, data))
        got.sort()
        out = {}
        for _, n, data in got:
            try:
                out[unescape(n)] = json.loads(data)
            except ValueError as e:
                log.error("ignoring unreadable document %s/%s: %s", kdir, n, e)
        return out

    def close(self) -> None:
        self._pending.clear()

    # -------------------------------------------------------------- writes

    def commit(self) -> None:
        """Write every pending op (in chunks of one transaction each). On failure the
        pending ops are dropped and StoreError raised: the caller's write did not happen
        (or, past the first chunk, happened in part)."""
        self.write(self.take())

    def take(self) -> dict[tuple[str, str], bytes | None]:
        """The pending ops, for `write` in a worker thread (the loop goes on buffering)."""
        pending, self._pending = self._pending, {}
        return pending

    def write(self, pending: dict[tuple[str, str], bytes | None]) -> None:
        """Write `pending` as transactions (blocking: run it off the event loop)."""
        if not pending:
            return
        for kind in {k for k, _ in pending}:
            self._list(kind)
        for ops in chunk(plan_ops(self.root, pending, self._existing), self.chunk_bytes):
            self._transact(ops)

    def _transact(self, ops: list[Op]) -> None:
        t = self.client.transaction()
        if self.fence is not None:
            t.check(self.fence, -1)  # our election znode must still exist
        for op in ops:
            if op.verb == "create":
                t.create(op.path, op.data)
            elif op.verb == "set":
                t.set_data(op.path, op.data)
            else:
                t.delete(op.path)
        try:
            results = t.commit_async().get(timeout=self.timeout)
        except Exception as e:
            self._existing.clear()  # unknown outcome: list again next time
            raise StoreError(f"ZooKeeper transaction failed: {type(e).__name__}: {e}") from None
        errors = [r for r in results if isinstance(r, Exception)
                  and type(r).__name__ != "RolledBackError"]
        if errors:
            self._existing.clear()
            if self.fence is not None and type(errors[0]).__name__ == "NoNodeError" \
                    and results and results[0] is errors[0]:
                raise StoreError(f"fenced: election znode {self.fence} is gone")
            raise StoreError(f"ZooKeeper transaction refused: {type(errors[0]).__name__}")
        self.commits += 1
        for op in ops:
            kind_dir, name = op.path.rsplit("/", 1)
            kind = unescape(kind_dir.rsplit("/", 1)[1])
            names = self._existing.setdefault(kind, set())
            (names.discard if op.verb == "delete" else names.add)(name)

    def _list(self, kind: str) -> set[str]:
        """Names of `kind` (read once, then kept up to date by our own writes)."""
        if kind not in self._existing:
            kdir = f"{self.root}/{escape(kind)}"
            try:
                self.client.ensure_path_async(kdir).get(timeout=self.timeout)
                names = self.client.get_children_async(kdir).get(timeout=self.timeout)
            except Exception as e:
                raise StoreError(f"cannot list {kdir}: {type(e).__name__}: {e}") from None
            self._existing[kind] = set(names)
        return self._existing[kind]
