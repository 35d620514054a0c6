"""Decoders never print: damage is one ImageReadError naming the file, valid oddities decode silently."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

import diffhdr_diffusers
from diffhdr_diffusers.errors import ImageReadError
from diffhdr_diffusers.io import read_ldr, write_ldr


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def test_no_reader_redirects_file_descriptors():
    source = "".join(path.read_text() for path in Path(diffhdr_diffusers.__file__).parent.rglob("*.py"))
    assert "dup2" not in source


def test_png_with_ancillary_problems_decodes_silently(tmp_path, capfd):
    path = write_ldr(tmp_path / "a.png", np.random.default_rng(0).random((16, 12, 3)), bits=16)
    data = path.read_bytes()
    gamma = _chunk(b"gAMA", struct.pack(">I", 45455))
    (tmp_path / "b.png").write_bytes(data[:33] + gamma + gamma + data[33:])  # libpng warns "gAMA: duplicate"
    capfd.readouterr()
    np.testing.assert_array_equal(read_ldr(tmp_path / "b.png"), read_ldr(path))
    assert capfd.readouterr() == ("", "")


@pytest.mark.parametrize("damage", ["truncate", "filter", "crc"])
def test_damaged_png_is_one_error_and_silent(tmp_path, capfd, damage):
    image = np.random.default_rng(1).random((16, 12, 3))
    data = bytearray(write_ldr(tmp_path / "a.png", image, bits=8).read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "filter":  # a valid stream whose first row has filter type 9: libpng's "bad adaptive filter"
        rows = b"".join(b"\x09" + bytes(36) for _ in range(16))
        data = bytearray(data[:33] + _chunk(b"IDAT", zlib.compress(rows)) + _chunk(b"IEND", b""))
    else:
        data[len(data) // 2] ^= 0xFF
    (tmp_path / "a.png").write_bytes(bytes(data))
    capfd.readouterr()
    with pytest.raises(ImageReadError, match="a.png: corrupt, truncated"):
        read_ldr(tmp_path / "a.png")
    assert capfd.readouterr() == ("", "")


def test_jpeg_damage_is_silent_and_content_decides_the_format(tmp_path, capfd):
    image = np.round(np.random.default_rng(2).random((16, 24, 3)) * 255).astype(np.uint8)
    assert cv2.imwrite(str(tmp_path / "a.jpg"), image)
    data = (tmp_path / "a.jpg").read_bytes()
    (tmp_path / "named.png").write_bytes(data)  # a JPEG with the wrong suffix still reads
    np.testing.assert_array_equal(read_ldr(tmp_path / "named.png"), read_ldr(tmp_path / "a.jpg"))
    garbled = bytearray(data)
    garbled[len(data) // 2 : len(data) // 2 + 64] = bytes(b ^ 0xFF for b in garbled[len(data) // 2 : len(data) // 2 + 64])
    (tmp_path / "b.jpg").write_bytes(bytes(garbled))  # libjpeg: "Corrupt JPEG data: premature end of data segment"
    (tmp_path / "c.jpg").write_bytes(data[: len(data) // 2])
    capfd.readouterr()
    try:
        assert read_ldr(tmp_path / "b.jpg").shape == (16, 24, 3)  # damaged entropy data decodes (no checksum)
    except ImageReadError as error:  # damaged tables do not
        assert "b.jpg" in str(error)
    with pytest.raises(ImageReadError, match="c.jpg: corrupt, truncated"):
        read_ldr(tmp_path / "c.jpg")
    assert capfd.readouterr() == ("", "")
