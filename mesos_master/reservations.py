"""An agent's dynamic reservations by who made them (Mesos's `ReservationInfo.principal`), so
an UNRESERVE is authorized by the reserver (the `unreserve_resources` ACL).

Stored as Mesos's resource JSON with `reservations: [{type, role, principal}]`: a reader that
knows nothing of principals still reads the resources, and resources written without them
(older registries) read as reserved by NOBODY.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from attrs import frozen

from mesos_common.resources import EMPTY, Resources

#: The reserver of a reservation whose principal is not known (made without authentication,
#: or recorded before principals were): Mesos's unset principal, the ACLs' object "".
NOBODY = ""


@frozen
class Reservations:
    """Immutable: `parts` (principal, its reserved resources), sorted, none empty; `total`
    their sum (what the allocator and the agent's resources know)."""

    parts: tuple[tuple[str, Resources], ...] = ()
    total: Resources = EMPTY

    @classmethod
    def of(cls, by_principal: Mapping[str, Resources]) -> Reservations:
        parts = tuple(sorted((p, r) for p, r in by_principal.items() if r))
        total = EMPTY
        for _, r in parts:
            total = total + r
        return cls(parts, total)

    def __bool__(self) -> bool:
        return bool(self.parts)

    def by_principal(self) -> dict[str, Resources]:
        return dict(self.parts)

    def add(self, principal: str | None, res: Resources) -> Reservations:
        if not res:
            return self
        by = self.by_principal()
        key = principal or NOBODY
        by[key] = by.get(key, EMPTY) + res
        return Reservations.of(by)

    def take(self, res: Resources, first: str | None
             ) -> tuple[Reservations, dict[str, Resources]] | None:
        """Remove `res`, from `first`'s reservations first, then the others' by principal:
        (what remains, what was taken from each reserver); None when `res` is not held."""
        if not self.total.contains(res):
            return None
        by = self.by_principal()
        key = first or NOBODY
        order = ([key] if key in by else []) + [p for p in sorted(by) if p != key]
        taken: dict[str, Resources] = {}
        need = res
        for p in order:
            if not need:
                break
            left = by[p] - need
            got = by[p] - left
            if got:
                taken[p], by[p], need = got, left, need - got
        return Reservations.of(by), taken

    def to_json(self) -> list[dict[str, Any]]:
        out = []
        for principal, res in self.parts:
            for item in res.to_json():
                info = {"type": "DYNAMIC", "role": item["role"]}
                if principal != NOBODY:
                    info["principal"] = principal
                out.append({**item, "reservations": [info]})
        return out

    @classmethod
    def from_json(cls, items: Iterable[Any]) -> Reservations:
        """Mesos's resource JSON; the principal of an item's last reservation, else NOBODY
        (raises ResourceError on a malformed item)."""
        groups: dict[str, list[Any]] = {}
        for item in items:
            infos = item.get("reservations") if isinstance(item, dict) else None
            last = infos[-1] if isinstance(infos, list) and infos else None
            principal = last.get("principal") if isinstance(last, dict) else None
            groups.setdefault(principal if isinstance(principal, str) else NOBODY,
                              []).append(item)
        return cls.of({p: Resources.from_json(g) for p, g in groups.items()})


NO_RESERVATIONS = Reservations()
