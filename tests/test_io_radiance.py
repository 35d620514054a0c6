"""Radiance maps (.hdr, .exr), previews and atomic, non-clobbering writes."""

from __future__ import annotations

import os

import cv2
import numpy as np
import OpenEXR
import pytest

from diffhdr_diffusers.errors import ImageReadError, InputError, OutputError
from diffhdr_diffusers.io import atomic_path, read_radiance, tonemap_preview, write_preview, write_radiance


@pytest.fixture
def radiance():
    rng = np.random.default_rng(1)
    return (rng.random((20, 28, 3)) * np.exp2(rng.uniform(-8, 8, (20, 28, 1)))).astype(np.float32)


def test_real_exr_half_files_read(shared_data):
    for path in sorted((shared_data / "real_hdr").glob("*.exr")):
        radiance = read_radiance(path)
        with OpenEXR.File(str(path), separate_channels=True) as exr:
            red = exr.channels()["R"].pixels
        assert red.dtype == np.float16, path
        assert radiance.dtype == np.float32 and radiance.shape == (*red.shape, 3)
        np.testing.assert_array_equal(radiance[..., 0], np.maximum(red.astype(np.float32), 0))
        assert np.isfinite(radiance).all() and radiance.min() >= 0
        assert radiance.max() / max(np.percentile(radiance, 1), 1e-6) > 2**5, "HDR data should span many stops"


def test_real_hdr_file_read(shared_data):
    radiance = read_radiance(shared_data / "real_hdr" / "nancy_church.hdr")
    assert radiance.shape == (1024, 768, 3) and radiance.dtype == np.float32
    assert radiance.max() > 1000 and radiance.min() > 0


def test_exr_float32_round_trip_is_exact(tmp_path, shared_data, radiance):
    real = read_radiance(shared_data / "real_hdr" / "Desk.exr")[100:164, 200:296]
    for name, data in [("real.exr", real), ("random.exr", radiance)]:
        write_radiance(tmp_path / name, data)
        np.testing.assert_array_equal(read_radiance(tmp_path / name), data)
    with OpenEXR.File(str(tmp_path / "random.exr"), separate_channels=True) as exr:
        assert exr.header()["compression"] == OpenEXR.ZIP_COMPRESSION
        assert exr.channels()["G"].pixels.dtype == np.float32


def test_exr_luminance_only_file_read_as_grey(tmp_path, radiance):
    luminance = radiance[..., 1].copy()
    with OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}, {"Y": luminance}) as exr:
        exr.write(str(tmp_path / "y.exr"))
    read = read_radiance(tmp_path / "y.exr")
    assert read.shape == (20, 28, 3)
    np.testing.assert_array_equal(read[..., 2], luminance)


def test_hdr_round_trip_within_rgbe_precision(tmp_path, shared_data, radiance):
    real = read_radiance(shared_data / "real_hdr" / "nancy_church.hdr")[300:364, 200:280]
    for name, data in [("real.hdr", real), ("random.hdr", radiance)]:
        write_radiance(tmp_path / name, data)
        read = read_radiance(tmp_path / name)
        # RGBE shares one exponent per pixel: error is below 1% of the pixel's largest channel.
        error = np.abs(read - data) / data.max(axis=-1, keepdims=True)
        assert error.max() < 0.01, name
    # A real RGBE file re-encodes to itself up to one mantissa step.
    np.testing.assert_allclose(read_radiance(tmp_path / "real.hdr"), real, rtol=0.01)


@pytest.mark.parametrize("writer", [write_radiance, write_preview])
@pytest.mark.parametrize("value", [np.nan, np.inf, -1.0])
def test_writers_reject_non_finite_and_negative(tmp_path, radiance, writer, value):
    radiance[5, 5, 0] = value
    path = tmp_path / ("x.png" if writer is write_preview else "x.exr")
    with pytest.raises(InputError, match=str(path.name)):
        writer(path, radiance)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["x.hdr", "x.exr", "x.png"])
def test_overwrite_refused_unless_asked(tmp_path, radiance, name):
    writer = write_preview if name.endswith(".png") else write_radiance
    path = writer(tmp_path / name, radiance)
    before = path.read_bytes()
    with pytest.raises(OutputError, match="overwrite"):
        writer(path, radiance * 2)
    assert path.read_bytes() == before
    writer(path, radiance * 0.01 + 1, overwrite=True)
    assert path.read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_missing_or_unwritable_output_folder(tmp_path, radiance):
    with pytest.raises(OutputError, match="does not exist"):
        write_radiance(tmp_path / "nope" / "x.exr", radiance)
    assert not (tmp_path / "nope").exists()
    (tmp_path / "folder.exr").mkdir()
    with pytest.raises(OutputError, match="is a folder"):
        write_radiance(tmp_path / "folder.exr", radiance, overwrite=True)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running with privileges that ignore folder permissions")
        with pytest.raises(OutputError, match="not writable"):
            write_radiance(locked / "x.exr", radiance)
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize("interruption", [RuntimeError("writer failed"), KeyboardInterrupt()])
def test_atomic_path_leaves_nothing_when_the_writer_raises(tmp_path, interruption):
    target = tmp_path / "out.exr"
    with pytest.raises(type(interruption)):
        with atomic_path(target) as temporary:
            assert temporary.parent == tmp_path and temporary.suffix == ".exr" and temporary != target
            temporary.write_bytes(b"half a file")
            raise interruption
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_keeps_the_old_file_when_overwrite_fails(tmp_path):
    target = tmp_path / "out.hdr"
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target, overwrite=True) as temporary:
            temporary.write_bytes(b"new but partial")
            raise KeyboardInterrupt
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.hdr"]
    with atomic_path(target, overwrite=True) as temporary:
        temporary.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.hdr"]


def test_atomic_path_refuses_a_file_that_appeared_meanwhile(tmp_path):
    target = tmp_path / "out.png"
    with pytest.raises(OutputError, match="exists"):
        with atomic_path(target) as temporary:
            temporary.write_bytes(b"mine")
            target.write_bytes(b"someone else's")
    assert target.read_bytes() == b"someone else's"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_preview_tonemap_properties(tmp_path, shared_data):
    radiance = read_radiance(shared_data / "real_hdr" / "StillLife.exr")[::3, ::3]
    preview = tonemap_preview(radiance)
    assert preview.dtype == np.uint8 and preview.shape == radiance.shape
    # Exposure-invariant: the operator normalises by a luminance percentile.
    np.testing.assert_allclose(tonemap_preview(radiance * 1000).astype(int), preview.astype(int), atol=1)
    # Monotone in luminance, and it uses the range without clipping most of the image.
    luminance = radiance @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    order = np.argsort(luminance.ravel())[:: max(1, luminance.size // 2000)]
    grey = preview.reshape(-1, 3).astype(int).sum(1)[order]
    assert np.corrcoef(np.arange(grey.size), grey)[0, 1] > 0.8
    assert (preview == 255).all(-1).mean() < 0.02 and preview.max() == 255
    assert 20 < preview.mean() < 200
    path = write_preview(tmp_path / "p.png", radiance)
    np.testing.assert_array_equal(cv2.imread(str(path))[..., ::-1], preview)


def test_read_radiance_missing_and_wrong_kind(tmp_path, shared_data):
    with pytest.raises(ImageReadError, match="not found"):
        read_radiance(tmp_path / "none.exr")
    fake = tmp_path / "fake.exr"
    fake.write_bytes((shared_data / "real_hdr" / "nancy_church.hdr").read_bytes()[:4000])
    with pytest.raises(ImageReadError, match="fake.exr"):
        read_radiance(fake)
