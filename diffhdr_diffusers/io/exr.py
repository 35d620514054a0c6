"""Check an OpenEXR file's structure in Python before the ``openexr`` bindings read it.

The OpenEXR library reports damage by printing to the process's standard error (and its Python
bindings print warnings to standard output) before raising a generic error, or by returning what it
could read. This module makes its checks first and raises one :class:`ImageReadError` naming the
file: the header, the chunk offset table, every chunk's leader and size, and for the zlib
compressions (ZIP, ZIPS, PXR24) the complete compressed stream. For single-part scanline files,
the common case for radiance maps, a file that passes decodes without any output; tiled, deep and
multi-part files are checked up to their header.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import ImageReadError
from .formats import MAX_PIXELS

EXR_MAGIC = b"\x76\x2f\x31\x01"
TILED, LONG_NAMES, DEEP, MULTIPART = 0x200, 0x400, 0x800, 0x1000
LINES_PER_CHUNK = {0: 1, 1: 1, 2: 1, 3: 16, 4: 32, 5: 16, 6: 32, 7: 32, 8: 32, 9: 256}
"""Scanlines per chunk of each compression (NONE, RLE, ZIPS, ZIP, PIZ, PXR24, B44, B44A, DWAA, DWAB)."""
NONE, ZIPS, ZIP, PXR24 = 0, 2, 3, 5
SAMPLE_BYTES = {0: 4, 1: 2, 2: 4}  # UINT, HALF, FLOAT
PXR24_BYTES = {0: 4, 1: 2, 2: 3}  # PXR24 stores FLOAT as 24 bits before zlib


@dataclass(frozen=True)
class _Channel:
    pixel_type: int
    x_sampling: int
    y_sampling: int


@dataclass(frozen=True)
class ExrLayout:
    """What the header says: the data window, the compression and the channels."""

    x_min: int
    y_min: int
    width: int
    height: int
    compression: int
    channels: tuple[_Channel, ...]
    end: int  # offset of the first byte after the header


def _corrupt(path: Path, detail: str) -> ImageReadError:
    return ImageReadError(f"{path}: corrupt or truncated OpenEXR file ({detail}); re-export it.")


def _cstring(path: Path, data: bytes, position: int, limit: int) -> tuple[bytes, int]:
    end = data.find(b"\0", position, position + limit + 1)
    if end < 0:
        raise _corrupt(path, f"header is truncated or has an over-long name at byte {position}")
    return data[position:end], end + 1


def _channels(path: Path, value: bytes) -> tuple[_Channel, ...]:
    channels, position = [], 0
    while True:
        name, position = _cstring(path, value, position, 255)
        if not name:
            break
        if position + 16 > len(value):
            raise _corrupt(path, "channel list is truncated")
        pixel_type, _, x_sampling, y_sampling = struct.unpack_from("<iIii", value, position)
        if pixel_type not in SAMPLE_BYTES or x_sampling < 1 or y_sampling < 1:
            raise _corrupt(path, f"channel {name.decode(errors='replace')!r} has an invalid type or sampling")
        channels.append(_Channel(pixel_type, x_sampling, y_sampling))
        position += 16
    if not channels:
        raise _corrupt(path, "holds no channels")
    return tuple(channels)


def read_layout(path: Path, data: bytes) -> ExrLayout | None:
    """Parse the header; ``None`` for tiled, deep or multi-part files (checked by the bindings only)."""
    if not data.startswith(EXR_MAGIC):
        raise ImageReadError(f"{path}: not an OpenEXR file (bad magic number); re-export it.")
    if len(data) < 8:
        raise _corrupt(path, "file ends inside its header")
    (version,) = struct.unpack_from("<I", data, 4)
    if version & 0xFF != 2:
        raise _corrupt(path, f"unknown format version {version & 0xFF}")
    limit = 255 if version & LONG_NAMES else 31
    attributes, position = {}, 8
    while True:
        name, position = _cstring(path, data, position, limit)
        if not name:
            break
        kind, position = _cstring(path, data, position, limit)
        if position + 4 > len(data):
            raise _corrupt(path, "header is truncated")
        (size,) = struct.unpack_from("<i", data, position)
        position += 4
        if size < 0 or position + size > len(data):
            raise _corrupt(path, f"attribute {name.decode(errors='replace')!r} runs past the end of the file")
        attributes[name] = (kind, data[position : position + size])
        position += size
    if version & (TILED | DEEP | MULTIPART):
        return None
    for required, kind, size in ((b"channels", b"chlist", None), (b"compression", b"compression", 1), (b"dataWindow", b"box2i", 16)):
        found = attributes.get(required)
        if found is None or found[0] != kind or (size is not None and len(found[1]) != size):
            raise _corrupt(path, f"header lacks a valid {required.decode()} attribute")
    x_min, y_min, x_max, y_max = struct.unpack("<iiii", attributes[b"dataWindow"][1])
    width, height = x_max - x_min + 1, y_max - y_min + 1
    if width <= 0 or height <= 0 or width * height > MAX_PIXELS:
        raise _corrupt(path, f"data window of {width}x{height} pixels is invalid")
    compression = attributes[b"compression"][1][0]
    return ExrLayout(x_min, y_min, width, height, compression, _channels(path, attributes[b"channels"][1]), position)


def _count(start: int, stop: int, step: int) -> int:
    """How many multiples of ``step`` lie in ``[start, stop)``."""
    return -(-stop // step) - -(-start // step)


def _chunk_bytes(layout: ExrLayout, y: int, lines: int, sample_bytes: dict[int, int]) -> int:
    rows_end = min(y + lines, layout.y_min + layout.height)
    x_end = layout.x_min + layout.width
    return sum(
        _count(y, rows_end, channel.y_sampling) * _count(layout.x_min, x_end, channel.x_sampling)
        * sample_bytes[channel.pixel_type]
        for channel in layout.channels
    )


def _check_zlib(path: Path, packed: bytes, expected: int, chunk: int) -> None:
    stream = zlib.decompressobj()
    try:
        unpacked = stream.decompress(packed, expected + 1)
    except zlib.error as error:
        raise _corrupt(path, f"chunk {chunk} does not decompress ({error})") from None
    if not stream.eof or len(unpacked) != expected or stream.unconsumed_tail:
        raise _corrupt(path, f"chunk {chunk} decompresses to {len(unpacked)} bytes instead of {expected}")


def check_exr(path: Path, data: bytes) -> None:
    """Validate an OpenEXR file's structure; raise :class:`ImageReadError` naming ``path`` if it is damaged."""
    layout = read_layout(path, data)
    if layout is None or layout.compression not in LINES_PER_CHUNK:
        return
    lines = LINES_PER_CHUNK[layout.compression]
    count = -(-layout.height // lines)
    table_end = layout.end + 8 * count
    if table_end > len(data):
        raise _corrupt(path, "file ends inside its chunk table")
    offsets = struct.unpack_from(f"<{count}Q", data, layout.end)
    view = memoryview(data)
    for chunk, offset in enumerate(offsets):
        if offset < table_end or offset + 8 > len(data):
            raise _corrupt(path, f"chunk {chunk} lies outside the file (truncated)")
        y, size = struct.unpack_from("<ii", data, offset)
        expected_y = layout.y_min + chunk * lines
        raw = _chunk_bytes(layout, expected_y, lines, SAMPLE_BYTES)
        if y != expected_y or size <= 0 or size > raw or offset + 8 + size > len(data):
            raise _corrupt(path, f"chunk {chunk} has an invalid leader or is truncated")
        packed = view[offset + 8 : offset + 8 + size]
        if layout.compression == NONE and size != raw:
            raise _corrupt(path, f"chunk {chunk} holds {size} bytes instead of {raw}")
        if layout.compression in (ZIPS, ZIP) and size < raw:
            _check_zlib(path, packed, raw, chunk)
        if layout.compression == PXR24 and size < raw:
            _check_zlib(path, packed, _chunk_bytes(layout, expected_y, lines, PXR24_BYTES), chunk)
