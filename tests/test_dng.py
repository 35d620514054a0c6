"""Linear DNG output, checked by independent readers: LibRaw (rawpy), tifffile and exifread."""

from __future__ import annotations

import exifread
import numpy as np
import pytest
import rawpy
import tifffile
from PIL import Image, TiffImagePlugin

from diffhdr_diffusers.errors import ImageReadError, InputError, OutputError
from diffhdr_diffusers.io import read_radiance, read_raw, write_dng, write_radiance

LIBRAW_FLOAT_WHITE = 16383  # LibRaw turns float DNG samples into 14-bit integers relative to the white level


@pytest.fixture(scope="module")
def radiance(shared_data):
    """A 128x192 crop of a real radiance map (Desk, OpenEXR samples): about 11 stops."""
    return read_radiance(shared_data / "real_hdr" / "Desk.exr")[300:428, 200:392]


def _linear(path, **options):
    with rawpy.imread(str(path)) as raw:
        assert raw.raw_type == rawpy.RawType.Stack  # LinearRaw: no mosaic
        return raw.postprocess(gamma=(1, 1), no_auto_bright=True, output_bps=16, use_camera_wb=True, user_flip=0,
                               output_color=rawpy.ColorSpace.sRGB, adjust_maximum_thr=0.0, **options).astype(np.float64)


def _baseline_exposure(path):
    with tifffile.TiffFile(path) as tiff:
        numerator, denominator = tiff.pages.first.tags[50730].value
        data = tiff.pages.first.pages[0].asarray()
    return numerator / denominator, data


def test_float_dng_round_trips(tmp_path, radiance):
    path = write_dng(tmp_path / "merged.dng", radiance)
    stops, data = _baseline_exposure(path)
    # tifffile: the stored floats times 2**BaselineExposure are our radiance, bit for bit.
    assert data.dtype == np.float32 and 0.5 < data.max() <= 1.0
    np.testing.assert_array_equal(data * np.float32(2.0**stops), radiance)
    # LibRaw: its linear output matches within 0.1 % plus its quantisation of float samples to 14 bits (and
    # its own rounding to 16-bit output): 1.5 steps of 1/16383 of the white level.
    linear = _linear(path) / 65535.0 * 2.0**stops
    scale = np.median(linear[radiance > 0.1 * radiance.max()] / radiance[radiance > 0.1 * radiance.max()])
    assert scale == pytest.approx(1.0, abs=2e-3)
    step = 2.0**stops / LIBRAW_FLOAT_WHITE
    assert np.all(np.abs(linear / scale - radiance) <= 0.001 * radiance + 1.5 * step)
    bright = radiance >= 2.0**stops / 16  # where LibRaw's 14 bits resolve 0.1 %
    assert bright.mean() > 0.02 and np.max(np.abs(linear / scale - radiance)[bright] / radiance[bright]) < 0.001


def test_16_bit_dng_round_trips_to_one_code(tmp_path, radiance):
    path = write_dng(tmp_path / "merged.dng", radiance, bits=16)
    stops, data = _baseline_exposure(path)
    codes = np.round(radiance / 2.0**stops * 65535.0)
    assert data.dtype == np.uint16 and np.array_equal(data, codes)
    with rawpy.imread(str(path)) as raw:
        assert raw.white_level == 65535
        np.testing.assert_array_equal(raw.raw_image[..., :3], codes)  # LibRaw decodes our codes exactly
    assert np.abs(_linear(path) - codes).max() <= 1.0  # and its linear output is within one code


def _jpeg_with_exif(path):
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112] = "TestMaker", "Test Camera 5", 6  # Make, Model, Orientation
    sub = exif.get_ifd(0x8769)
    sub[0x829A] = TiffImagePlugin.IFDRational(1, 250)  # ExposureTime
    sub[0x829D] = TiffImagePlugin.IFDRational(56, 10)  # FNumber
    sub[0x8827] = 400  # ISO
    sub[0x9003] = "2026:12:01 10:11:12"  # DateTimeOriginal
    sub[0x9291] = "42"  # SubSecTimeOriginal
    Image.fromarray(np.full((16, 16, 3), 128, np.uint8)).save(path, exif=exif)
    return path


def test_reference_exif_and_preview_round_trip(tmp_path, radiance):
    source = _jpeg_with_exif(tmp_path / "reference.jpg")
    path = write_dng(tmp_path / "merged.dng", radiance, exif_source=source)
    with path.open("rb") as handle:
        tags = {name: str(value) for name, value in exifread.process_file(handle, details=False).items()}
    assert tags["Image Make"] == "TestMaker" and tags["Image Model"] == "Test Camera 5"
    assert tags["Image Orientation"] == "Rotated 90 CW"
    assert tags["EXIF ExposureTime"] == "1/250" and tags["EXIF FNumber"] == "28/5"
    assert tags["EXIF ISOSpeedRatings"] == "400" and tags["EXIF DateTimeOriginal"] == "2026:12:01 10:11:12"
    assert tags["EXIF SubSecTimeOriginal"] == "42"
    with rawpy.imread(str(path)) as raw:  # LibRaw finds the same EXIF through the Exif IFD pointer
        assert raw.other.shutter_speed == pytest.approx(1 / 250) and raw.other.iso_speed == 400
        assert raw.other.aperture == pytest.approx(5.6)
        preview = raw.extract_thumb()
    assert preview.format == rawpy.ThumbFormat.BITMAP and preview.data.shape == (128, 192, 3)
    assert 20 < preview.data.mean() < 235  # a tonemapped picture, not black or white


def test_large_radiance_gets_a_small_preview(tmp_path):
    radiance = np.random.default_rng(0).random((300, 520, 3)).astype(np.float32) * 50
    with rawpy.imread(str(write_dng(tmp_path / "big.dng", radiance))) as raw:
        assert raw.extract_thumb().data.shape == (148, 256, 3)


def test_truncated_dng_is_one_line_error_from_our_reader(tmp_path, radiance, capfd):
    path = write_dng(tmp_path / "merged.dng", radiance)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    capfd.readouterr()
    with pytest.raises(ImageReadError, match=r"merged.dng: truncated RAW file .* copy it") as error:
        read_raw(path)
    assert "\n" not in str(error.value)
    assert capfd.readouterr() == ("", "")


def test_written_through_write_radiance_atomically(tmp_path, radiance):
    path = write_radiance(tmp_path / "merged.dng", radiance)
    assert _baseline_exposure(path)[1].dtype == np.float32
    with pytest.raises(OutputError, match="already exists"):
        write_radiance(path, radiance)
    bad = radiance.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        write_radiance(tmp_path / "bad.dng", bad)
    with pytest.raises(InputError, match="float32 .* or 16-bit"):
        write_dng(tmp_path / "bad.dng", radiance, bits=8)
    assert sorted(item.name for item in tmp_path.iterdir()) == ["merged.dng"]  # no partial output
