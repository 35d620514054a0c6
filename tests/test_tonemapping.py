"""Tone mapping (natural, global, none) and the photo writers (JPEG, 8/16-bit PNG and TIFF with EXIF and sRGB ICC)."""

from __future__ import annotations

import cv2
import exifread
import numpy as np
import pytest
from PIL import Image

from diffhdr_diffusers.errors import InputError, OutputError
from diffhdr_diffusers.io import read_ldr, read_radiance, tonemap_preview, write_preview
from diffhdr_diffusers.io.photo import read_photo_settings, srgb_icc_profile, write_photo, write_tonemapped
from diffhdr_diffusers.tonemapping import luminance, srgb_decode, srgb_encode, to_bits, tonemap, tonemap_settings

OPERATORS = ("natural", "global", "none")


def _log_gradient(luminance_map: np.ndarray) -> np.ndarray:
    log_luminance = np.log2(np.maximum(luminance_map, 1e-6))
    return np.hypot(*np.gradient(log_luminance))


def _window_scene(size: int = 96, stops: float = 10.0) -> np.ndarray:
    """A textured dark room with a textured window ``stops`` brighter in its middle (linear radiance)."""
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.normal(size=(size, size)).astype(np.float32), (0, 0), 1.5)
    radiance = np.exp2(0.8 * texture / texture.std())
    radiance[size // 4: 3 * size // 4, size // 4: 3 * size // 4] *= 2.0**stops
    colour = np.array([1.0, 0.8, 0.6], np.float32)
    return (radiance[..., None] * colour).astype(np.float32)


@pytest.mark.parametrize("operator", OPERATORS)
def test_every_operator_gives_srgb_floats_in_range(operator):
    radiance = _window_scene()
    image = tonemap(radiance, operator)
    assert image.dtype == np.float32 and image.shape == radiance.shape
    assert 0.0 <= image.min() and image.max() <= 1.0
    brighter = tonemap(radiance, operator, exposure=1.0)
    assert brighter.mean() > image.mean()
    grey = tonemap(radiance, operator, saturation=0.0)
    np.testing.assert_allclose(grey[..., 0], grey[..., 2], atol=1e-5)


def test_none_is_clip_and_srgb_and_curves_invert():
    radiance = _window_scene() * np.float32(2.0**-8)
    expected = srgb_encode(np.clip(radiance * 2.0, 0.0, 1.0))
    np.testing.assert_array_equal(tonemap(radiance, "none", exposure=1.0), expected)
    values = np.linspace(0, 1, 1001, dtype=np.float32)
    np.testing.assert_allclose(srgb_decode(srgb_encode(values)), values, atol=2e-6)
    assert abs(float(srgb_encode(np.float32(0.18))) - 0.4613) < 1e-3


@pytest.mark.parametrize("operator", ["natural", "global"])
def test_auto_exposure_ignores_the_absolute_scale(operator):
    radiance = _window_scene()
    np.testing.assert_allclose(tonemap(radiance * 1000.0, operator), tonemap(radiance, operator), atol=2e-3)


def test_natural_keeps_detail_in_window_and_room_where_global_loses_the_room():
    radiance = _window_scene()
    window = np.zeros(radiance.shape[:2], bool)
    window[30:66, 30:66] = True
    room = np.zeros_like(window)
    room[4:20, 4:92] = True
    source = _log_gradient(luminance(radiance))

    def kept(image, region):
        return _log_gradient(luminance(srgb_decode(image)))[region].mean() / source[region].mean()

    natural, global_ = tonemap(radiance, "natural"), tonemap(radiance, "global")
    assert kept(natural, window) > 0.6 and kept(natural, room) > 0.6
    black = np.all(natural <= 0.02, axis=-1).mean()
    white = np.all(natural >= 0.98, axis=-1).mean()
    assert black + white < 0.05
    # A global curve puts the room ten stops down, near black, where its detail drowns in quantisation.
    assert np.all(to_bits(global_)[room] <= 12, axis=-1).mean() > 0.5
    assert np.all(to_bits(natural)[room] <= 12, axis=-1).mean() < 0.05
    flat, strong = tonemap(radiance, detail=0.5), tonemap(radiance, detail=2.0)
    assert kept(flat, room) < kept(natural, room) < kept(strong, room)


@pytest.mark.parametrize("operator", ["natural", "global"])
def test_step_edge_has_no_halo(operator):
    """A 10-stop step: the output stays within its far plateaus (overshoot under 5 % of the step)."""
    radiance = np.ones((32, 256, 3), np.float32)
    radiance[:, 128:] = 2.0**10
    profile = srgb_decode(tonemap(radiance, operator)).mean(axis=(0, 2))
    dark, bright = np.median(profile[:32]), np.median(profile[-32:])
    assert bright - dark > 0.2
    overshoot = max(profile.max() - bright, dark - profile.min()) / (bright - dark)
    assert overshoot < 0.05


def test_bright_saturated_colour_stays_in_gamut_with_its_hue():
    radiance = np.full((16, 16, 3), 0.01, np.float32)
    radiance[4:12, 4:12] = [400.0, 40.0, 4.0]  # a bright, strongly orange light
    image = tonemap(radiance, "natural")
    light = image[8, 8]
    assert light.max() <= 1.0 and light[0] > light[1] > light[2]


def test_real_radiance_map_is_not_clipped(shared_data):
    radiance = read_radiance(shared_data / "real_hdr" / "StillLife.exr")[::4, ::4]
    for operator, limit in (("natural", 0.05), ("global", 1.0)):
        image = tonemap(radiance, operator)
        clipped = np.all(image <= 0.02, axis=-1).mean() + np.all(image >= 0.98, axis=-1).mean()
        assert clipped < limit, operator
    # StillLife spans about 21 stops: a global curve clips much of it, the natural operator does not.
    global_image = tonemap(radiance, "global")
    assert np.all(global_image <= 0.02, axis=-1).mean() > 0.1


@pytest.mark.parametrize("arguments, message", [
    ({"operator": "filmic"}, "natural, global, none"),
    ({"exposure": float("nan")}, "exposure"),
    ({"saturation": -1.0}, "saturation"),
    ({"detail": 9.0}, "detail"),
])
def test_bad_settings_name_the_argument(arguments, message):
    with pytest.raises(InputError, match=message):
        tonemap(_window_scene(16), **arguments)


def test_settings_record():
    assert tonemap_settings("global", 1, 0.5) == {"operator": "global", "exposure": 1.0, "saturation": 0.5,
                                                  "detail": 1.0}


def _reference_frame(path):
    """A reference frame with camera EXIF, written by Pillow (JPEG or TIFF by the suffix)."""
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112], exif[0x0132] = "Canon", "EOS Test", 6, "2026:01:02 03:04:05"
    exif.get_ifd(0x8769).update({0x9003: "2026:01:02 03:04:05", 0xA434: "EF 24-70mm f/2.8", 0x829A: 0.004})
    Image.new("RGB", (8, 8), (90, 90, 90)).save(path, exif=exif.tobytes())
    return path


