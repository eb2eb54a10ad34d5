"""Where Marathon keeps what must survive a restart: apps, every app version, tasks, ids.

A tiny keyed-document store: `put(kind, key, doc)`, `delete(kind, key)`, `load(kind)`,
`commit()`. Writes are buffered until `commit()` makes them durable in one transaction
(one fsync for a whole burst of task updates rather than one per update); the service
commits before it answers an API request and before the acknowledgements and launches of
a burst of driver callbacks go out. `close()` commits what is pending.
Kinds used by the service: `app` (current definition per app id), `version`
(`<app id>@<version>` -> definition), `task` (task id -> task record), `meta`
(framework id, service-port allocations). `MemoryStore` is the fake for tests;
`SQLiteStore` (a `BufferedStore`) is the embedded default; `store_zk.ZkStore` is the store
with `--zk`. A store whose `write_in_thread` is true lets the daemon `take()` the buffer
on the loop and `write(batch)` it from a worker thread.
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any, Protocol

Batch = dict[tuple[str, str], "str | None"]  # (kind, key) -> JSON, None: delete


class Store(Protocol):
    def put(self, kind: str, key: str, doc: Any) -> None: ...
    def delete(self, kind: str, key: str) -> None: ...
    def load(self, kind: str) -> dict[str, Any]: ...
    def commit(self) -> None: ...
    def close(self) -> None: ...


class MemoryStore:
    """In-process store; documents are copied through JSON so callers never share them.
    Writes apply at once (nothing survives the process anyway); `commit` is a no-op."""

    def __init__(self) -> None:
        self._data: dict[str, dict[str, str]] = {}

    def put(self, kind: str, key: str, doc: Any) -> None:
        self._data.setdefault(kind, {})[key] = json.dumps(doc)

    def delete(self, kind: str, key: str) -> None:
        self._data.get(kind, {}).pop(key, None)

    def load(self, kind: str) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self._data.get(kind, {}).items()}

    def commit(self) -> None:
        pass

    def close(self) -> None:
        pass


class BufferedStore:
    """put/delete only buffer (the last write of a key wins) and `load` sees committed plus
    pending writes; `commit` makes the buffer durable in one `_write`, all or nothing.
    Subclasses say how to read what is committed and how to write a batch."""

    write_in_thread = False

    def __init__(self) -> None:
        self._pending: Batch = {}

    def _committed(self, kind: str) -> dict[str, Any]:
        raise NotImplementedError

    def _write(self, batch: Batch) -> None:
        raise NotImplementedError

    def put(self, kind: str, key: str, doc: Any) -> None:
        self._pending[(kind, key)] = json.dumps(doc)

    def delete(self, kind: str, key: str) -> None:
        self._pending[(kind, key)] = None

    @property
    def pending(self) -> int:
        return len(self._pending)

    def load(self, kind: str) -> dict[str, Any]:
        """What is committed plus what is pending (the service's view of its own writes)."""
        out = self._committed(kind)
        for (k, key), doc in self._pending.items():
            if k != kind:
                continue
            if doc is None:
                out.pop(key, None)
            else:
                out[key] = json.loads(doc)
        return out

    def commit(self) -> None:
        """Make every buffered write durable, all or nothing; on failure they stay pending."""
        self.write(self.take())

    def take(self) -> Batch:
        """The buffered writes, for `write` (possibly in another thread); the buffer empties."""
        batch, self._pending = self._pending, {}
        return batch

    def write(self, batch: Batch) -> None:
        """One transaction for `batch`; on failure it goes back under any newer writes."""
        if not batch:
            return
        try:
            self._write(batch)
        except BaseException:
            for k, doc in batch.items():
                self._pending.setdefault(k, doc)
            raise


class SQLiteStore(BufferedStore):
    """One table `(kind, key) -> json` (WAL, synchronous=FULL)."""

    write_in_thread = True

    def __init__(self, path: Path) -> None:
        super().__init__()
        path.parent.mkdir(parents=True, exist_ok=True)
        # check_same_thread off: the daemon writes batches from a worker thread (`write`),
        # one at a time, while the loop goes on buffering
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("CREATE TABLE IF NOT EXISTS docs (kind TEXT, key TEXT, doc TEXT,"
                         " PRIMARY KEY (kind, key))")

    def _committed(self, kind: str) -> dict[str, Any]:
        rows = self._db.execute("SELECT key, doc FROM docs WHERE kind = ? ORDER BY rowid",
                                (kind,))
        return {k: json.loads(d) for k, d in rows}

    def _write(self, batch: Batch) -> None:
        puts = [(k, key, doc) for (k, key), doc in batch.items() if doc is not None]
        dels = [(k, key) for (k, key), doc in batch.items() if doc is None]
        self._db.execute("BEGIN")
        try:
            if dels:
                self._db.executemany("DELETE FROM docs WHERE kind = ? AND key = ?", dels)
            if puts:
                self._db.executemany("INSERT OR REPLACE INTO docs VALUES (?, ?, ?)", puts)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        try:
            self.commit()
        finally:
            self._db.close()
