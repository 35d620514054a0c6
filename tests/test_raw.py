"""RAW brackets through LibRaw (rawpy): Bayer DNGs written here from real radiance maps, read back and merged.

No camera RAW file can be downloaded here, so each test writes its own: a real radiance map is turned
into a camera's linear RGB (a colour matrix that is not Rec.709, a white balance), exposed at known
shutter speeds, sampled through an RGGB colour filter array, offset by a black level and quantised to
14 bits, then written with tifffile and the DNG tags LibRaw needs. Everything downstream (decoding,
white balance, colour matrix, EXIF) is LibRaw's and exifread's reading of those files.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import rawpy
import tifffile

from diffhdr_diffusers.camera import Response, apply_camera
from diffhdr_diffusers.errors import ExposureError, ImageReadError, InputError
from diffhdr_diffusers.methods.classical import naive_merge
from diffhdr_diffusers.io import (
    exposures_from_exif,
    load_bracket,
    read_radiance,
    read_raw,
    write_ldr,
)
from diffhdr_diffusers.io.dng import (
    EXIF_POINTER_PLACEHOLDER,
    REC709_TO_XYZ,
    append_exif_ifd,
)
from diffhdr_diffusers.io.raw import raw_exposure
from diffhdr_diffusers.merging import flow_merge

BLACK, WHITE = 512, 16383
# A camera's RGB from linear Rec.709: rows do not sum to 1, so the white balance matters too.
CAMERA_FROM_REC709 = np.array([[0.55, 0.30, 0.05], [0.10, 0.80, 0.15], [0.04, 0.16, 0.45]])
TIMES = (1 / 400, 1 / 100, 1 / 25)  # -2, 0, +2 EV
NEUTRAL = CAMERA_FROM_REC709.sum(axis=1) / CAMERA_FROM_REC709.sum(axis=1).max()  # the camera's AsShotNeutral
SCALE = 2.0  # the reference frame's exposure of the radiance normalised to a 99th percentile of 1


def _rationals(values, denominator=1_000_000):
    return [number for value in np.ravel(values) for number in (round(float(value) * denominator), denominator)]


def _exposure_tags(time, f_number=4.0, iso=200):
    return [(33434, 5, _rationals([time], 1_000_000)), (33437, 5, _rationals([f_number], 10)), (34855, 3, [iso])]


def write_bayer_dng(path, camera_rgb, time, exif_in="ifd0", f_number=4.0, iso=200):
    """Write linear camera RGB (2H, 2W, 3, white = 1) as an RGGB Bayer DNG exposed for ``time`` seconds.

    ``exif_in``: where the exposure tags go, "ifd0" (as tifffile and some DNG writers put them) or
    "exif" (an Exif IFD, as cameras and Adobe's converter do).
    """
    exposed = np.clip(camera_rgb * (time / TIMES[1]), 0.0, 1.0)
    mosaic = np.empty(exposed.shape[:2])
    mosaic[0::2, 0::2] = exposed[0::2, 0::2, 0]
    mosaic[0::2, 1::2] = exposed[0::2, 1::2, 1]
    mosaic[1::2, 0::2] = exposed[1::2, 0::2, 1]
    mosaic[1::2, 1::2] = exposed[1::2, 1::2, 2]
    codes = np.round(BLACK + mosaic * (WHITE - BLACK)).astype(np.uint16)
    tags = [
        (50706, "B", 4, (1, 4, 0, 0), True), (50708, "s", 0, "Test Bayer Camera", True),
        (33421, "H", 2, (2, 2), True), (33422, "B", 4, (0, 1, 1, 2), True),
        (50714, "I", 1, (BLACK,), True), (50717, "I", 1, (WHITE,), True),
        (50721, "2i", 9, _rationals(CAMERA_FROM_REC709 @ np.linalg.inv(REC709_TO_XYZ)), True),
        (50778, "H", 1, (21,), True), (50728, "2I", 3, _rationals(NEUTRAL), True),
    ]
    exposure = _exposure_tags(time, f_number, iso)
    if exif_in == "ifd0":
        tags += [(code, kind, len(values) // (2 if kind == 5 else 1), values, True) for code, kind, values in exposure]
    else:
        tags.append((EXIF_POINTER_PLACEHOLDER, "I", 1, (0,), True))
    tifffile.imwrite(path, codes, photometric=32803, subfiletype=0, metadata=None, extratags=tags)
    if exif_in != "ifd0":
        append_exif_ifd(path, exposure)
    return path


@pytest.fixture(scope="module")
def radiance(shared_data):
    """A 64x96 crop of a real radiance map (Desk, OpenEXR samples, 11 stops), normalised to a 99th percentile of 1."""
    crop = read_radiance(shared_data / "real_hdr" / "Desk.exr")[360:424, 240:336]
    return crop / np.percentile(crop, 99)


def _camera_rgb(radiance):
    """Each radiance pixel as a 2x2 block of camera RGB: half-size reading returns one pixel per block."""
    upsampled = np.repeat(np.repeat(radiance, 2, axis=0), 2, axis=1)
    return SCALE * upsampled @ CAMERA_FROM_REC709.T


def _bracket(folder, radiance, names=("a.dng", "b.dng", "c.dng"), times=TIMES, exif_in="ifd0"):
    folder.mkdir(parents=True, exist_ok=True)
    camera = _camera_rgb(radiance)
    return [write_bayer_dng(folder / name, camera, time, exif_in) for name, time in zip(names, times)]


def _relative_error(merged, source, mask):
    """Per pixel and channel, |merged / scale - source| relative to the pixel's brightest channel (so a
    colour's faint channel is not divided by almost nothing), where ``mask``; and the one global scale."""
    mask = np.broadcast_to(mask, source.shape)
    scale = np.median(merged[mask] / source[mask])
    return (np.abs(merged / scale - source) / np.maximum(source.max(axis=-1, keepdims=True), 1e-12))[mask], scale


def _well_exposed(reference):
    """Pixels whose camera channels (white balanced, as the merge sees them) all lie between 2 % and 90 %
    of white in the reference frame; where the reference is saturated, in the short frame; where it is
    dark in every channel, in the long frame. Also the saturated and dark fractions."""
    camera = reference @ CAMERA_FROM_REC709.T / NEUTRAL
    usable = lambda frame: np.all((frame > 0.02) & (frame < 0.9), axis=-1)
    saturated, dark = np.any(camera >= 0.9, axis=-1), np.all(camera < 0.02, axis=-1)
    mask = (usable(camera) & ~saturated) | (saturated & usable(camera / 4)) | (dark & usable(camera * 4))
    return mask[..., None], saturated.mean(), dark.mean()


@pytest.mark.parametrize("exif_in", ["ifd0", "exif"])
def test_raw_bracket_merges_to_the_source_radiance(tmp_path, radiance, exif_in):
    """Target of issue 22: the merge matches the source up to one scale within 1 %, EVs from EXIF alone."""
    # Written long, short, medium: the files' names do not give the order, their EXIF does.
    paths = _bracket(tmp_path, radiance, names=("1.dng", "2.dng", "3.dng"), times=(TIMES[2], TIMES[0], TIMES[1]),
                     exif_in=exif_in)
    bracket = load_bracket(paths, half_size=True)
    assert [path.name for path in bracket.paths] == ["2.dng", "3.dng", "1.dng"]
    assert bracket.exposures == pytest.approx([-2.0, 0.0, 2.0], abs=1e-6)
    assert bracket.response_hint == "linear"
    assert any("sorted by exposure" in note for note in bracket.notes)
    assert all(image.shape == (64, 96, 3) for image in bracket.images)

    frames, camera = apply_camera(bracket.images, bracket.exposures, response=Response.linear())
    merged = bracket.to_rec709(flow_merge(frames, camera.exposures).radiance)
    reference = SCALE * radiance
    well_exposed, saturated, dark = _well_exposed(reference)
    assert well_exposed.mean() > 0.9 and saturated > 0.1 and dark > 0.05  # highlights and shadows count too
    error, _ = _relative_error(merged, reference, well_exposed)
    # flow-merge leaves a few pixels on the edges of the reference's clipped areas off (7 of 17,000 here).
    assert np.percentile(error, 99.9) < 0.01 and np.mean(error > 0.01) < 0.001, f"max relative error {error.max():.4f}"


def test_classical_merge_of_raw_frames(tmp_path, radiance):
    """The same bracket through the classical (unaligned, triangle-weighted) merge: every pixel within 1 %."""
    bracket = load_bracket(_bracket(tmp_path, radiance), half_size=True)
    frames, camera = apply_camera(bracket.images, bracket.exposures, response=Response.linear())
    merged = bracket.to_rec709(naive_merge(frames, camera.exposures))
    reference = SCALE * radiance
    error, _ = _relative_error(merged, reference, _well_exposed(reference)[0])
    assert error.max() < 0.01, f"max relative error {error.max():.4f}"


def test_camera_rgb_and_matrix_give_libraw_own_rec709(tmp_path, radiance):
    """Our camera RGB through our matrix equals LibRaw's own linear sRGB output wherever nothing clips."""
    path = write_bayer_dng(tmp_path / "m.dng", _camera_rgb(radiance), TIMES[0])
    ours = read_raw(path, half_size=True)
    with rawpy.imread(str(path)) as raw:
        libraw = raw.postprocess(gamma=(1, 1), no_auto_bright=True, output_bps=16, use_camera_wb=True, half_size=True,
                                 output_color=rawpy.ColorSpace.sRGB, user_flip=0, adjust_maximum_thr=0.0) / 65535.0
    unclipped = np.all(libraw < 0.95, axis=-1) & np.all(ours < 0.95, axis=-1)
    assert unclipped.mean() > 0.9
    assert np.abs(ours - libraw)[unclipped].max() < 2e-4


def test_read_raw_full_size_demosaics_in_rec709(tmp_path, radiance):
    """Full size: LibRaw demosaics. On a smooth image its colours and levels are those of the half-size path."""
    smooth = cv2.resize(cv2.resize(radiance, (24, 16), interpolation=cv2.INTER_AREA), (192, 128),
                        interpolation=cv2.INTER_CUBIC).clip(0.0)
    source = 0.4 * smooth
    rgb = read_raw(write_bayer_dng(tmp_path / "f.dng", source @ CAMERA_FROM_REC709.T, TIMES[1]))
    assert rgb.shape == (128, 192, 3) and rgb.dtype == np.float32 and 0.0 <= rgb.min() and rgb.max() <= 1.0
    usable = np.all((source > 0.02) & (source < 0.8), axis=-1, keepdims=True)
    usable[:4], usable[-4:], usable[:, :4], usable[:, -4:] = False, False, False, False
    error, _ = _relative_error(rgb, source, usable)
    # Demosaicing interpolates: small errors on most pixels, a few percent on the steepest gradients.
    assert np.median(error) < 0.01 and np.percentile(error, 95) < 0.05


def test_saturation_reads_as_white_level(tmp_path):
    camera = np.full((32, 48, 3), 0.2)
    camera[:, :12] = 3.0  # far above the white level in every channel
    rgb = read_raw(write_bayer_dng(tmp_path / "s.dng", camera @ CAMERA_FROM_REC709.T, TIMES[1]), half_size=True)
    assert np.allclose(rgb[:, :5], 1.0, atol=1e-4)
    assert rgb[:, 8:].max() < 0.5


def test_five_frames_and_the_folder_exposure_file(tmp_path, radiance):
    folder = tmp_path / "scene"
    times = (1 / 1600, 1 / 400, 1 / 100, 1 / 25, 1 / 6.25)
    _bracket(folder, radiance[:32, :48], names=[f"IMG_{index}.dng" for index in range(5)], times=times)
    bracket = load_bracket(folder, half_size=True)
    assert bracket.exposures == pytest.approx([-4, -2, 0, 2, 4], abs=1e-6) and bracket.reference_index == 2
    # An exposure file that contradicts the EXIF wins, with one line naming both.
    (folder / "exposure.txt").write_text("0\n1\n2\n3\n4\n")
    bracket = load_bracket(folder, half_size=True)
    assert bracket.exposures == [0, 1, 2, 3, 4]
    (warning,) = [line for line in bracket.warnings if "EXIF" in line]
    assert "exposure.txt" in warning and "IMG_0.dng" in warning and "\n" not in warning


def test_identical_exif_exposures_ask_for_explicit_exposures(tmp_path, radiance):
    paths = _bracket(tmp_path, radiance[:32, :48], times=(1 / 100, 1 / 100, 1 / 25))
    with pytest.raises(ExposureError, match=r"a.dng, b.dng have the same exposure.*give the exposures in EV") as error:
        load_bracket(paths, half_size=True)
    assert "--" not in str(error.value) and "\n" not in str(error.value)
    assert load_bracket(paths, exposures=[-2, 0, 2], half_size=True).exposures == [-2, 0, 2]


def test_mixed_raw_and_jpeg_is_one_line_error(tmp_path, radiance):
    paths = _bracket(tmp_path, radiance[:32, :48], names=("a.dng", "b.dng"), times=TIMES[:2])
    jpeg = write_ldr(tmp_path / "c.png", np.full((32, 48, 3), 0.5))
    for inputs in ([*paths, jpeg], [tmp_path]):
        with pytest.raises(InputError, match=r"mixes RAW files \(a.dng, b.dng\) and LDR images \(c.png\)") as error:
            load_bracket(inputs, exposures=[0, 1, 2])
        assert "\n" not in str(error.value)


@pytest.mark.parametrize("damage", ["truncate", "header only", "first bytes", "garbage", "not a raw"])
def test_damaged_raw_is_one_line_error_naming_the_file(tmp_path, radiance, damage, capfd):
    path = write_bayer_dng(tmp_path / "bad.dng", _camera_rgb(radiance[:16, :16]), TIMES[1])
    data = path.read_bytes()
    damaged = {"truncate": data[: len(data) // 2], "header only": data[:300], "first bytes": data[:8],
               "garbage": b"II*\0" + bytes(range(256)) * 4, "not a raw": b"hello, this is text" * 50}[damage]
    path.write_bytes(damaged)
    capfd.readouterr()
    with pytest.raises(ImageReadError, match="bad.dng: .*(truncated|corrupt|cannot read)") as error:
        read_raw(path)
    assert "\n" not in str(error.value)
    out, err = capfd.readouterr()
    assert out == err == "", "LibRaw printed to the terminal"


def test_raw_exif_read_from_ifd0_and_exif_ifd(tmp_path, radiance):
    camera = _camera_rgb(radiance[:16, :16])
    ifd0 = write_bayer_dng(tmp_path / "ifd0.dng", camera, 1 / 250, "ifd0", f_number=8, iso=100)
    exif = write_bayer_dng(tmp_path / "exif.dng", camera, 1 / 60, "exif", f_number=4, iso=400)
    # EV = log2(t * ISO / N^2), relative to the reference (the second of two).
    expected = math.log2((1 / 250) * 100 / 64) - math.log2((1 / 60) * 400 / 16)
    assert exposures_from_exif([ifd0, exif]) == pytest.approx([expected, 0.0], abs=1e-4)


def test_libraw_reads_the_exposure_where_exifread_cannot(tmp_path, radiance):
    """The fallback for RAW formats exifread does not parse (CR3, RAF, ...): LibRaw's own metadata."""
    path = write_bayer_dng(tmp_path / "e.dng", _camera_rgb(radiance[:16, :16]), 1 / 60, "exif", f_number=5.6, iso=800)
    time, f_number, iso = raw_exposure(path)
    assert time == pytest.approx(1 / 60, rel=1e-4) and f_number == pytest.approx(5.6) and iso == 800


def test_exif_pointer_is_a_real_exif_ifd(tmp_path, radiance):
    """The Exif IFD the tests write is what cameras write: IFD0's tag 34665 points at it (tifffile reads it too)."""
    path = write_bayer_dng(tmp_path / "e.dng", _camera_rgb(radiance[:16, :16]), 1 / 60, "exif")
    with tifffile.TiffFile(path) as tiff:
        exif = tiff.pages.first.tags[34665].value
    assert exif["ExposureTime"] == tuple(_rationals([1 / 60])) and exif["ISOSpeedRatings"] == 200


@pytest.mark.parametrize("exif_in", ["ifd0", "exif"])
def test_photo_of_a_raw_bracket_carries_its_camera_tags(tmp_path, radiance, exif_in, capsys):
    """Pillow cannot open a DNG: the finished photo's camera tags come from exifread's reading of the reference
    frame, quietly (before: a Python warning with its source line, and no tags)."""
    from PIL import Image

    from diffhdr_diffusers.cli import main

    _bracket(tmp_path / "raw", radiance[:32, :48], exif_in=exif_in)
    photo = tmp_path / "out.jpg"
    assert main(["merge", str(tmp_path / "raw"), "--method", "flow-merge", "-o", str(photo)]) == 0
    assert "warning" not in capsys.readouterr().err
    with Image.open(photo) as image:
        assert image.getexif().get_ifd(0x8769)[33437] == 4.0  # the reference frame's f-number


def test_a_response_curve_given_for_raw_frames_is_not_applied_and_says_so(tmp_path, radiance):
    """`--response srgb` (meant for a shoot's JPEGs) on a RAW bracket bent the linear data, and both other frames
    were refused as 'exposure ratio 10.9 where 4 was expected': the output was the reference alone (trial 3)."""
    from diffhdr_diffusers.methods import load_method

    bracket = load_bracket(_bracket(tmp_path, radiance), half_size=True)
    method = load_method("flow-merge")
    given = method.merge_bracket(bracket, response="srgb")
    assert not given.rejected and given.camera.to_dict()["response"] == "linear"
    assert given.warnings()[0] == ("response srgb not applied: RAW frames are linear as decoded, so the linear "
                                   "response is used for them")
    np.testing.assert_array_equal(given.radiance, method.merge_bracket(bracket).radiance)
    assert not method.merge_bracket(bracket, response="linear").warnings()