@pytest.mark.parametrize("name, bits, reference_name", [
    ("p.jpg", 8, "reference.jpg"), ("p.png", 8, "reference.tif"), ("p.png", 16, "reference.jpg"),
    ("p.tif", 8, "reference.jpg"), ("p.tiff", 16, "reference.tif"),
])
def test_photo_carries_pixels_exif_icc_and_settings(tmp_path, name, bits, reference_name):
    radiance = _window_scene(48)
    reference = _reference_frame(tmp_path / reference_name)
    path = write_photo(tmp_path / name, radiance, exposure=0.5, detail=1.5, bits=bits, quality=90, reference=reference)
    expected = to_bits(tonemap(radiance, exposure=0.5, detail=1.5), bits).astype(np.float64) / (2**bits - 1)
    read = read_ldr(path)  # the project's own reader, at full bit depth
    if name.endswith(".jpg"):
        assert np.abs(read - expected).mean() < 0.02
    else:
        np.testing.assert_array_equal(read, expected.astype(np.float32))
    assert read_photo_settings(path) == {"operator": "natural", "exposure": 0.5, "saturation": 1.0, "detail": 1.5}
    with Image.open(path) as image:
        assert image.info.get("icc_profile") == srgb_icc_profile()
    with open(path, "rb") as handle:
        tags = {key.split(" ", 1)[1]: str(value) for key, value in exifread.process_file(handle, details=False).items()}
    assert tags["Make"] == "Canon" and tags["Model"] == "EOS Test"
    assert tags["LensModel"] == "EF 24-70mm f/2.8" and tags["DateTimeOriginal"] == "2026:01:02 03:04:05"
    assert "Rotated 90" in tags["Orientation"] and tags["Software"].startswith("diffhdr_diffusers")
    assert "ExposureTime" not in tags  # one frame's exposure does not describe the merge
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([reference_name, name])


