"""Exposure values: exposure.txt variants, EXIF, times and ratios, validation."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from PIL import Image, TiffImagePlugin

from diffhdr_diffusers.errors import ExposureError
from diffhdr_diffusers.io import (
    exposures_from_exif,
    load_bracket,
    read_exposure_times_txt,
    read_exposure_txt,
    read_relative_exposures_txt,
    validate_exposures,
)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("-2\n0\n2\n", [-2.0, 0.0, 2.0]),
        ("0.0\n1.5\n+3\n", [0.0, 1.5, 3.0]),
        ("\n  -2.0  \r\n\n0\r\n2.5e0\n\n", [-2.0, 0.0, 2.5]),
        ("\ufeff0\n2\n4", [0.0, 2.0, 4.0]),
        ("0 # short\n2\n4 # long\n", [0.0, 2.0, 4.0]),
    ],
)
def test_exposure_txt_variants(tmp_path, text, expected):
    path = tmp_path / "exposure.txt"
    path.write_text(text, encoding="utf-8")
    assert read_exposure_txt(path) == expected


@pytest.mark.parametrize(
    "text, line",
    [("0\n2\nfour\n", 3), ("0\nnan\n4\n", 2), ("0\n2\ninf\n", 3), ("0,2,4\n", 1), ("1\n\n2 EV\n", 3)],
)
def test_exposure_txt_bad_line_named(tmp_path, text, line):
    path = tmp_path / "exposure.txt"
    path.write_text(text)
    with pytest.raises(ExposureError, match=rf"exposure\.txt, line {line}"):
        read_exposure_txt(path)


def test_exposure_txt_missing_or_empty(tmp_path):
    with pytest.raises(ExposureError, match="not found"):
        read_exposure_txt(tmp_path / "exposure.txt")
    (tmp_path / "exposure.txt").write_text("\n\n")
    with pytest.raises(ExposureError, match="no exposure"):
        read_exposure_txt(tmp_path / "exposure.txt")


def test_exposure_times_and_ratios(tmp_path):
    (tmp_path / "t.txt").write_text("1/250\n0.016\n1/1000\n")
    assert read_exposure_times_txt(tmp_path / "t.txt") == pytest.approx([-2.0, 0.0, -4.0])  # the middle (listed) frame is EV 0
    (tmp_path / "r.txt").write_text("1:2:8\n")
    assert read_relative_exposures_txt(tmp_path / "r.txt") == pytest.approx([-1.0, 0.0, 2.0])
    (tmp_path / "bad.txt").write_text("0.01\n0\n")
    with pytest.raises(ExposureError, match="positive"):
        read_exposure_times_txt(tmp_path / "bad.txt")


def test_real_exposure_files(shared_data):
    brackets = shared_data / "real_brackets"
    assert read_exposure_times_txt(brackets / "sculpture_garden" / "exposure_times.txt") == pytest.approx([-2, 0, 2])
    assert read_relative_exposures_txt(brackets / "horse" / "relative_exposures.txt") == pytest.approx([-1, 0, 1])


def test_exif_on_real_bracket(shared_data):
    folder = shared_data / "real_brackets" / "pingpong"
    exposures = exposures_from_exif([folder / f"Img{index}.JPG" for index in (1, 2, 3)])
    # 1/1000, 1/250 and 1/60 s at f/5, ISO 100.
    # The reference (middle) frame is EV 0, as a camera's -2/0/+2 bracket reads.
    assert exposures == pytest.approx([-2.0, 0.0, math.log2(250 / 60)])
    assert exposures[2] == pytest.approx(2.06, abs=0.01)
    # Relative to the reference (index N // 2), whatever the order.
    assert exposures_from_exif([folder / "Img3.JPG", folder / "Img1.JPG"]) == pytest.approx([math.log2(1000 / 60), 0.0])


def test_exif_missing_tells_to_give_exposures(shared_data):
    with pytest.raises(ExposureError, match="give the exposures in EV") as error:
        exposures_from_exif([shared_data / "real_brackets" / "horse" / "1.png"])
    assert "1.png" in str(error.value) and "--" not in str(error.value)  # no front end's flag in a library error


def _jpeg_with_exif(path, time, brightness=0.5, f_number=4.0, iso=100):
    """A real JPEG whose Exif IFD holds the exposure time, f-number and ISO (written by Pillow)."""
    exif = Image.Exif()
    exif_ifd = exif.get_ifd(0x8769)
    exif_ifd[0x829A] = TiffImagePlugin.IFDRational(Fraction(time).limit_denominator(100000))
    exif_ifd[0x829D] = f_number
    exif_ifd[0x8827] = iso
    Image.fromarray(np.full((16, 24, 3), round(brightness * 255), np.uint8)).save(path, exif=exif, quality=95)
    return path


def test_identical_exif_times_ask_for_explicit_exposures(tmp_path):
    paths = [_jpeg_with_exif(tmp_path / f"{name}.jpg", 1 / 100, level) for name, level in (("a", 0.2), ("b", 0.5), ("c", 0.8))]
    with pytest.raises(ExposureError, match=r"all exposures equal 0 EV.*give the exposures explicitly") as error:
        load_bracket(paths)
    assert "EXIF of a.jpg, b.jpg, c.jpg" in str(error.value) and "\n" not in str(error.value)
    _jpeg_with_exif(tmp_path / "c.jpg", 1 / 25, 0.8)
    with pytest.raises(ExposureError, match=r"a.jpg, b.jpg have the same exposure \(0 EV\).*explicitly"):
        load_bracket(paths)


def test_exif_contradicting_the_exposure_file_is_one_line_warning(tmp_path):
    for name, time, level in (("a", 1 / 400, 0.2), ("b", 1 / 100, 0.5), ("c", 1 / 25, 0.8)):
        _jpeg_with_exif(tmp_path / f"{name}.jpg", time, level)
    (tmp_path / "exposure.txt").write_text("-2\n0\n2\n")
    assert load_bracket(tmp_path).warnings == []  # agrees with the EXIF
    (tmp_path / "exposure.txt").write_text("-1\n0\n1\n")
    bracket = load_bracket(tmp_path)
    assert bracket.exposures == [-1, 0, 1]  # the file wins
    (warning,) = bracket.warnings
    assert "exposure.txt gives -1.00, +0.00, +1.00 EV" in warning and "EXIF of a.jpg, b.jpg, c.jpg" in warning
    assert "-2.00, +0.00, +2.00 EV" in warning and "\n" not in warning
    # EXIF alone orders and spaces the frames; ISO and aperture count too.
    _jpeg_with_exif(tmp_path / "c.jpg", 1 / 100, 0.8, f_number=2.0, iso=100)
    (tmp_path / "exposure.txt").unlink()
    assert load_bracket(tmp_path).exposures == pytest.approx([-2, 0, 2], abs=1e-3)


@pytest.mark.parametrize(
    "exposures, num_images, message",
    [
        ([0, 2, 4], 3, None),
        ([-2, 0, 2.5], 3, None),
        ((0.0, 1.0), 2, None),
        ([0, 2], 3, "2 exposures for 3 images"),
        ([0, 2, 4, 6], 3, "4 exposures for 3 images"),
        ([], 3, "0 exposures"),
        ([0, math.nan, 4], 3, "NaN or infinity"),
        ([0, 2, math.inf], 3, "NaN or infinity"),
        ([1, 1, 1], 3, "all exposures equal 1"),
        ([0, 2, 2], 3, "repeat a value"),
        (["0", "two", "4"], 3, "not all numbers"),
        ([0, 4, 2], 3, r"not increasing.*short to long.*positions 1, 3, 2.*\[0\.0, 2\.0, 4\.0\]"),
        ([4, 2, 0], 3, r"wrong order.*positions 3, 2, 1"),
    ],
)
def test_validate_exposures(exposures, num_images, message):
    if message is None:
        assert validate_exposures(exposures, num_images, "test") == [float(value) for value in exposures]
    else:
        with pytest.raises(ExposureError, match=message) as error:
            validate_exposures(exposures, num_images, "--exposures")
        assert str(error.value).startswith("--exposures")
