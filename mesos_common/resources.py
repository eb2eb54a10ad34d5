"""Mesos ``Resources`` algebra: immutable, hashable bags of scalars, ranges and sets.

Kept flat because the allocator runs millions of ``contains``/``+``/``-``: one dict
keyed by ``(name, role)``; SCALAR values are ``int`` milli-units (Mesos fixed point,
so ``0.1 + 0.2 == 0.3``), RANGES a tuple of sorted, merged, disjoint inclusive
``(begin, end)`` pairs, SET a ``frozenset[str]``. No negative or empty entries are
ever stored, so dict equality *is* semantic equality.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

__all__ = ["EMPTY", "UNRESERVED", "ResourceError", "Resources", "format_ranges"]

Range = tuple[int, int]
Ranges = tuple[Range, ...]
Value = int | Ranges | frozenset[str]  # int milli-units | ranges | set items
Key = tuple[str, str]  # (name, role)

UNRESERVED = "*"
_MAX_SCALAR = 10**15
_MAP_ALWAYS = ("cpus", "gpus", "mem", "disk")
_TYPE_NAMES = {int: "SCALAR", tuple: "RANGES", frozenset: "SET"}
_FIELD = {"SCALAR": "scalar", "RANGES": "ranges", "SET": "set"}
_ENTRY_RE = re.compile(r"^([^\s:;()\[\]{},]+)\s*(?:\(([^()]*)\))?\s*:\s*(.*)$", re.S)
_NUMBER_RE = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
_RANGE_RE = re.compile(r"^(\d+)\s*-\s*(\d+)$")
_NAME_RE = re.compile(r"^[^\s()\[\]{};:,]+$")  # valid resource name or role


class ResourceError(ValueError):
    """Invalid resource text/JSON, or an operation mixing types under one name."""


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
    """Set difference of canonical range tuples in one linear two-pointer walk."""
    out: list[Range] = []
    j, m = 0, len(b)
    for s, e in a:
        while j < m and b[j][1] < s:
            j += 1
        k = j
        while k < m and b[k][0] <= e:
            if b[k][0] > s:
                out.append((s, b[k][0] - 1))
            s = b[k][1] + 1
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


def _format_value(v: Any) -> str:
    """Text for one value; scalars printed exactly from milli-units (no float detour)."""
    if type(v) is int:
        whole, frac = divmod(v, 1000)
        return str(whole) if not frac else f"{whole}.{frac:03d}".rstrip("0")
    return format_ranges(v) if type(v) is tuple else "{" + ", ".join(sorted(v)) + "}"


def _to_milli(value: Any, what: str) -> int:
    """Number -> milli-units, rounding half-up to 3 decimals like Mesos."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise ResourceError(f"{what}: scalar value must be a number, got {value!r}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ResourceError(f"{what}: scalar value must be finite")
        value = Decimal(repr(value))  # shortest repr is what the user meant: 0.1, not 0.1000...05
    if value < 0:
        raise ResourceError(f"{what}: scalar value must not be negative")
    if value > _MAX_SCALAR:  # Mesos stores int64 milli-units; also bounds Decimal work
        raise ResourceError(f"{what}: scalar value too large (max {_MAX_SCALAR})")
    if isinstance(value, int):
        return value * 1000
    return int((value * 1000).to_integral_value(rounding=ROUND_HALF_UP))


def _check_name(value: Any, what: str, field: str) -> str:
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise ResourceError(f"{what}: invalid {field} {value!r}")
    return value


def _combine(a: Any, b: Any, name: str) -> Value:
    """Sum two values of one name; a name has one type (as Mesos validation demands)."""
    t = type(a)
    if t is not type(b):
        raise ResourceError(f"resource '{name}' has conflicting types "
                            f"{_TYPE_NAMES[t]} and {_TYPE_NAMES[type(b)]}")
    return a + b if t is int else _merge(a + b) if t is tuple else a | b


