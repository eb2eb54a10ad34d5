"""Mesos ``Resources`` algebra: immutable, hashable bags of scalars, ranges and sets.

Representation (kept deliberately flat because the allocator runs millions of
``contains``/``+``/``-`` per second):

* a dict keyed by ``(name, role)``;
* SCALAR values are ``int`` milli-units (Mesos fixed point, 3 decimals), so
  ``0.1 + 0.2 == 0.3`` holds exactly;
* RANGES values are a tuple of sorted, merged, non-overlapping inclusive
  ``(begin, end)`` int pairs;
* SET values are a ``frozenset[str]``.

Invariants: no negative quantities and no empty entries (0 scalar, no ranges,
empty set), so structural dict equality *is* semantic equality.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Union

__all__ = ["EMPTY", "ResourceError", "Resources", "format_ranges"]

Range = tuple[int, int]
Ranges = tuple[Range, ...]
Value = Union[int, Ranges, frozenset]
Key = tuple[str, str]

UNRESERVED = "*"
_MAP_ALWAYS = ("cpus", "gpus", "mem", "disk")
_TYPE_NAMES = {int: "SCALAR", tuple: "RANGES", frozenset: "SET"}
_FIELD = {"SCALAR": "scalar", "RANGES": "ranges", "SET": "set"}

_ENTRY_RE = re.compile(r"^([^\s:;()\[\]{},]+)\s*(?:\(([^()]*)\))?\s*:\s*(.*)$", re.S)
_NUMBER_RE = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
_RANGE_RE = re.compile(r"^(\d+)\s*-\s*(\d+)$")
_ROLE_RE = re.compile(r"^[^\s()\[\]{};:,]+$")


class ResourceError(ValueError):
    """Raised for malformed or invalid resource text/JSON (and type conflicts)."""


# ---------------------------------------------------------------- helpers


def _merge(ranges: Iterable[Range]) -> Ranges:
    """Sort and coalesce overlapping *and adjacent* ranges ([1-5]+[6-9] = [1-9])."""
    out: list[list[int]] = []
    for b, e in sorted(ranges):
        if out and b <= out[-1][1] + 1:
            if e > out[-1][1]:
                out[-1][1] = e
        else:
            out.append([b, e])
    return tuple((b, e) for b, e in out)


def _ranges_sub(a: Ranges, b: Ranges) -> Ranges:
    """Set difference of two canonical range tuples, linear two-pointer walk."""
    out: list[Range] = []
    j, m = 0, len(b)
    for s, e in a:
        while j < m and b[j][1] < s:
            j += 1
        k = j
        while k < m and b[k][0] <= e:
            bs, be = b[k]
            if bs > s:
                out.append((s, bs - 1))
            s = be + 1
            if s > e:
                break
            k += 1
        if s <= e:
            out.append((s, e))
    return tuple(out)


def _ranges_contain(a: Ranges, b: Ranges) -> bool:
    """True iff every range of ``b`` lies inside one (merged) range of ``a``."""
    i, n = 0, len(a)
    for s, e in b:
        while i < n and a[i][1] < s:
            i += 1
        if i == n or a[i][0] > s or a[i][1] < e:
            return False
    return True


def format_ranges(ranges: Iterable[Range]) -> str:
    """Mesos text form of ranges: ``[31000-31005, 31010-31010]``."""
    return "[" + ", ".join(f"{b}-{e}" for b, e in ranges) + "]"


def _format_set(items: Iterable[str]) -> str:
    return "{" + ", ".join(sorted(items)) + "}"


def _format_milli(m: int) -> str:
    """Exact decimal text for milli-units (no float detour, so parse round-trips)."""
    whole, frac = divmod(m, 1000)
    return str(whole) if not frac else f"{whole}.{frac:03d}".rstrip("0")


def _to_milli(value: Any, what: str) -> int:
    """Number -> milli-units, rounding half-up to 3 decimals like Mesos."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise ResourceError(f"{what}: scalar value must be a number, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ResourceError(f"{what}: scalar value must not be negative")
        return value * 1000
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ResourceError(f"{what}: scalar value must be finite")
        value = Decimal(repr(value))  # shortest repr: what the user meant
    if not value.is_finite():
        raise ResourceError(f"{what}: scalar value must be finite")
    if value < 0:
        raise ResourceError(f"{what}: scalar value must not be negative")
    try:
        return int((value * 1000).to_integral_value(rounding=ROUND_HALF_UP))
    except (InvalidOperation, OverflowError) as exc:
        raise ResourceError(f"{what}: scalar value out of range") from exc


