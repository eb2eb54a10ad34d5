"""ZooKeeper registry for HA masters: the same interface as SqliteRegistry, shared by all masters.

The whole RegistryState (admitted and unreachable agents; a few tens of bytes per agent) lives
as JSON in one znode `<path>/registry`; a key missing from an older node reads as empty.
Every operation is applied to a copy with the same pure `apply` the other registries use and
written with a compare-and-set on the znode version read at `load()` (or by our last write).
A version mismatch means another master wrote since: we are no longer the leader, so the
write fails with `FencedError` and the state is not changed.
"""
from __future__ import annotations

import json
from typing import Any

from mesos_master.registry.base import (
    RegistryOperation,
    RegistryState,
    deactivated_json,
    load_deactivated,
    load_maintenance,
    maintenance_json,
)
from mesos_master.reservations import Reservations


class FencedError(Exception):
    """Someone else wrote the registry: this master must stop acting as leader."""


class ZkRegistry:
    remote = True  # writes wait on the network: the server makes them off its event loop

    def __init__(self, client: Any, path: str, timeout: float = 5.0) -> None:
        """`client` is a started KazooClient; `path` the HA root (e.g. /corral); a write not
        confirmed within `timeout` counts as lost leadership (cf. Mesos registry_store_timeout)."""
        self.client = client
        self.timeout = timeout
        self.node = path.rstrip("/") + "/registry"
        self._state = RegistryState()
        self._version = -1
        self._fenced = False

    def open(self) -> None:
        """Read (or create) the registry and take it over (blocking; call on election).

        Writing it back bumps the znode version, so a deposed leader that still thinks it
        leads fails its next compare-and-set instead of overwriting ours."""
        from kazoo.exceptions import NodeExistsError, NoNodeError
        try:
            data, stat = self.client.get(self.node)
        except NoNodeError:
            try:
                self.client.create(self.node, _encode(RegistryState()), makepath=True)
            except NodeExistsError:
                pass
            data, stat = self.client.get(self.node)
        state = _decode(data)
        stat = self.client.set(self.node, _encode(state), version=stat.version)
        self._state, self._version, self._fenced = state, stat.version, False

    def load(self) -> RegistryState:
        return self._state.copy()

    def apply(self, op: RegistryOperation) -> bool:
        return self.apply_many([op])[0]

    def apply_many(self, ops: list[RegistryOperation]) -> list[bool]:
        """Apply `ops` in order with one compare-and-set write (group commit)."""
        from kazoo.exceptions import BadVersionError
        if self._fenced:
            raise FencedError("registry writes are fenced")
        candidate = self._state.copy()
        results = [op.apply(candidate) for op in ops]
        if not any(results):
            return results
        if self.client.state != "CONNECTED":  # kazoo would queue it until reconnection
            self._fenced = True
            raise FencedError(f"ZooKeeper connection is {self.client.state}")
        try:
            stat = self.client.set_async(self.node, _encode(candidate),
                                         version=self._version).get(timeout=self.timeout)
        except BadVersionError:
            self._fenced = True
            raise FencedError(f"{self.node} was written by another master") from None
        except Exception as e:  # timeout, connection loss, session expiry: we cannot know
            self._fenced = True  # whether it landed, so we cannot go on as the leader
            raise FencedError(f"registry write not confirmed: {e!r}") from None
        self._state, self._version = candidate, stat.version
        return results

    def fence(self) -> None:
        """No more writes through this object (leadership lost)."""
        self._fenced = True

    def close(self) -> None:
        pass  # the client belongs to the server


def _encode(state: RegistryState) -> bytes:
    return json.dumps({"admitted": state.admitted, "unreachable": state.unreachable,
                       "weights": state.weights, "quotas": state.quotas,
                       "gone": state.gone,
                       "reserved": {a: r.to_json() for a, r in state.reserved.items()},
                       "maintenance": maintenance_json(state),
                       "deactivated": deactivated_json(state)},
                      sort_keys=True).encode()


def _decode(data: bytes) -> RegistryState:
    doc = json.loads(data or b"{}")
    state = RegistryState(admitted={str(k): str(v) for k, v in doc.get("admitted", {}).items()},
                         unreachable={str(k): float(v)
                                      for k, v in doc.get("unreachable", {}).items()},
                         weights={str(k): float(v) for k, v in doc.get("weights", {}).items()},
                         quotas={str(r): {str(n): float(a) for n, a in q.items()}
                                 for r, q in doc.get("quotas", {}).items()},
                         gone={str(k): float(v) for k, v in doc.get("gone", {}).items()},
                         reserved={str(k): Reservations.from_json(v)
                                   for k, v in doc.get("reserved", {}).items()},
                         deactivated=load_deactivated(doc.get("deactivated", {})))
    load_maintenance(state, doc.get("maintenance", {}))
    return state
