"""How the shared caches (disk, Redis) store values: JSON and Arrow IPC, never pickle.

A cache shared between processes reads bytes that something else wrote: another
user on the host, or whoever can reach the Redis server. Unpickling such bytes
runs whatever code they name, so these backends store data only:

``MAGIC`` + 4-byte big-endian header length + a JSON header + (for values that
hold a frame) one Arrow IPC stream of the frame, index included.

The header names the value's type from :data:`TYPES` (the dataclasses of the
retrievers) or ``json`` for plain JSON values, and carries the dataclass's
other fields (dates as ISO strings). Anything else -- a pickle, another
version's format, a truncated stream -- raises :class:`UnreadableValue`, which
the caches count as a miss. Extend by adding a dataclass to :data:`TYPES`
(its fields: at most one DataFrame, the rest JSON values or dates).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import struct

import pandas as pd

MAGIC = b"stockdag-cache/1\n"


class UnreadableValue(ValueError):
    """Bytes that are not a value this codec wrote (a pickle, another version, damage)."""


def TYPES() -> dict:
    """``{name: dataclass}`` of the values the shared caches hold."""
    from .base import NewsData, PriceData  # the types alone, not the retrievers

    return {"PriceData": PriceData, "NewsData": NewsData}


def _frame_bytes(frame: pd.DataFrame) -> bytes:
    import pyarrow as pa

    table = pa.Table.from_pandas(frame, preserve_index=True)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _frame(data: bytes) -> pd.DataFrame:
    import pyarrow as pa

    try:
        table = pa.ipc.open_stream(pa.py_buffer(data)).read_all()
        table.validate(full=True)
        return table.to_pandas()
    except (pa.ArrowException, ValueError, TypeError, KeyError) as exc:
        raise UnreadableValue(f"bad frame: {exc}") from None


def encode(value) -> bytes:
    """The bytes a shared cache stores for ``value`` (a registered dataclass or a JSON value)."""
    name = type(value).__name__
    if dataclasses.is_dataclass(value) and TYPES().get(name) is type(value):
        fields, frame = {}, b""
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            if isinstance(v, pd.DataFrame):
                fields[f.name], frame = {"frame": True}, _frame_bytes(v)
            elif isinstance(v, dt.date):
                fields[f.name] = {"date": v.isoformat()}
            else:
                fields[f.name] = {"value": v}
        header = {"type": name, "fields": fields}
    else:
        header, frame = {"type": "json", "value": value}, b""
    try:
        head = json.dumps(header, allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise TypeError(f"a shared cache cannot store {name}: {exc}") from None
    return MAGIC + struct.pack(">I", len(head)) + head + frame


def decode(data: bytes):
    """The value :func:`encode` stored; :class:`UnreadableValue` for any other bytes."""
    if not isinstance(data, (bytes, bytearray, memoryview)) or not bytes(data[: len(MAGIC)]) == MAGIC:
        raise UnreadableValue("not a stockdag cache value (another format, e.g. a pickle)")
    data = bytes(data)
    start = len(MAGIC) + 4
    if len(data) < start:
        raise UnreadableValue("truncated header")
    (n,) = struct.unpack(">I", data[len(MAGIC):start])
    try:
        header = json.loads(data[start:start + n])
    except ValueError as exc:
        raise UnreadableValue(f"bad header: {exc}") from None
    if not isinstance(header, dict):
        raise UnreadableValue("bad header")
    kind = header.get("type")
    if kind == "json":
        return header.get("value")
    cls = TYPES().get(kind)
    if cls is None or not isinstance(header.get("fields"), dict):
        raise UnreadableValue(f"unknown value type {kind!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for k, spec in header["fields"].items():
        if k not in names or not isinstance(spec, dict):
            raise UnreadableValue(f"{kind} has no field {k!r}")
        try:
            if spec.get("frame"):
                kwargs[k] = _frame(data[start + n:])
            elif "date" in spec:
                kwargs[k] = dt.date.fromisoformat(spec["date"])
            else:
                kwargs[k] = spec["value"]
        except (KeyError, TypeError, ValueError) as exc:
            raise UnreadableValue(f"bad field {k!r}: {exc}") from None
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise UnreadableValue(f"bad {kind}: {exc}") from None