def _check_role(role: Any, what: str) -> str:
    if not isinstance(role, str) or not _ROLE_RE.match(role):
        raise ResourceError(f"{what}: invalid role {role!r}")
    return role


def _combine(a: Value, b: Value, name: str) -> Value:
    """Add two values of one (name, role); differing types is a conflict."""
    t = type(a)
    if t is not type(b):
        raise ResourceError(
            f"resource '{name}' has conflicting types {_TYPE_NAMES[t]} and {_TYPE_NAMES[type(b)]}")
    if t is int:
        return a + b  # type: ignore[operator]
    if t is tuple:
        return _merge(a + b)  # type: ignore[operator]
    return a | b  # type: ignore[operator]


def _build(entries: Iterable[tuple[str, str, Value]]) -> Resources:
    """Accumulate validated entries; repeated names add up; one type per name."""
    d: dict[Key, Value] = {}
    types: dict[str, type] = {}
    for name, role, v in entries:
        t = types.setdefault(name, type(v))
        if t is not type(v):
            raise ResourceError(
                f"resource '{name}' has conflicting types {_TYPE_NAMES[t]} and {_TYPE_NAMES[type(v)]}")
        if not v:
            continue
        k = (name, role)
        d[k] = _combine(d[k], v, name) if k in d else v
    return _new(d)


# -------------------------------------------------------------- parsing


def _parse_value(raw: str, what: str) -> Value:
    if raw.startswith("["):
        if not raw.endswith("]"):
            raise ResourceError(f"{what}: ranges must be enclosed in [ ]")
        inner = raw[1:-1].strip()
        out = []
        for tok in inner.split(",") if inner else ():
            m = _RANGE_RE.match(tok.strip())
            if not m:
                raise ResourceError(f"{what}: malformed range {tok.strip()!r} (want begin-end)")
            b, e = int(m[1]), int(m[2])
            if b > e:
                raise ResourceError(f"{what}: range begin {b} > end {e}")
            out.append((b, e))
        return _merge(out)
    if raw.startswith("{"):
        if not raw.endswith("}"):
            raise ResourceError(f"{what}: set must be enclosed in {{ }}")
        inner = raw[1:-1].strip()
        items = [t.strip() for t in inner.split(",")] if inner else []
        if any(not t for t in items):
            raise ResourceError(f"{what}: set items must not be empty")
        return frozenset(items)
    if not _NUMBER_RE.match(raw):
        raise ResourceError(f"{what}: scalar value must be a number")
    return _to_milli(Decimal(raw), what)


def _parse_text(text: str, default_role: str) -> Resources:
    entries = []
    for tok in text.split(";"):
        tok = tok.strip()
        if not tok:
            continue
        what = f"invalid resource {tok!r}"
        m = _ENTRY_RE.match(tok)
        if not m:
            raise ResourceError(f"{what}: expected name[(role)]:value")
        role = default_role if m[2] is None else _check_role(m[2].strip(), what)
        entries.append((m[1], role, _parse_value(m[3].strip(), what)))
    return _build(entries)