def _build(entries: Iterable[tuple[str, str, Value]]) -> Resources:
    """Accumulate validated entries: repeated names add up, one type per name."""
    d: dict[Key, Any] = {}
    seen: dict[str, Any] = {}
    for name, role, v in entries:
        first = seen.setdefault(name, v)
        if type(first) is not type(v):
            _combine(first, v, name)  # raises the type-conflict error
        if v:
            k = (name, role)
            d[k] = _combine(d[k], v, name) if k in d else v
    return _new(d)


def _checked_ranges(pairs: Iterable[tuple[Any, Any]], what: str) -> Ranges:
    out = []
    for b, e in pairs:
        if not (type(b) is int and type(e) is int and 0 <= b <= e):  # bool is not int here
            raise ResourceError(f"{what}: invalid range {b}-{e} (need integers 0 <= begin <= end)")
        out.append((b, e))
    return _merge(out)


def _parse_value(raw: str, what: str) -> Value:
    if raw[:1] in ("[", "{"):
        close = "]" if raw[0] == "[" else "}"
        if not raw.endswith(close):
            raise ResourceError(f"{what}: missing closing '{close}'")
        inner = raw[1:-1].strip()
        toks = [t.strip() for t in inner.split(",")] if inner else []
        if close == "}":
            if not all(toks):
                raise ResourceError(f"{what}: set items must not be empty")
            return frozenset(toks)
        matches = [_RANGE_RE.match(tok) for tok in toks]
        if not all(matches):
            raise ResourceError(f"{what}: malformed range (want [begin-end, ...])")
        return _checked_ranges(((int(m[1]), int(m[2])) for m in matches), what)  # type: ignore[index]
    if not _NUMBER_RE.match(raw):
        raise ResourceError(f"{what}: scalar value must be a number")
    return _to_milli(Decimal(raw), what)


def _parse_text(text: str, default_role: str) -> Resources:
    entries = []
    for tok in filter(None, (t.strip() for t in text.split(";"))):
        what = f"invalid resource {tok!r}"
        m = _ENTRY_RE.match(tok)
        if not m:
            raise ResourceError(f"{what}: expected name[(role)]:value")
        role = default_role if m[2] is None else _check_name(m[2].strip(), what, "role")
        entries.append((m[1], role, _parse_value(m[3].strip(), what)))
    return _build(entries)


def _json_entry(i: int, item: Any, default_role: str) -> tuple[str, str, Value]:
    """Validate one protobuf-JSON resource object into (name, role, value)."""
    if not isinstance(item, dict):
        raise ResourceError(f"invalid resource JSON item {i}: must be an object")
    what = f"invalid resource JSON item {i} ({item.get('name')!r})"
    name, typ = _check_name(item.get("name"), what, "name"), item.get("type")
    if not isinstance(typ, str) or typ not in _FIELD:
        raise ResourceError(f"{what}: 'type' must be SCALAR, RANGES or SET, got {typ!r}")
    role = item.get("role", default_role)
    res = item.get("reservations")  # newer Mesos: stacked reservations, innermost last
    if res is not None:
        if not isinstance(res, list) or not all(isinstance(r, dict) for r in res):
            raise ResourceError(f"{what}: 'reservations' must be a list of objects")
        if any(r.get("type", "STATIC") not in ("STATIC", "DYNAMIC") for r in res):
            raise ResourceError(f"{what}: reservation type must be STATIC or DYNAMIC")
        role = res[-1].get("role") if res else role
    # Interned: names and roles repeat in every task and offer a master keeps.
    return (sys.intern(name), sys.intern(_check_name(role, what, "role")),
            _json_value(item, typ, what))


