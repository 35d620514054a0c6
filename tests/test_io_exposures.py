"""Exposure values: exposure.txt variants, EXIF, times and ratios, validation."""

from __future__ import annotations

import math

import pytest

from diffhdr_diffusers.errors import ExposureError
from diffhdr_diffusers.io import (
    exposures_from_exif,
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


def test_exif_missing_tells_to_pass_exposures(shared_data):
    with pytest.raises(ExposureError, match="--exposures") as error:
        exposures_from_exif([shared_data / "real_brackets" / "horse" / "1.png"])
    assert "1.png" in str(error.value)


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
