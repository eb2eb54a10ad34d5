"""msgpack <-> messages, with strict validation.

`decode` never raises: a malformed frame, an unknown type or version, a missing, extra or
wrongly typed field all come back as a `DecodeError` value that the runtime logs and answers
with a ProtocolError. Converters are compiled once per class from its type hints, so the hot
path is a few dict lookups and calls per field.
"""
from __future__ import annotations

import sys
import threading
import types
import typing
from collections.abc import Callable, Iterable
from itertools import repeat
from typing import Any, Union

import attrs
import msgpack

from mesos_common import messages
from mesos_common.decode_error import DecodeError
from mesos_common.resources import ResourceError, Resources

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 32


class _Invalid(Exception):
    """A bad value; `where` collects the path (innermost last) as the error propagates up,
    so the hot path never formats a path string."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text
        self.where: list[str] = []

    def at(self, segment: str) -> _Invalid:
        self.where.append(segment)
        return self

    def __str__(self) -> str:
        path = "".join(reversed(self.where)).lstrip(".")
        return f"{path}: {self.text}" if path else self.text


Conv = Callable[[Any], Any]


def _check(kind: type, name: str) -> Conv:
    def conv(v: Any) -> Any:
        if type(v) is kind:  # the common case: exactly the type (bool is not an int here)
            return v
        if isinstance(v, bool) and kind is not bool:
            raise _Invalid(f"expected {name}, got bool")
        if not isinstance(v, kind):
            raise _Invalid(f"expected {name}, got {type(v).__name__}")
        return v
    return conv


def _float(v: Any) -> float:
    if type(v) is float:
        return v
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _Invalid(f"expected number, got {type(v).__name__}")
    return float(v)


def _resources(v: Any) -> Resources:
    if not isinstance(v, list):
        raise _Invalid(f"expected resource list, got {type(v).__name__}")
    try:
        return Resources.from_json(v)
    except (ResourceError, TypeError, ValueError, KeyError) as e:
        raise _Invalid(str(e)) from None


_decoders: dict[Any, Conv] = {}
_encoders: dict[Any, Callable[[Any], Any]] = {}


def _memo(table: dict[Any, Any], build: Callable[[Any], Any], tp: Any) -> Any:
    """The converter for `tp`, built once (unhashable type forms are just rebuilt)."""
    try:
        return table[tp]
    except KeyError:
        conv = table[tp] = build(tp)
        return conv
    except TypeError:
        return build(tp)


def _decoder(tp: Any) -> Conv:
    return _memo(_decoders, _build_decoder, tp)


def _build_decoder(tp: Any) -> Conv:
    if tp is str:
        return _check(str, "string")
    if tp is int:
        return _check(int, "integer")
    if tp is bool:
        return _check(bool, "boolean")
    if tp is float:
        return _float
    if tp is bytes:
        return _check(bytes, "bytes")
    if tp is Resources:
        return _resources
    if attrs.has(tp):
        return _record_decoder(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        return _union_decoder(args)
    if origin is tuple:
        return _tuple_decoder(args)
    if origin is dict:
        return _dict_decoder(_decoder(args[0]), _decoder(args[1]))
    raise TypeError(f"codec cannot handle type {tp!r}")


def _union_decoder(args: tuple[Any, ...]) -> Conv:
    non_none = [a for a in args if a is not type(None)]
    if len(non_none) == 1:
        inner = _decoder(non_none[0])
        return lambda v: None if v is None else inner(v)
    convs = [_decoder(a) for a in non_none]

    def union(v: Any) -> Any:
        for c in convs:
            try:
                return c(v)
            except _Invalid:
                continue
        raise _Invalid(f"unexpected {type(v).__name__}")
    return union


def _converted(pairs: Iterable[tuple[Conv, Any]]) -> tuple:
    """Each value through its converter; a bad one raises with its index in the path."""
    out = []
    for conv, x in pairs:
        try:
            out.append(conv(x))
        except _Invalid as e:
            raise e.at(f"[{len(out)}]") from None
    return tuple(out)


def _tuple_decoder(args: tuple[Any, ...]) -> Conv:
    if len(args) == 2 and args[1] is Ellipsis:
        item = _decoder(args[0])

        def seq(v: Any) -> tuple:
            if not isinstance(v, (list, tuple)):
                raise _Invalid(f"expected list, got {type(v).__name__}")
            return _converted(zip(repeat(item), v, strict=False))
        return seq
    items = [_decoder(a) for a in args]

    def fixed(v: Any) -> tuple:
        if not isinstance(v, (list, tuple)) or len(v) != len(items):
            raise _Invalid(f"expected list of {len(items)}")
        return _converted(zip(items, v, strict=True))
    return fixed


def _dict_decoder(key: Conv, val: Conv) -> Conv:
    def mapping(v: Any) -> dict:
        if not isinstance(v, dict):
            raise _Invalid(f"expected map, got {type(v).__name__}")
        out = {}
        for k, x in v.items():
            try:
                kk = key(k)
            except _Invalid as e:
                raise e.at(".<key>") from None
            try:
                out[kk] = val(x)
            except _Invalid as e:
                raise e.at(f".{k}") from None
        return out
    return mapping


# Fields whose values repeat across messages (states, sources, reasons, ids of agents and
# frameworks, hostnames): decoded strings are interned so that records the master keeps by the
# hundred thousand share one copy instead of each holding its own.
INTERNED_FIELDS = frozenset({"state", "source", "reason", "agent_id", "framework_id",
                             "hostname", "role", "type", "user", "version"})


def _interning(conv: Conv) -> Conv:
    def interned(v: Any) -> Any:
        v = conv(v)
        return sys.intern(v) if type(v) is str else v
    return interned


def _record_decoder(cls: type) -> Conv:
    hints = typing.get_type_hints(cls)
    fields = attrs.fields(cls)
    convs = {f.name: _decoder(hints[f.name]) for f in fields}
    for name in INTERNED_FIELDS & convs.keys():
        if hints[name] in (str, str | None):
            convs[name] = _interning(convs[name])
    required = frozenset(f.name for f in fields if f.default is attrs.NOTHING)

    def record(v: Any) -> Any:
        if type(v) is not dict:
            raise _Invalid(f"expected map, got {type(v).__name__}")
        kwargs = {}
        for k, x in v.items():
            conv = convs.get(k)
            if conv is None:
                raise _Invalid(f"unknown field {k!r}")
            try:
                kwargs[k] = conv(x)
            except _Invalid as e:
                raise e.at(f".{k}") from None
        if not required <= kwargs.keys():
            missing = required - kwargs.keys()
            raise _Invalid(f"missing field(s) {', '.join(sorted(missing))}")
        try:
            return cls(**kwargs)
        except (ValueError, TypeError) as e:
            raise _Invalid(str(e)) from None
    return record


# ---------------------------------------------------------------- fast decoders
#
# `decode` first tries a generated straight-line decoder per message class: one dict lookup
# and one exact-type test per field, positional construction, no error bookkeeping. Anything
# it does not like (a wrong type, a missing or unknown field, a failed validator, a list
# where a tuple was expected...) sends the frame through the strict decoders above, which
# either accept it or say exactly what is wrong. So the fast path decides nothing on its own:
# it may only accept what the strict path accepts, with the same result (a property test
# holds it to that), and every error text comes from one place.

_MISSING = object()
_EXACT = (str, int, bool, float, bytes)  # decoded as they are when the type is exactly this
_fast_decoders: dict[Any, Conv] = {}


class _NotFast(Exception):
    """The fast path gives up; the strict decoder takes over."""


def _fast(tp: Any) -> Conv:
    return _memo(_fast_decoders, _build_fast, tp)


def _build_fast(tp: Any) -> Conv:
    if attrs.has(tp):
        return _fast_record(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        if args[0] in _EXACT:
            return _plain_seq(args[0])
        item = _fast(args[0])

        def seq(v: Any) -> tuple:
            if type(v) is not list:
                raise _NotFast
            return tuple([item(x) for x in v])
        return seq
    if origin is dict and args[0] is str and args[1] in _EXACT:
        return _plain_mapping(args[1])
    return _decoder(tp)  # scalars, Resources, unions, other maps: the strict converter as is


def _plain_seq(kind: type) -> Conv:
    """A list of exactly `kind` values (roles, arguments) becomes a tuple in one copy."""
    def seq(v: Any) -> tuple:
        if type(v) is not list:
            raise _NotFast
        for x in v:
            if type(x) is not kind:
                raise _NotFast
        return tuple(v)
    return seq


def _plain_mapping(kind: type) -> Conv:
    """A map of strings to exactly `kind` values (environment, labels), copied in one go."""
    def mapping(v: Any) -> dict:
        if type(v) is not dict:
            raise _NotFast
        for k, x in v.items():
            if type(k) is not str or type(x) is not kind:
                raise _NotFast
        return dict(v)
    return mapping


def _optional_of(tp: Any) -> tuple[bool, Any]:
    """(True, X) for `X | None`, else (False, tp)."""
    if typing.get_origin(tp) in (Union, types.UnionType):
        args = typing.get_args(tp)
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1 and len(args) == 2:
            return True, rest[0]
    return False, tp


def _fast_record(cls: type) -> Conv:
    """Generated code: exact types pass as they are (the strict converter is called only for
    others, e.g. an int where a float goes), interned fields interned, defaults filled in,
    the class called positionally (its validators run as usual)."""
    hints = typing.get_type_hints(cls)
    fields = attrs.fields(cls)
    if not all(f.init and not f.kw_only for f in fields):
        return _record_decoder(cls)
    env: dict[str, Any] = {"_NotFast": _NotFast, "_M": _MISSING, "cls": cls,
                           "_intern": sys.intern, "FIELDS": frozenset(f.name for f in fields)}
    lines = ["def record(v):",
             "    if type(v) is not dict or not v.keys() <= FIELDS:",
             "        raise _NotFast"]
    for i, f in enumerate(fields):
        x = f"x{i}"
        lines.append(f"    {x} = v.get({f.name!r}, _M)")
        default = f.default
        if default is attrs.NOTHING:
            lines.append(f"    if {x} is _M: raise _NotFast")
        elif isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            if default.takes_self:
                return _record_decoder(cls)
            env[f"f{i}"] = default.factory
            lines.append(f"    if {x} is _M: {x} = f{i}()")
        else:
            env[f"d{i}"] = default
            lines.append(f"    if {x} is _M: {x} = d{i}")
        optional, base = _optional_of(hints[f.name])
        if base in _EXACT:
            env[f"c{i}"] = _decoder(base)
            test = f"type({x}) is not {base.__name__}"
            lines.append(f"    elif {f'{x} is not None and ' if optional else ''}{test}: "
                         f"{x} = c{i}({x})")
            if base is str and f.name in INTERNED_FIELDS:
                lines.append(f"    if type({x}) is str: {x} = _intern({x})")
        else:
            env[f"c{i}"] = _fast(base)
            lines.append(f"    elif {x} is not None: {x} = c{i}({x})" if optional
                         else f"    else: {x} = c{i}({x})")
    lines.append(f"    return cls({', '.join(f'x{i}' for i in range(len(fields)))})")
    exec("\n".join(lines), env)  # noqa: S102 - code built from attrs field names only
    return env["record"]


def _record_encoder(cls: type, only: Iterable[str] | None = None) -> Callable[[Any], dict]:
    """Generated straight-line code per class: one getattr, one None test and (for nested
    records, tuples, dicts, Resources) one call per field; plain values are copied as is.
    `only`: just those fields (still in field order)."""
    hints = typing.get_type_hints(cls)
    env: dict[str, Any] = {}
    lines = ["def record(v):", "    out = {}"]
    wanted = None if only is None else frozenset(only)
    for i, f in enumerate(attrs.fields(cls)):
        if wanted is not None and f.name not in wanted:
            continue
        enc = _encoder(hints[f.name])
        value = "x" if enc is _ident else f"e{i}(x)"
        env[f"e{i}"] = enc
        lines += [f"    x = v.{f.name}", "    if x is not None:",
                  f"        out[{f.name!r}] = {value}"]
    lines.append("    return out")
    exec("\n".join(lines), env)  # noqa: S102 - code built from attrs field names only
    return env["record"]


def _encoder(tp: Any) -> Callable[[Any], Any]:
    return _memo(_encoders, _build_encoder, tp)


def _ident(v: Any) -> Any:
    return v


def _build_encoder(tp: Any) -> Callable[[Any], Any]:
    if tp in (str, int, bool, float, bytes):
        return _ident
    if tp is Resources:
        return lambda r: r.to_json()
    if attrs.has(tp):
        return _record_encoder(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return _encoder(non_none[0])
        return _ident  # unions here are of plain scalars (str | float)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            item = _encoder(args[0])
            return list if item is _ident else lambda v: [item(x) for x in v]
        return list
    if origin is dict:
        val = _encoder(args[1])  # plain values (environment, labels): one copy in C
        return dict if val is _ident else lambda v: {k: val(x) for k, x in v.items()}
    raise TypeError(f"codec cannot handle type {tp!r}")


_BY_NAME: dict[str, type] = {cls.__name__: cls for cls in messages.MESSAGE_TYPES}
_MSG_DECODERS: dict[str, Conv] = {name: _decoder(cls) for name, cls in _BY_NAME.items()}
_MSG_FAST: dict[str, Conv] = {name: _fast(cls) for name, cls in _BY_NAME.items()}
_MSG_ENCODERS: dict[type, Callable[[Any], dict]] = {cls: _encoder(cls)
                                                   for cls in messages.MESSAGE_TYPES}


_FIELDLESS: dict[type, bytes] = {
    cls: msgpack.packb({"type": cls.__name__, "v": messages.PROTOCOL_VERSION})
    for cls in messages.MESSAGE_TYPES if not attrs.fields(cls)}
_local = threading.local()  # one msgpack.Packer per thread (packb builds one per call)


def encode(msg: Any) -> bytes:
    """Serialise a message; a non-message is our bug, so this may raise."""
    cached = _FIELDLESS.get(type(msg))
    if cached is not None:  # Heartbeat: a master sends 10k of them per interval
        return cached
    body = _MSG_ENCODERS[type(msg)](msg)
    body["type"] = type(msg).__name__
    body["v"] = messages.PROTOCOL_VERSION
    try:
        packer = _local.packer
    except AttributeError:
        packer = _local.packer = msgpack.Packer(use_bin_type=True)
    return packer.pack(body)


def to_dict(obj: Any) -> Any:
    """Plain-data form of any message or record (for logs, JSON endpoints, checkpoints)."""
    return _encoder(type(obj))(obj)


def fields_to_dict(cls: type, fields: Iterable[str]) -> Callable[[Any], dict]:
    """`to_dict` of a `cls` record restricted to `fields` (in field order, None left out as
    there): for callers that encode a record's unchanging part once and the rest each time."""
    names = tuple(fields)
    unknown = set(names) - {f.name for f in attrs.fields(cls)}
    if unknown:
        raise ValueError(f"{cls.__name__} has no field(s) {', '.join(sorted(unknown))}")
    return _record_encoder(cls, names)


