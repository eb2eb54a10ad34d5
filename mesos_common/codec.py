"""msgpack <-> messages, with strict validation.

`decode` never raises: a malformed frame, an unknown type or version, a missing, extra or
wrongly typed field all come back as a `DecodeError` value that the runtime logs and answers
with a ProtocolError. Converters are compiled once per class from its type hints, so the hot
path is a few dict lookups and calls per field.
"""
from __future__ import annotations

import types
import typing
from typing import Any, Callable, Union

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
    pass


Conv = Callable[[Any, str], Any]


def _check(kind: type | tuple[type, ...], name: str) -> Conv:
    def conv(v: Any, path: str) -> Any:
        if isinstance(v, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise _Invalid(f"{path}: expected {name}, got bool")
        if not isinstance(v, kind):
            raise _Invalid(f"{path}: expected {name}, got {type(v).__name__}")
        return v
    return conv


def _float(v: Any, path: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _Invalid(f"{path}: expected number, got {type(v).__name__}")
    return float(v)


def _resources(v: Any, path: str) -> Resources:
    if not isinstance(v, list):
        raise _Invalid(f"{path}: expected resource list, got {type(v).__name__}")
    try:
        return Resources.from_json(v)
    except (ResourceError, TypeError, ValueError, KeyError) as e:
        raise _Invalid(f"{path}: {e}") from None


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
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            inner = _decoder(non_none[0])
            return lambda v, p: None if v is None else inner(v, p)
        convs = [_decoder(a) for a in non_none]
        def union(v: Any, p: str) -> Any:
            for c in convs:
                try:
                    return c(v, p)
                except _Invalid:
                    continue
            raise _Invalid(f"{p}: unexpected {type(v).__name__}")
        return union
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            item = _decoder(args[0])
            def seq(v: Any, p: str) -> tuple:
                if not isinstance(v, (list, tuple)):
                    raise _Invalid(f"{p}: expected list, got {type(v).__name__}")
                return tuple(item(x, f"{p}[{i}]") for i, x in enumerate(v))
            return seq
        items = [_decoder(a) for a in args]
        def fixed(v: Any, p: str) -> tuple:
            if not isinstance(v, (list, tuple)) or len(v) != len(items):
                raise _Invalid(f"{p}: expected list of {len(items)}")
            return tuple(c(x, f"{p}[{i}]") for i, (c, x) in enumerate(zip(items, v)))
        return fixed
    if origin is dict:
        key, val = _decoder(args[0]), _decoder(args[1])
        def mapping(v: Any, p: str) -> dict:
            if not isinstance(v, dict):
                raise _Invalid(f"{p}: expected map, got {type(v).__name__}")
            return {key(k, f"{p}.<key>"): val(x, f"{p}.{k}") for k, x in v.items()}
        return mapping
    raise TypeError(f"codec cannot handle type {tp!r}")


def _record_decoder(cls: type) -> Conv:
    hints = typing.get_type_hints(cls)
    fields = attrs.fields(cls)
    convs = {f.name: _decoder(hints[f.name]) for f in fields}
    required = frozenset(f.name for f in fields if f.default is attrs.NOTHING)

    def record(v: Any, p: str) -> Any:
        if not isinstance(v, dict):
            raise _Invalid(f"{p}: expected map, got {type(v).__name__}")
        kwargs = {}
        for k, x in v.items():
            conv = convs.get(k)
            if conv is None:
                raise _Invalid(f"{p + ': ' if p else ''}unknown field {k!r}")
            kwargs[k] = conv(x, f"{p}.{k}" if p else k)
        missing = required - kwargs.keys()
        if missing:
            raise _Invalid(f"{p + ': ' if p else ''}missing field(s) {', '.join(sorted(missing))}")
        try:
            return cls(**kwargs)
        except (ValueError, TypeError) as e:
            raise _Invalid(f"{p + ': ' if p else ''}{e}") from None
    return record


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
        hints = typing.get_type_hints(tp)
        encs = [(f.name, _encoder(hints[f.name])) for f in attrs.fields(tp)]
        def record(v: Any) -> dict:
            out = {}
            for name, enc in encs:
                x = getattr(v, name)
                if x is not None:
                    out[name] = enc(x)
            return out
        return record
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


def encode(msg: Any) -> bytes:
    """Serialise a message; a non-message is our bug, so this may raise."""
    body = _MSG_ENCODERS[type(msg)](msg)
    body["type"] = type(msg).__name__
    body["v"] = messages.PROTOCOL_VERSION
    return msgpack.packb(body, use_bin_type=True)


def to_dict(obj: Any) -> Any:
    """Plain-data form of any message or record (for logs, JSON endpoints, checkpoints)."""
    return _encoder(type(obj))(obj)


def from_dict(cls: type, data: Any) -> Any:
    """Strictly rebuild a record from `to_dict` output; raises ValueError when invalid."""
    try:
        return _decoder(cls)(data, "")
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
        return conv(body, "")
    except _Invalid as e:
        return DecodeError(f"invalid {mtype}: {e}"[:500], mtype)
    except RecursionError:
        return DecodeError(f"invalid {mtype}: nested too deeply", mtype)
