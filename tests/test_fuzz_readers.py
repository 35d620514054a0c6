"""Fuzz the readers with byte flips and truncations of real files: they return finite data or raise our error."""

from __future__ import annotations

import numpy as np
import OpenEXR
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diffhdr_diffusers.errors import ImageReadError, InputError
from diffhdr_diffusers.io import read_ldr, read_radiance, write_ldr, write_radiance

FUZZ_SETTINGS = settings(
    max_examples=80, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _write_half_exr(path, radiance, compression):
    header = {"compression": compression, "type": OpenEXR.scanlineimage}
    channels = {name: radiance[..., index].astype(np.float16) for index, name in enumerate("RGB")}
    with OpenEXR.File(header, channels) as exr:
        exr.write(str(path))


@pytest.fixture(scope="module")
def samples(shared_data, tmp_path_factory):
    """Small crops of the real radiance maps, saved in the formats the readers accept."""
    folder = tmp_path_factory.mktemp("fuzz_samples")
    real_hdr = shared_data / "real_hdr"
    desk = read_radiance(real_hdr / "Desk.exr")[400:432, 300:340]
    church = read_radiance(real_hdr / "nancy_church.hdr")[500:532, 300:340]
    _write_half_exr(folder / "half_zip.exr", desk, OpenEXR.ZIP_COMPRESSION)
    _write_half_exr(folder / "half_piz.exr", desk, OpenEXR.PIZ_COMPRESSION)
    write_radiance(folder / "float.exr", church)
    write_radiance(folder / "rle.hdr", church)
    tonemapped = church / (1.0 + church)
    write_ldr(folder / "sixteen.tif", tonemapped, bits=16)
    write_ldr(folder / "eight.png", tonemapped, bits=8)
    radiance_files = {name: (folder / name).read_bytes() for name in ("half_zip.exr", "half_piz.exr", "float.exr", "rle.hdr")}
    ldr_files = {name: (folder / name).read_bytes() for name in ("sixteen.tif", "eight.png")}
    return radiance_files, ldr_files


def _damage(data: bytes, flips: list[tuple[float, int]], keep: float | None) -> bytes:
    damaged = bytearray(data)
    for where, value in flips:
        damaged[int(where * (len(damaged) - 1))] ^= value
    if keep is not None:
        damaged = damaged[: int(keep * len(damaged))]
    return bytes(damaged)


damage = st.tuples(
    st.lists(st.tuples(st.floats(0, 1), st.integers(1, 255)), max_size=6),
    st.none() | st.floats(0, 1),
)


def _check(reader, path, allowed):
    try:
        image = reader(path)
    except allowed as error:
        assert path.name in str(error)
        return
    assert isinstance(image, np.ndarray) and image.dtype == np.float32
    assert image.ndim == 3 and image.shape[2] == 3
    assert np.isfinite(image).all()


def test_undamaged_samples_read(samples, tmp_path):
    radiance_files, ldr_files = samples
    for name, data in {**radiance_files, **ldr_files}.items():
        (tmp_path / name).write_bytes(data)
        reader = read_radiance if name in radiance_files else read_ldr
        assert reader(tmp_path / name).shape == (32, 40, 3)


@FUZZ_SETTINGS
@given(name=st.sampled_from(["half_zip.exr", "half_piz.exr", "float.exr", "rle.hdr"]), change=damage)
def test_radiance_reader_survives_damage(samples, tmp_path, name, change):
    path = tmp_path / name
    path.write_bytes(_damage(samples[0][name], *change))
    _check(read_radiance, path, ImageReadError)


@FUZZ_SETTINGS
@given(name=st.sampled_from(["sixteen.tif", "eight.png"]), change=damage)
def test_ldr_reader_survives_damage(samples, tmp_path, name, change):
    path = tmp_path / name
    path.write_bytes(_damage(samples[1][name], *change))
    # A flipped size field may also give an image below 8x8: that is our InputError.
    _check(read_ldr, path, (ImageReadError, InputError))