def from_dict(cls: type, data: Any) -> Any:
    """Strictly rebuild a record from `to_dict` output; raises ValueError when invalid."""
    try:
        return _decoder(cls)(data)
    except _Invalid as e:
        raise ValueError(str(e)) from None


def decode(frame: bytes) -> Any:
    """A message, or a DecodeError saying what was wrong. Never raises."""
    if len(frame) > MAX_MESSAGE_BYTES:
        return DecodeError(f"frame of {len(frame)} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        body = msgpack.unpackb(frame, raw=False, strict_map_key=True,
                               max_bin_len=MAX_MESSAGE_BYTES, max_str_len=MAX_MESSAGE_BYTES)
    except Exception as e:  # msgpack raises many kinds for garbage input
        return DecodeError(f"malformed frame: {type(e).__name__}: {e}"[:300])
    if not isinstance(body, dict):
        return DecodeError(f"frame is a {type(body).__name__}, expected a map")
    mtype = body.pop("type", None)
    version = body.pop("v", None)
    if not isinstance(mtype, str):
        return DecodeError("frame has no string 'type'")
    conv = _MSG_DECODERS.get(mtype)
    if conv is None:
        return DecodeError(f"unknown message type {mtype[:80]!r}", mtype[:80])
    if version != messages.PROTOCOL_VERSION:
        return DecodeError(f"unsupported version {version!r} for {mtype}", mtype)
    try:
        return _MSG_FAST[mtype](body)
    except Exception:  # noqa: BLE001 - whatever it was, the strict decoder judges the frame
        pass
    try:
        return conv(body)
    except _Invalid as e:
        return DecodeError(f"invalid {mtype}: {e}"[:500], mtype)
    except RecursionError:
        return DecodeError(f"invalid {mtype}: nested too deeply", mtype)