def _fast_json_entry(item: Any, default_role: str) -> tuple[str, str, Value] | None:
    """The common well-formed shapes (SCALAR, RANGES; no reservations) without building error
    texts or going through Decimal; None sends the item down the full validating path, which
    gives the same result or the error. A master decodes a TaskInfo's resources per launch."""
    if type(item) is not dict or "reservations" in item or "set" in item:
        return None
    name, typ, role = item.get("name"), item.get("type"), item.get("role", default_role)
    if type(name) is not str or type(role) is not str or not _NAME_RE.match(name) \
            or not _NAME_RE.match(role):
        return None
    if typ == "SCALAR" and "ranges" not in item:
        scalar = item.get("scalar")
        v = scalar.get("value") if type(scalar) is dict else None
        if type(v) is int and 0 <= v <= _MAX_SCALAR:
            return sys.intern(name), sys.intern(role), v * 1000
        if type(v) is float and 0.0 <= v <= 1e9:
            x = v * 1000  # within 1e-6 of an integer: exactly what half-up of repr gives
            n = round(x)
            if abs(x - n) < 1e-6:
                return sys.intern(name), sys.intern(role), n
        return None
    if typ == "RANGES" and "scalar" not in item:
        ranges = item.get("ranges")
        rs = ranges.get("range", []) if type(ranges) is dict else None
        if type(rs) is not list:
            return None
        out = []
        for r in rs:
            b, e = (r.get("begin"), r.get("end")) if type(r) is dict else (None, None)
            if not (type(b) is int and type(e) is int and 0 <= b <= e):
                return None
            out.append((b, e))
        return sys.intern(name), sys.intern(role), _merge(out)
    return None


def _json_value(item: Mapping[str, Any], typ: str, what: str) -> Value:
    for t, f in _FIELD.items():
        if t != typ and f in item:
            raise ResourceError(f"{what}: type {typ} but has a '{f}' field")
    field = item.get(_FIELD[typ])
    if not isinstance(field, dict):
        raise ResourceError(f"{what}: missing or non-object '{_FIELD[typ]}' field")
    if typ == "SCALAR":
        if "value" not in field:
            raise ResourceError(f"{what}: scalar has no 'value'")
        return _to_milli(field["value"], what)
    if typ == "SET":
        items = field.get("item", [])
        if not isinstance(items, list) or not all(isinstance(x, str) and x for x in items):
            raise ResourceError(f"{what}: 'set.item' must be a list of non-empty strings")
        return frozenset(items)
    rs = field.get("range", [])  # protobuf JSON omits empty repeated fields
    if not isinstance(rs, list):
        raise ResourceError(f"{what}: 'ranges.range' must be a list")
    return _checked_ranges(((r.get("begin"), r.get("end")) if isinstance(r, dict) else (r, None)
                            for r in rs), what)


