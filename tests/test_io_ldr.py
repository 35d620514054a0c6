"""LDR reading and writing: bit depth, channel layouts, bad files."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import tifffile

from diffhdr_diffusers.errors import ImageReadError, InputError, OutputError
from diffhdr_diffusers.io import read_ldr, write_ldr


@pytest.fixture
def image():
    return np.random.default_rng(0).random((24, 32, 3)).astype(np.float32)


@pytest.mark.parametrize("name", ["x.tif", "x.tiff", "x.png"])
def test_16_bit_round_trip_keeps_every_code(tmp_path, image, name):
    codes = np.round(image.astype(np.float64) * 65535).astype(np.uint16)
    write_ldr(tmp_path / name, image, bits=16)
    read = read_ldr(tmp_path / name)
    assert read.dtype == np.float32 and read.shape == (24, 32, 3)
    np.testing.assert_array_equal(np.round(read.astype(np.float64) * 65535).astype(np.uint16), codes)
    # More than 256 distinct levels survive: the data really is 16-bit.
    assert len(np.unique(codes)) > 1000


@pytest.mark.parametrize("name", ["x.tif", "x.png"])
def test_8_bit_round_trip(tmp_path, image, name):
    write_ldr(tmp_path / name, image, bits=8)
    np.testing.assert_array_equal(read_ldr(tmp_path / name) * 255, np.round(image.astype(np.float64) * 255).astype(np.float32))


def test_16_bit_tiff_written_by_tifffile_is_full_depth(tmp_path):
    codes = np.arange(16 * 16 * 3, dtype=np.uint16).reshape(16, 16, 3) * 85
    tifffile.imwrite(tmp_path / "raw.tif", codes, photometric="rgb")
    np.testing.assert_array_equal(read_ldr(tmp_path / "raw.tif"), codes.astype(np.float32) / 65535)


def test_float_tiff_kept_and_out_of_range_rejected(tmp_path, image):
    tifffile.imwrite(tmp_path / "f.tif", image, photometric="rgb")
    np.testing.assert_array_equal(read_ldr(tmp_path / "f.tif"), image)
    tifffile.imwrite(tmp_path / "hdr.tif", image * 4, photometric="rgb")
    with pytest.raises(ImageReadError, match="outside"):
        read_ldr(tmp_path / "hdr.tif")
    bad = image.copy()
    bad[3, 3, 1] = np.nan
    tifffile.imwrite(tmp_path / "nan.tif", bad, photometric="rgb")
    with pytest.raises(ImageReadError, match="NaN"):
        read_ldr(tmp_path / "nan.tif")


def test_real_8_bit_jpeg_png_tiff(shared_data):
    brackets = shared_data / "real_brackets"
    for path, size in [
        (brackets / "pingpong" / "Img1.JPG", (1080, 1920)),
        (brackets / "horse" / "1.png", (690, 1024)),
        (brackets / "sculpture_garden" / "1.tif", (754, 1024)),
    ]:
        image = read_ldr(path)
        assert image.shape == (*size, 3) and image.dtype == np.float32
        assert 0.0 <= image.min() and image.max() <= 1.0
        # 8-bit data: every value is a multiple of 1/255.
        np.testing.assert_allclose(image[::50, ::50] * 255, np.round(image[::50, ::50] * 255), atol=1e-4)


def test_png_channel_order_is_rgb(tmp_path):
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0] = 255  # pure red
    cv2.imwrite(str(tmp_path / "red.png"), rgb[..., ::-1])
    assert read_ldr(tmp_path / "red.png")[0, 0].tolist() == [1.0, 0.0, 0.0]


@pytest.mark.parametrize("writer", ["png", "tif"])
def test_greyscale_replicated_to_rgb(tmp_path, writer):
    grey = np.arange(100, dtype=np.uint8).reshape(10, 10)
    path = tmp_path / f"g.{writer}"
    cv2.imwrite(str(path), grey) if writer == "png" else tifffile.imwrite(path, grey)
    image = read_ldr(path)
    assert image.shape == (10, 10, 3)
    np.testing.assert_array_equal(image[..., 0], grey / np.float32(255))
    np.testing.assert_array_equal(image[..., 0], image[..., 2])


def test_opaque_alpha_dropped_transparent_rejected(tmp_path):
    rgba = np.full((9, 9, 4), 255, np.uint8)
    rgba[..., :3] = 40
    cv2.imwrite(str(tmp_path / "opaque.png"), rgba)
    np.testing.assert_array_equal(read_ldr(tmp_path / "opaque.png"), np.full((9, 9, 3), 40 / np.float32(255)))
    rgba[0, 0, 3] = 10
    cv2.imwrite(str(tmp_path / "clear.png"), rgba)
    with pytest.raises(ImageReadError, match="flatten"):
        read_ldr(tmp_path / "clear.png")


def test_cmyk_tiff_rejected(tmp_path):
    tifffile.imwrite(tmp_path / "cmyk.tif", np.zeros((16, 16, 4), np.uint8), photometric="separated")
    with pytest.raises(ImageReadError, match="CMYK"):
        read_ldr(tmp_path / "cmyk.tif")


def test_tiny_image_rejected(tmp_path):
    tifffile.imwrite(tmp_path / "tiny.tif", np.zeros((7, 20, 3), np.uint16), photometric="rgb")
    with pytest.raises(InputError, match="20x7"):
        read_ldr(tmp_path / "tiny.tif")


@pytest.mark.parametrize("name", ["x.tif", "x.png", "x.jpg"])
@pytest.mark.parametrize("damage", ["missing", "empty", "truncated", "garbage"])
def test_bad_files_raise_image_read_error_naming_the_file(tmp_path, image, name, damage):
    path = tmp_path / name
    if name.endswith(".jpg"):
        cv2.imwrite(str(path), np.round(image * 255).astype(np.uint8))
    else:
        write_ldr(path, image)
    data = path.read_bytes()
    if damage == "missing":
        path.unlink()
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(b"\x00not an image" * 50)
    with pytest.raises(ImageReadError, match=name):
        read_ldr(path)


def test_write_ldr_refuses_overwrite_and_bad_input(tmp_path, image):
    path = write_ldr(tmp_path / "a.tif", image)
    before = path.read_bytes()
    with pytest.raises(OutputError, match="exists"):
        write_ldr(path, image * 0.5)
    assert path.read_bytes() == before
    write_ldr(path, image * 0.5, overwrite=True)
    assert path.read_bytes() != before
    with pytest.raises(InputError):
        write_ldr(tmp_path / "b.tif", np.full((8, 8, 3), np.nan))
    assert not (tmp_path / "b.tif").exists()