def _json_value(item: Mapping[str, Any], typ: str, what: str) -> Value:
    for t, f in _FIELD.items():
        if t != typ and f in item:
            raise ResourceError(f"{what}: type {typ} but has '{f}' field")
    field = item.get(_FIELD[typ])
    if not isinstance(field, dict):
        raise ResourceError(f"{what}: missing or non-object '{_FIELD[typ]}' field")
    if typ == "SCALAR":
        if "value" not in field:
            raise ResourceError(f"{what}: scalar has no 'value'")
        return _to_milli(field["value"], what)
    if typ == "RANGES":
        rs = field.get("range", [])
        if not isinstance(rs, list):
            raise ResourceError(f"{what}: 'ranges.range' must be a list")
        out = []
        for r in rs:
            if not isinstance(r, dict):
                raise ResourceError(f"{what}: range must be an object, got {r!r}")
            b, e = r.get("begin"), r.get("end")
            if any(isinstance(x, bool) or not isinstance(x, int) for x in (b, e)):
                raise ResourceError(f"{what}: range begin/end must be integers, got {r!r}")
            if b < 0 or b > e:  # type: ignore[operator]
                raise ResourceError(f"{what}: invalid range {b}-{e}")
            out.append((b, e))
        return _merge(out)  # type: ignore[arg-type]
    items = field.get("item", [])
    if not isinstance(items, list) or not all(isinstance(x, str) and x for x in items):
        raise ResourceError(f"{what}: 'set.item' must be a list of non-empty strings")
    return frozenset(items)


def _json_role(item: Mapping[str, Any], default_role: str, what: str) -> str:
    role = item.get("role", default_role)
    res = item.get("reservations")
    if res is not None:
        if not isinstance(res, list) or not all(isinstance(r, dict) for r in res):
            raise ResourceError(f"{what}: 'reservations' must be a list of objects")
        for r in res:
            if r.get("type", "STATIC") not in ("STATIC", "DYNAMIC"):
                raise ResourceError(f"{what}: unknown reservation type {r.get('type')!r}")
        if res:
            role = res[-1].get("role")
    return _check_role(role, what)


# ------------------------------------------------------------ Resources