def test_photo_refusals_leave_nothing(tmp_path):
    radiance = _window_scene(16)
    with pytest.raises(OutputError, match="8 bits only"):
        write_photo(tmp_path / "x.jpg", radiance, bits=16)
    with pytest.raises(OutputError, match="quality"):
        write_photo(tmp_path / "x.jpg", radiance, quality=0)
    with pytest.raises(OutputError, match="not '.webp'"):
        write_photo(tmp_path / "x.webp", radiance)
    with pytest.raises(InputError, match=r"\(H, W, 3\)"):
        write_tonemapped(tmp_path / "x.png", np.zeros((4, 4)), tonemap_settings())
    bad = radiance.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="x.png"):
        write_photo(tmp_path / "x.png", bad)
    assert list(tmp_path.iterdir()) == []
    path = write_photo(tmp_path / "x.png", radiance)
    before = path.read_bytes()
    with pytest.raises(OutputError, match="allow overwriting"):
        write_photo(path, radiance, "global")
    assert path.read_bytes() == before


def test_unreadable_reference_warns_and_writes(tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xffnot really")
    with pytest.warns(UserWarning, match="broken.jpg: EXIF could not be read"):
        path = write_photo(tmp_path / "x.jpg", _window_scene(16), reference=tmp_path / "broken.jpg")
    assert read_photo_settings(path)["operator"] == "natural"


def test_preview_is_the_natural_photo_and_app_slider_matches(tmp_path):
    from diffhdr_diffusers.app.tonemap import tonemap_at

    radiance = _window_scene(32)
    preview = tonemap_preview(radiance)
    np.testing.assert_array_equal(preview, to_bits(tonemap(radiance, "natural")))
    path = write_preview(tmp_path / "p.png", radiance)
    np.testing.assert_array_equal(cv2.imread(str(path))[..., ::-1], preview)
    np.testing.assert_array_equal(tonemap_at(radiance, 0.0), preview)
    np.testing.assert_array_equal(tonemap_at(radiance, 1.0), tonemap_preview(radiance, exposure=1.0))
    with pytest.raises(OutputError, match=r"\.png, \.jpg, \.jpeg, not '\.tif'"):
        write_preview(tmp_path / "p.tif", radiance)


@pytest.mark.parametrize("operator", OPERATORS)
def test_black_constant_and_tiny_inputs(operator):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tonemap(np.zeros((8, 8, 3), np.float32), operator).max() == 0.0
        flat = tonemap(np.full((8, 12, 3), 3.0, np.float32), operator)
        assert np.ptp(flat) == 0.0
        assert tonemap(_window_scene(96)[:1], operator).shape == (1, 96, 3)


def test_srgb_profile_bytes_are_reproducible_across_processes():
    """LittleCMS stamps the time into profiles; ours is fixed, so reruns (and resumed batches) are byte-identical."""
    import hashlib
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    code = ("import hashlib; from diffhdr_diffusers.io.photo import srgb_icc_profile as p; "
            "print(hashlib.sha256(p()).hexdigest())")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    other = run.stdout.strip()
    assert other == hashlib.sha256(srgb_icc_profile()).hexdigest()
