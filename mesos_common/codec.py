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
from itertools import repeat
from typing import Any, Callable, Iterable, Union

import attrs
import msgpack

from mesos_common import messages
from mesos_common.resources import ResourceError, Resources

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 32


@attrs.frozen
class DecodeError:
    """Why a frame was rejected; `type` is the claimed message type when it could be read."""

    message: str
    type: str = ""


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
            raise e.at(f"[{len(out)}]")
    return tuple(out)


def _tuple_decoder(args: tuple[Any, ...]) -> Conv:
    if len(args) == 2 and args[1] is Ellipsis:
        item = _decoder(args[0])

        def seq(v: Any) -> tuple:
            if not isinstance(v, (list, tuple)):
                raise _Invalid(f"expected list, got {type(v).__name__}")
            return _converted(zip(repeat(item), v))
        return seq
    items = [_decoder(a) for a in args]

    def fixed(v: Any) -> tuple:
        if not isinstance(v, (list, tuple)) or len(v) != len(items):
            raise _Invalid(f"expected list of {len(items)}")
        return _converted(zip(items, v))
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
                raise e.at(".<key>")
            try:
                out[kk] = val(x)
            except _Invalid as e:
                raise e.at(f".{k}")
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
        if hints[name] in (str, str | None, typing.Optional[str]):
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
                raise e.at(f".{k}")
        if not required <= kwargs.keys():
            missing = required - kwargs.keys()
            raise _Invalid(f"missing field(s) {', '.join(sorted(missing))}")
        try:
            return cls(**kwargs)
        except (ValueError, TypeError) as e:
            raise _Invalid(str(e)) from None
    return record


def _record_encoder(cls: type) -> Callable[[Any], dict]:
    """Generated straight-line code per class: one getattr, one None test and (for nested
    records, tuples, dicts, Resources) one call per field; plain values are copied as is."""
    hints = typing.get_type_hints(cls)
    env: dict[str, Any] = {}
    lines = ["def record(v):", "    out = {}"]
    for i, f in enumerate(attrs.fields(cls)):
        enc = _encoder(hints[f.name])
        value = "x" if enc is _ident else f"e{i}(x)"
        env[f"e{i}"] = enc
        lines += [f"    x = v.{f.name}", "    if x is not None:", f"        out[{f.name!r}] = {value}"]
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
            return lambda v: [item(x) for x in v]
        return list
    if origin is dict:
        val = _encoder(args[1])
        return lambda v: {k: val(x) for k, x in v.items()}
    raise TypeError(f"codec cannot handle type {tp!r}")


_BY_NAME: dict[str, type] = {cls.__name__: cls for cls in messages.MESSAGE_TYPES}
_MSG_DECODERS: dict[str, Conv] = {name: _decoder(cls) for name, cls in _BY_NAME.items()}
_MSG_ENCODERS: dict[type, Callable[[Any], dict]] = {cls: _encoder(cls) for cls in messages.MESSAGE_TYPES}


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
        return conv(body)
    except _Invalid as e:
        return DecodeError(f"invalid {mtype}: {e}"[:500], mtype)
    except RecursionError:
        return DecodeError(f"invalid {mtype}: nested too deeply", mtype)