class Resources:
    """Immutable multiset of Mesos resources keyed by (name, role).

    Mesos semantics: ``+`` merges, ``-`` removes what is present (never
    negative), ``contains`` is role-aware (reserved does not satisfy
    unreserved). Build via ``parse``/``from_json``/``from_scalars``.
    """

    __slots__ = ("_d", "_h")
    _d: dict[Key, Any]
    _h: int

    def __init__(self) -> None:
        """``Resources()`` is empty; use the factory classmethods otherwise."""
        _set_d(self, {})

    def __setattr__(self, name: str, *_: Any) -> None:
        raise AttributeError("Resources is immutable")

    __delattr__ = __setattr__

    def __reduce__(self) -> tuple[Any, ...]:
        return (_new, (dict(self._d),))

    # -- construction
    @classmethod
    def parse(cls, text: str, default_role: str = UNRESERVED) -> Resources:
        """Parse Mesos text (``cpus:4;ports:[1-2];cpus(ads):2;x:{a,b}``) or a JSON list."""
        if not isinstance(text, str):
            raise ResourceError(f"resources text must be a string, got {type(text).__name__}")
        _check_name(default_role, "invalid default role", "role")
        if text.lstrip().startswith("["):
            try:
                items = json.loads(text)
            except ValueError as exc:
                raise ResourceError(f"invalid resources JSON: {exc}") from exc
            return cls.from_json(items, default_role)
        return _parse_text(text, default_role)

    @classmethod
    def from_json(cls, items: list[dict[str, Any]], default_role: str = UNRESERVED) -> Resources:
        """Build from Mesos protobuf-JSON resource objects, validating strictly."""
        if not isinstance(items, list):
            raise ResourceError(f"resources JSON must be a list, got {type(items).__name__}")
        return _build([_fast_json_entry(item, default_role) or _json_entry(i, item, default_role)
                       for i, item in enumerate(items)])

    @classmethod
    def from_scalars(cls, **quantities: float) -> Resources:
        """Unreserved scalars, e.g. ``from_scalars(cpus=1, mem=128)``."""
        return _build((n, UNRESERVED, _to_milli(v, f"invalid resource {n!r}"))
                      for n, v in quantities.items())

    @classmethod
    def from_milli(cls, scalars: Mapping[Key, int]) -> Resources:
        """Scalars given exactly in milli-units per (name, role), e.g. amounts cut out of
        other Resources (`scalar_milli`): no text or Decimal round trip."""
        for (name, role), v in scalars.items():
            _check_name(name, "invalid resource name", "name")
            _check_name(role, f"invalid resource {name!r}", "role")
            if type(v) is not int or not 0 <= v <= _MAX_SCALAR * 1000:
                raise ResourceError(f"invalid resource {name!r}: milli-units must be an "
                                    f"integer in [0, {_MAX_SCALAR * 1000}], got {v!r}")
        return _build((n, r, v) for (n, r), v in scalars.items())

    @classmethod
    def empty(cls) -> Resources:
        return EMPTY

    # -- algebra: hot paths, kept branch-light with an int fast path
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
            cur: Any = d.get(k)
            if cur is None:
                d[k] = v
            elif type(cur) is int is type(v):
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
            cur: Any = d.get(k)
            t = type(v)
            if t is not type(cur):  # absent (None) or a type mismatch: nothing to remove
                continue
            r: Any = cur - v if t is not tuple else _ranges_sub(cur, v)
            if r and (t is not int or r > 0):
                d[k] = r
            else:
                del d[k]
        return _new(d)

    def contains(self, other: Resources) -> bool:
        """True iff ``other`` fits in ``self`` per (name, role)."""
        a = self._d
        for k, v in other._d.items():
            cur: Any = a.get(k)
            t = type(v)
            if t is int:
                if type(cur) is not int or cur < v:
                    return False
            elif t is not type(cur) or not (
                    v <= cur if t is frozenset else _ranges_contain(cur, v)):
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
            return self._h
        except AttributeError:  # computed lazily, cached in the slot
            h = hash(frozenset(self._d.items()))
            _set_h(self, h)
            return h

    def __bool__(self) -> bool:
        return bool(self._d)

    def __str__(self) -> str:
        return ";".join(f"{n if r == UNRESERVED else f'{n}({r})'}:{_format_value(v)}"
                        for (n, r), v in sorted(self._d.items()))

    def __repr__(self) -> str:
        """Text form; ``{}`` when empty so it stays visible in logs and assertions."""
        return str(self) or "{}"

    # -- queries (summed/merged over roles)
    def _of_type(self, name: str, t: type) -> list[Any]:
        return [v for (n, _), v in self._d.items() if n == name and type(v) is t]

    def scalar(self, name: str) -> float:
        milli: int = sum(self._of_type(name, int))
        return milli / 1000

    def scalar_milli(self, name: str) -> dict[str, int]:
        """Scalar `name` per role, in exact milli-units (what a task can be cut from)."""
        return {r: v for (n, r), v in self._d.items() if n == name and type(v) is int}

    def ranges(self, name: str) -> Ranges:
        vs = self._of_type(name, tuple)
        return vs[0] if len(vs) == 1 else _merge(r for v in vs for r in v)

    def set_items(self, name: str) -> frozenset[str]:
        return frozenset().union(*self._of_type(name, frozenset))

    def names(self) -> set[str]:
        return {n for n, _ in self._d}

    def quantities(self) -> dict[str, float]:
        """Scalars only, summed over roles (what DRF and quota care about)."""
        return {n: m / 1000 for n, m in self.milli_quantities().items()}

    def milli_quantities(self) -> dict[str, int]:
        """Like `quantities`, in exact integer milli-units (the allocator's sums)."""
        milli: dict[str, int] = {}
        for (n, _), v in self._d.items():
            if type(v) is int:
                milli[n] = milli.get(n, 0) + v
        return milli

    # -- roles
    def _filter(self, keep: Callable[[str], bool]) -> Resources:
        return _new({k: v for k, v in self._d.items() if keep(k[1])})

    def reserved(self, role: str | None = None) -> Resources:
        """Resources reserved to ``role``, or to any role when ``None``."""
        return self._filter((lambda r: r != UNRESERVED) if role is None else (lambda r: r == role))

    def unreserved(self) -> Resources:
        return self._filter(lambda r: r == UNRESERVED)

    def roles(self) -> set[str]:
        return {r for _, r in self._d}

    def allocatable_to(self, role: str) -> Resources:
        """What a framework in ``role`` may be offered: unreserved + its reservations."""
        return self._filter(lambda r: r in (UNRESERVED, role))

    def flatten(self, role: str = UNRESERVED) -> Resources:
        """Same quantities with every entry moved to ``role`` (e.g. for quota math)."""
        return _build((n, role, v) for (n, _), v in self._d.items())

    # -- serialisation
    def to_json(self) -> list[dict[str, Any]]:
        """Mesos protobuf-JSON list, sorted by (name, role); inverse of from_json."""
        out = []
        for (name, role), v in sorted(self._d.items()):
            t = type(v)
            body = ({"value": v / 1000} if t is int else
                    {"range": [{"begin": b, "end": e} for b, e in v]} if t is tuple else
                    {"item": sorted(v)})
            out.append({"name": name, "type": _TYPE_NAMES[t],
                        _FIELD[_TYPE_NAMES[t]]: body, "role": role})
        return out

    def to_map(self) -> dict[str, float | str]:
        """Flat form used by Mesos HTTP endpoints (``/state`` resource fields)."""
        out: dict[str, float | str] = dict.fromkeys(_MAP_ALWAYS, 0.0)
        out.update(self.quantities())
        for name in sorted(self.names() - out.keys()):
            rs = self.ranges(name)
            out[name] = _format_value(rs or self.set_items(name))
        return out

    # -- scheduling helpers
    def dominant_share(self, total: Resources) -> float:
        """DRF dominant share: max of self[n]/total[n] over scalars with total > 0."""
        tq = total.quantities()
        return max((v / tq[n] for n, v in self.quantities().items() if tq.get(n, 0) > 0),
                   default=0.0)

    def take_ports(self, count: int) -> tuple[list[int], Resources]:
        """Pick the ``count`` lowest ports; return them and matching Resources (roles kept)."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ResourceError(f"port count must be a non-negative integer, got {count!r}")
        segs = sorted((b, e, role) for (n, role), v in self._d.items()
                      if n == "ports" and type(v) is tuple for b, e in v)
        ports: list[int] = []
        taken: list[tuple[str, str, Value]] = []
        for b, e, role in segs:
            s = max(b, ports[-1] + 1 if ports else 0)  # skip ports another role already gave
            n = min(count - len(ports), e - s + 1)
            if n > 0:
                ports.extend(range(s, s + n))
                taken.append(("ports", role, ((s, s + n - 1),)))
        if len(ports) < count:
            raise ResourceError(f"need {count} ports but only {len(ports)} available")
        return ports, _build(taken)


_set_d = vars(Resources)["_d"].__set__  # slot setters bypass the raising __setattr__
_set_h = vars(Resources)["_h"].__set__
_object_new = object.__new__


def _new(d: dict[Key, Any]) -> Resources:
    """Internal constructor: wraps an already-canonical dict without copying."""
    r = _object_new(Resources)
    _set_d(r, d)
    return r


EMPTY = Resources()