class Resources:
    """Immutable multiset of Mesos resources keyed by (name, role).

    Arithmetic follows Mesos: ``+`` merges, ``-`` removes what is present
    (never negative), ``contains`` is role-aware (reserved does not satisfy
    unreserved). Build via ``parse``/``from_json``/``from_scalars``.
    """

    __slots__ = ("_d", "_h")
    _d: dict[Key, Value]

    def __init__(self) -> None:
        """``Resources()`` is empty; use the factory classmethods otherwise."""
        _set_d(self, {})

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Resources is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Resources is immutable")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_new, (dict(self._d),))

    # -- construction
    @classmethod
    def parse(cls, text: str, default_role: str = UNRESERVED) -> Resources:
        """Parse Mesos text (``cpus:4;ports:[1-2];cpus(ads):2;x:{a,b}``) or a JSON list."""
        if not isinstance(text, str):
            raise ResourceError(f"resources text must be a string, got {type(text).__name__}")
        _check_role(default_role, "invalid default role")
        if text.lstrip().startswith("["):
            try:
                items = json.loads(text)
            except ValueError as exc:
                raise ResourceError(f"invalid resources JSON: {exc}") from exc
            return cls.from_json(items, default_role)
        return _parse_text(text, default_role)

    @classmethod
    def from_json(cls, items: list[dict[str, Any]], default_role: str = UNRESERVED) -> Resources:
        """Build from Mesos protobuf-JSON resource objects; validates strictly."""
        if not isinstance(items, list):
            raise ResourceError(f"resources JSON must be a list, got {type(items).__name__}")
        entries = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise ResourceError(f"invalid resource JSON item {i}: must be an object")
            name, typ = item.get("name"), item.get("type")
            what = f"invalid resource JSON item {i} ({name!r})"
            if not isinstance(name, str) or not _ROLE_RE.match(name):
                raise ResourceError(f"{what}: 'name' must be a non-empty string")
            if typ not in _FIELD:
                raise ResourceError(f"{what}: 'type' must be SCALAR, RANGES or SET, got {typ!r}")
            role = _json_role(item, default_role, what)
            entries.append((name, role, _json_value(item, typ, what)))
        return _build(entries)

    @classmethod
    def from_scalars(cls, **quantities: float) -> Resources:
        """Unreserved scalars, e.g. ``from_scalars(cpus=1, mem=128)``."""
        return _build((n, UNRESERVED, _to_milli(v, f"invalid resource {n!r}"))
                      for n, v in quantities.items())

    @classmethod
    def empty(cls) -> Resources:
        return EMPTY

    # -- algebra (hot paths: keep branch-light, no allocation when avoidable)
    def __add__(self, other: Resources) -> Resources:
        if not isinstance(other, Resources):
            return NotImplemented
        a, b = self._d, other._d
        if not b:
            return self
        if not a:
            return other
        d = a.copy()
        for k, v in b.items():
            cur = d.get(k)
            if cur is None:
                d[k] = v
            elif type(v) is int and type(cur) is int:
                d[k] = cur + v
            else:
                d[k] = _combine(cur, v, k[0])
        return _new(d)

    def __sub__(self, other: Resources) -> Resources:
        """Remove what is present; scalars floor at 0; mismatched types are ignored."""
        if not isinstance(other, Resources):
            return NotImplemented
        a, b = self._d, other._d
        if not a or not b:
            return self
        d = a.copy()
        for k, v in b.items():
            cur = d.get(k)
            if cur is None:
                continue
            t = type(v)
            if t is not type(cur):
                continue
            if t is int:
                r = cur - v  # type: ignore[operator]
            elif t is tuple:
                r = _ranges_sub(cur, v)  # type: ignore[arg-type]
            else:
                r = cur - v  # type: ignore[operator]
            if r and (t is not int or r > 0):  # type: ignore[operator]
                d[k] = r
            else:
                del d[k]
        return _new(d)

    def contains(self, other: Resources) -> bool:
        """True iff ``other`` fits in ``self`` per (name, role)."""
        a = self._d
        for k, v in other._d.items():
            cur = a.get(k)
            if cur is None:
                return False
            t = type(v)
            if t is not type(cur):
                return False
            if t is int:
                if cur < v:  # type: ignore[operator]
                    return False
            elif t is tuple:
                if not _ranges_contain(cur, v):  # type: ignore[arg-type]
                    return False
            elif not v <= cur:  # type: ignore[operator]
                return False
        return True

    def __le__(self, other: Resources) -> bool:
        return other.contains(self) if isinstance(other, Resources) else NotImplemented

    def __ge__(self, other: Resources) -> bool:
        return self.contains(other) if isinstance(other, Resources) else NotImplemented

    def __eq__(self, other: object) -> bool:
        return self._d == other._d if isinstance(other, Resources) else NotImplemented

    def __hash__(self) -> int:
        try:
            return self._h  # type: ignore[no-any-return]
        except AttributeError:
            h = hash(frozenset(self._d.items()))
            _set_h(self, h)
            return h

    def __bool__(self) -> bool:
        return bool(self._d)

    def __str__(self) -> str:
        parts = []
        for (name, role), v in sorted(self._d.items()):
            label = name if role == UNRESERVED else f"{name}({role})"
            t = type(v)
            text = (_format_milli(v) if t is int else  # type: ignore[arg-type]
                    format_ranges(v) if t is tuple else _format_set(v))  # type: ignore[arg-type]
            parts.append(f"{label}:{text}")
        return ";".join(parts)

    def __repr__(self) -> str:
        """Text form; ``{}`` for empty so it is visible in logs/assertions."""
        return str(self) or "{}"

    # -- queries
    def _values(self, name: str) -> list[Value]:
        return [v for (n, _), v in self._d.items() if n == name]

    def scalar(self, name: str) -> float:
        """Scalar quantity summed over roles (0.0 when absent)."""
        return sum(v for v in self._values(name) if type(v) is int) / 1000  # type: ignore[misc]

    def ranges(self, name: str) -> Ranges:
        """Ranges merged over roles."""
        vs = [v for v in self._values(name) if type(v) is tuple]
        return vs[0] if len(vs) == 1 else _merge(r for v in vs for r in v)  # type: ignore[union-attr]

    def set_items(self, name: str) -> frozenset[str]:
        """Set items unioned over roles."""
        return frozenset().union(*(v for v in self._values(name) if type(v) is frozenset))

    def names(self) -> set[str]:
        return {n for n, _ in self._d}

    def quantities(self) -> dict[str, float]:
        """Scalars only, summed over roles (what DRF and quota care about)."""
        milli: dict[str, int] = {}
        for (n, _), v in self._d.items():
            if type(v) is int:
                milli[n] = milli.get(n, 0) + v  # type: ignore[operator]
        return {n: m / 1000 for n, m in milli.items()}

    # -- roles
    def _filter(self, keep: Any) -> Resources:
        return _new({k: v for k, v in self._d.items() if keep(k[1])})

    def reserved(self, role: str | None = None) -> Resources:
        """Resources reserved to ``role``, or to any role when ``None``."""
        if role is None:
            return self._filter(lambda r: r != UNRESERVED)
        return self._filter(lambda r: r == role)

    def unreserved(self) -> Resources:
        return self._filter(lambda r: r == UNRESERVED)

    def roles(self) -> set[str]:
        return {r for _, r in self._d}

    def allocatable_to(self, role: str) -> Resources:
        """What a framework in ``role`` may be offered: unreserved + its reservations."""
        return self._filter(lambda r: r == UNRESERVED or r == role)

    def flatten(self, role: str = UNRESERVED) -> Resources:
        """Same quantities with every entry moved to ``role``."""
        return _build((n, role, v) for (n, _), v in self._d.items())

    # -- serialisation
    def to_json(self) -> list[dict[str, Any]]:
        """Mesos protobuf-JSON list, sorted by (name, role); inverse of from_json."""
        out: list[dict[str, Any]] = []
        for (name, role), v in sorted(self._d.items()):
            t = type(v)
            item: dict[str, Any] = {"name": name, "type": _TYPE_NAMES[t]}
            if t is int:
                item["scalar"] = {"value": v / 1000}  # type: ignore[operator]
            elif t is tuple:
                item["ranges"] = {"range": [{"begin": b, "end": e} for b, e in v]}  # type: ignore[union-attr]
            else:
                item["set"] = {"item": sorted(v)}  # type: ignore[arg-type]
            item["role"] = role
            out.append(item)
        return out

    def to_map(self) -> dict[str, float | str]:
        """Flat form of Mesos HTTP endpoints (``/state`` ``resources`` fields)."""
        out: dict[str, float | str] = {n: 0.0 for n in _MAP_ALWAYS}
        out.update(self.quantities())
        for name in sorted(self.names()):
            if name in out:
                continue
            rs = self.ranges(name)
            out[name] = format_ranges(rs) if rs else _format_set(self.set_items(name))
        return out

    # -- scheduling helpers
    def dominant_share(self, total: Resources) -> float:
        """DRF dominant share: max_n self[n]/total[n] over scalars with total > 0."""
        tq = total.quantities()
        best = 0.0
        for n, v in self.quantities().items():
            t = tq.get(n, 0.0)
            if t > 0 and v / t > best:
                best = v / t
        return best

    def take_ports(self, count: int) -> tuple[list[int], Resources]:
        """Pick the ``count`` lowest ports; return them and matching Resources (roles kept)."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ResourceError(f"port count must be a non-negative integer, got {count!r}")
        segs = sorted((b, e, role) for (n, role), v in self._d.items()
                      if n == "ports" and type(v) is tuple for b, e in v)  # type: ignore[union-attr]
        ports: list[int] = []
        taken: list[tuple[str, str, Value]] = []
        floor = 0
        for b, e, role in segs:
            need = count - len(ports)
            if need <= 0:
                break
            s = max(b, floor)
            if s > e:
                continue
            n = min(need, e - s + 1)
            ports.extend(range(s, s + n))
            taken.append(("ports", role, ((s, s + n - 1),)))
            floor = s + n
        if len(ports) < count:
            raise ResourceError(f"need {count} ports but only {len(ports)} available")
        return ports, _build(taken)


_set_d = Resources._d.__set__  # type: ignore[attr-defined]
_set_h = Resources._h.__set__  # type: ignore[attr-defined]
_object_new = object.__new__


def _new(d: dict[Key, Value]) -> Resources:
    """Internal constructor: wraps an already-canonical dict without copying."""
    r = _object_new(Resources)
    _set_d(r, d)
    return r


EMPTY = Resources()
