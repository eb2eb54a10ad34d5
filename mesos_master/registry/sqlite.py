"""SQLite registry: the embedded default, so a restarted master recognises returning agents.

Each operation is applied to an in-memory copy first (the same pure `apply` the memory registry
uses) and the rows of the one agent it touches are rewritten in a single transaction, so the
file always equals the state the operations describe. Tables are created when missing, so a
file written before a table existed opens with that table empty.
"""
from __future__ import annotations

import json
import os
import sqlite3

from mesos_master.registry.base import (
    AgentDrain,
    RegistryOperation,
    RegistryState,
    StartMaintenance,
    StopMaintenance,
    UpdateQuota,
    UpdateSchedule,
    UpdateWeights,
    load_maintenance,
    maintenance_json,
)
from mesos_master.reservations import Reservations

_SCHEMA = """
CREATE TABLE IF NOT EXISTS admitted (agent_id TEXT PRIMARY KEY, hostname TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS unreachable (agent_id TEXT PRIMARY KEY, time REAL NOT NULL);
CREATE TABLE IF NOT EXISTS gone (agent_id TEXT PRIMARY KEY, time REAL NOT NULL);
CREATE TABLE IF NOT EXISTS reserved (agent_id TEXT PRIMARY KEY, resources TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS weights (role TEXT PRIMARY KEY, weight REAL NOT NULL);
CREATE TABLE IF NOT EXISTS quotas (role TEXT NOT NULL, resource TEXT NOT NULL,
                                   amount REAL NOT NULL, PRIMARY KEY (role, resource));
CREATE TABLE IF NOT EXISTS maintenance (doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS deactivated (agent_id TEXT PRIMARY KEY, drain TEXT);
"""
_MAINTENANCE = (UpdateSchedule, StartMaintenance, StopMaintenance)


class SqliteRegistry:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._state = self._read()

    def _read(self) -> RegistryState:
        state = RegistryState()
        for agent_id, hostname in self._db.execute("SELECT agent_id, hostname FROM admitted"):
            state.admitted[agent_id] = hostname
        for agent_id, t in self._db.execute("SELECT agent_id, time FROM unreachable"):
            state.unreachable[agent_id] = t
        for agent_id, t in self._db.execute("SELECT agent_id, time FROM gone"):
            state.gone[agent_id] = t
        for agent_id, res in self._db.execute("SELECT agent_id, resources FROM reserved"):
            state.reserved[agent_id] = Reservations.from_json(json.loads(res))
        for role, weight in self._db.execute("SELECT role, weight FROM weights"):
            state.weights[role] = weight
        for role, name, amount in self._db.execute("SELECT role, resource, amount FROM quotas"):
            state.quotas.setdefault(role, {})[name] = amount
        for agent_id, drain in self._db.execute("SELECT agent_id, drain FROM deactivated"):
            state.deactivated[agent_id] = None if drain is None else \
                AgentDrain.from_json(json.loads(drain))
        for (doc,) in self._db.execute("SELECT doc FROM maintenance"):
            load_maintenance(state, json.loads(doc))
        return state

    def load(self) -> RegistryState:
        return self._state.copy()

    def apply(self, op: RegistryOperation) -> bool:
        return self.apply_many([op])[0]

    def apply_many(self, ops: list[RegistryOperation]) -> list[bool]:
        """Apply `ops` in order in one transaction (group commit, as Mesos's registrar batches
        operations): one fsync and one copy of the state for a burst of registrations."""
        candidate = self._state.copy()
        results = [op.apply(candidate) for op in ops]
        changed = [op for op, did in zip(ops, results, strict=True) if did]
        if not changed:
            return results
        with self._db:  # one transaction; the in-memory copy is swapped in only after commit
            self._db.execute("BEGIN IMMEDIATE")
            for op in changed:
                self._write(op, candidate)
        self._state = candidate
        return results

    def _write(self, op: RegistryOperation, candidate: RegistryState) -> None:
        """Rewrite the rows the operation touches (one agent, some weights, one quota)."""
        if isinstance(op, UpdateWeights):
            for role, _ in op.weights:
                self._db.execute("INSERT OR REPLACE INTO weights VALUES (?, ?)",
                                 (role, candidate.weights[role]))
            return
        if isinstance(op, _MAINTENANCE):
            self._write_maintenance(candidate)
            return
        if isinstance(op, UpdateQuota):
            self._db.execute("DELETE FROM quotas WHERE role = ?", (op.role,))
            for name, amount in candidate.quotas.get(op.role, {}).items():
                self._db.execute("INSERT INTO quotas VALUES (?, ?, ?)", (op.role, name, amount))
            return
        aid = op.agent_id
        self._db.execute("DELETE FROM admitted WHERE agent_id = ?", (aid,))
        self._db.execute("DELETE FROM unreachable WHERE agent_id = ?", (aid,))
        self._db.execute("DELETE FROM reserved WHERE agent_id = ?", (aid,))
        self._db.execute("DELETE FROM deactivated WHERE agent_id = ?", (aid,))
        if aid in candidate.admitted:
            self._db.execute("INSERT INTO admitted VALUES (?, ?)", (aid, candidate.admitted[aid]))
        if aid in candidate.unreachable:
            self._db.execute("INSERT INTO unreachable VALUES (?, ?)",
                             (aid, candidate.unreachable[aid]))
        if aid in candidate.reserved:
            self._db.execute("INSERT INTO reserved VALUES (?, ?)",
                             (aid, json.dumps(candidate.reserved[aid].to_json())))
        if aid in candidate.deactivated:
            drain = candidate.deactivated[aid]
            self._db.execute("INSERT INTO deactivated VALUES (?, ?)", (
                aid, None if drain is None else json.dumps(drain.to_json())))
        if aid in candidate.gone:
            self._db.execute("INSERT OR REPLACE INTO gone VALUES (?, ?)",
                             (aid, candidate.gone[aid]))

    def _write_maintenance(self, candidate: RegistryState) -> None:
        self._db.execute("DELETE FROM maintenance")
        self._db.execute("INSERT INTO maintenance VALUES (?)",
                         (json.dumps(maintenance_json(candidate)),))

    def close(self) -> None:
        self._db.close()
