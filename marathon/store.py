"""Where Marathon keeps what must survive a restart: apps, every app version, tasks, ids.

A tiny keyed-document store: `put(kind, key, doc)`, `delete(kind, key)`, `load(kind)`.
Kinds used by the service: `app` (current definition per app id), `version`
(`<app id>@<version>` -> definition), `task` (task id -> task record), `meta`
(framework id, service-port allocations). `MemoryStore` is the fake for tests;
`SQLiteStore` is the embedded default. The ZooKeeper store arrives with the HA work.
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any, Protocol


class Store(Protocol):
    def put(self, kind: str, key: str, doc: Any) -> None: ...
    def delete(self, kind: str, key: str) -> None: ...
    def load(self, kind: str) -> dict[str, Any]: ...
    def close(self) -> None: ...


class MemoryStore:
    """In-process store; documents are copied through JSON so callers never share them."""

    def __init__(self) -> None:
        self._data: dict[str, dict[str, str]] = {}

    def put(self, kind: str, key: str, doc: Any) -> None:
        self._data.setdefault(kind, {})[key] = json.dumps(doc)

    def delete(self, kind: str, key: str) -> None:
        self._data.get(kind, {}).pop(key, None)

    def load(self, kind: str) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self._data.get(kind, {}).items()}

    def close(self) -> None:
        pass


class SQLiteStore:
    """One table `(kind, key) -> json`; every write commits before it returns (WAL mode)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("CREATE TABLE IF NOT EXISTS docs (kind TEXT, key TEXT, doc TEXT,"
                         " PRIMARY KEY (kind, key))")

    def put(self, kind: str, key: str, doc: Any) -> None:
        self._db.execute("INSERT OR REPLACE INTO docs VALUES (?, ?, ?)",
                         (kind, key, json.dumps(doc)))

    def delete(self, kind: str, key: str) -> None:
        self._db.execute("DELETE FROM docs WHERE kind = ? AND key = ?", (kind, key))

    def load(self, kind: str) -> dict[str, Any]:
        rows = self._db.execute("SELECT key, doc FROM docs WHERE kind = ? ORDER BY rowid",
                                (kind,))
        return {k: json.loads(d) for k, d in rows}

    def close(self) -> None:
        self._db.close()
