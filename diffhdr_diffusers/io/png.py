"""Check a PNG's structure in Python before OpenCV's libpng sees it, so libpng never prints.

libpng reports problems by printing ``libpng error: ...`` or ``libpng warning: ...`` to the process's
standard error, which no Python code can catch. Every check it would make of a file's structure is
made here first (chunk layout and CRCs, the header, the complete zlib stream with its Adler-32, the
size of the pixel data and each row's filter byte), and raises one :class:`ImageReadError` naming
the file. The decoder then gets only the chunks it needs (ancillary chunks such as ``iCCP`` or
``tEXt``, which OpenCV ignores, are the source of libpng's warnings on valid files).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ImageReadError
from .formats import MAX_PIXELS

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
KEPT_CHUNKS = frozenset({b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND"})
BIT_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
_PIECE = 1 << 22  # decompressed bytes checked at a time


@dataclass(frozen=True)
class _Header:
    width: int
    height: int
    bits_per_pixel: int
    colour_type: int
    interlaced: bool


def _corrupt(path: Path, detail: str) -> ImageReadError:
    return ImageReadError(f"{path}: corrupt, truncated or not a supported image (PNG {detail}); re-export the file.")


def _header(path: Path, body: bytes) -> _Header:
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(">IIBBBBB", body)
    if not (0 < width < 2**31 and 0 < height < 2**31) or width * height > MAX_PIXELS:
        raise _corrupt(path, f"header gives an invalid size {width}x{height}")
    if depth not in BIT_DEPTHS.get(colour, ()) or compression or filtering or interlace > 1:
        raise _corrupt(path, f"header is invalid (bit depth {depth}, colour type {colour})")
    return _Header(width, height, depth * CHANNELS[colour], colour, interlace == 1)


def _chunks(path: Path, data: bytes):
    """Yield ``(type, start, end)`` of every chunk up to IEND, checking lengths, names and CRCs."""
    if not data.startswith(PNG_SIGNATURE):
        raise _corrupt(path, "signature is missing")
    position = len(PNG_SIGNATURE)
    while True:
        if position + 12 > len(data):
            raise _corrupt(path, "file ends before its IEND chunk")
        length, kind = struct.unpack_from(">I4s", data, position)
        end = position + 12 + length
        if not kind.isalpha() or not kind.isascii():
            raise _corrupt(path, f"chunk name {kind!r} at byte {position + 4} is invalid")
        if length >= 2**31 or end > len(data):
            raise _corrupt(path, f"{kind.decode()} chunk runs past the end of the file")
        (crc,) = struct.unpack_from(">I", data, end - 4)
        if zlib.crc32(data[position + 4 : end - 4]) != crc:
            raise _corrupt(path, f"{kind.decode()} chunk fails its CRC check")
        yield kind, position, end
        if kind == b"IEND":
            return
        position = end


def _row_starts(header: _Header) -> tuple[np.ndarray, int]:
    """Offsets of every row's filter byte in the decompressed stream, and the stream's length."""
    passes = ADAM7 if header.interlaced else ((0, 0, 1, 1),)
    starts, total = [], 0
    for x0, y0, dx, dy in passes:
        width = max(0, -(-(header.width - x0) // dx))
        height = max(0, -(-(header.height - y0) // dy))
        if width == 0 or height == 0:
            continue
        row = 1 + (width * header.bits_per_pixel + 7) // 8
        starts.append(total + np.arange(height, dtype=np.int64) * row)
        total += height * row
    return np.concatenate(starts), total


def _inflate(path: Path, idat: list[memoryview]):
    """Yield the decompressed pixel stream in pieces; raise if it is damaged, unfinished or followed by data."""
    stream = zlib.decompressobj()
    try:
        for piece in idat:
            if stream.eof and len(piece):
                raise _corrupt(path, "holds data after the end of its pixel stream")
            while len(piece) and not stream.eof:
                yield stream.decompress(piece, _PIECE)
                piece = stream.unconsumed_tail
        while not stream.eof:
            output = stream.decompress(b"", _PIECE)
            if not output:
                raise _corrupt(path, "pixel data is truncated")
            yield output
    except zlib.error as error:
        raise _corrupt(path, f"pixel data does not decompress ({error})") from None
    if stream.unused_data:
        raise _corrupt(path, "holds data after the end of its pixel stream")


def _check_pixels(path: Path, header: _Header, idat: list[memoryview]) -> None:
    """The stream must hold exactly the rows the header announces, each with a valid filter type (0 to 4)."""
    starts, expected = _row_starts(header)
    produced = 0
    for output in _inflate(path, idat):
        if produced + len(output) > expected:
            raise _corrupt(path, "holds more pixel data than its size needs")
        first, last = np.searchsorted(starts, [produced, produced + len(output)])
        filters = np.frombuffer(output, np.uint8)[starts[first:last] - produced]
        if filters.size and filters.max() > 4:
            raise _corrupt(path, "pixel rows have invalid filter types")
        produced += len(output)
    if produced != expected:
        raise _corrupt(path, f"pixel data is truncated ({produced} of {expected} bytes)")


def clean_png(path: Path, data: bytes) -> bytes:
    """Validate the PNG ``data`` completely; return it holding only the chunks the decoder needs.

    Raises :class:`ImageReadError` naming ``path`` for anything libpng would reject or warn about in
    the chunks kept, and for unknown critical chunks.
    """
    header, kept, idat, after_idat = None, [PNG_SIGNATURE], [], False
    view = memoryview(data)
    for kind, start, end in _chunks(path, data):
        if header is None:
            if kind != b"IHDR" or end - start != 25:
                raise _corrupt(path, "does not start with its IHDR header")
            header = _header(path, data[start + 8 : start + 21])
        elif kind == b"IHDR":
            raise _corrupt(path, "holds two IHDR headers")
        if kind == b"IDAT":
            if after_idat:
                raise _corrupt(path, "IDAT chunks are not consecutive")
            idat.append(view[start + 8 : end - 4])
        elif idat:
            after_idat = True
        if kind not in KEPT_CHUNKS:
            if kind[0] & 0x20 == 0:  # a critical chunk (upper-case first letter) that no decoder here knows
                raise ImageReadError(f"{path}: PNG holds an unknown critical chunk {kind.decode()}; re-export the file.")
            continue
        if kind in (b"PLTE", b"tRNS") and idat:
            raise _corrupt(path, f"{kind.decode()} chunk follows the pixel data")
        kept.append(data[start:end])
    if not idat:
        raise _corrupt(path, "holds no pixel data")
    if header.colour_type == 3 and not any(chunk[4:8] == b"PLTE" for chunk in kept[1:]):
        raise _corrupt(path, "palette image has no PLTE chunk")
    _check_pixels(path, header, idat)
    return b"".join(kept)
