"""Bad input gets one clear error and loses nothing (issue 9, CLI and Python API).

Each table row builds one bad input and names the error class and the words its message must hold
(the file or argument, and the fix). Every row is checked twice:

* Python API: the call raises that ``DiffHDRError`` subclass.
* CLI (``diffhdr_diffusers.cli.main`` in this process, so file descriptors 1 and 2 are captured): exit
  code 2, no traceback, exactly one ``diffhdr merge: error:`` line holding the same words, and the
  output folder (a pre-existing file included) unchanged to the byte and the nanosecond.

Two subprocess tests check the real ``python -m diffhdr_diffusers.cli``: one bad input, and SIGTERM
during sampling, which must leave no output and no temporary file.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import psutil
import pytest
import tifffile
from merge_support import (
    bracket_arrays,
    cli_env,
    run_cli,
    save_tiny_pipeline,
    single_error_line,
    snapshot,
    tiny_pipeline,
    write_scene,
)

from diffhdr_diffusers import DiffHDRPipeline
from diffhdr_diffusers.errors import (
    DiffHDRError,
    ExposureError,
    ImageReadError,
    InputError,
    ModelLoadError,
    OutputError,
    ResourceError,
    SamplingError,
)
from diffhdr_diffusers.io import (
    load_bracket,
    read_ldr,
    read_radiance,
    write_ldr,
    write_preview,
    write_radiance,
)

EV = (0.0, 2.0, 4.0)
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


# --------------------------------------------------------------------------------------------------
# Fixtures: one tiny model folder per module; per test an input folder and an output folder that
# already holds a file which must survive every failure untouched.


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return save_tiny_pipeline(tmp_path_factory.mktemp("tiny_model") / "model")


@pytest.fixture
def work(tmp_path) -> SimpleNamespace:
    inputs, out = tmp_path / "inputs", tmp_path / "out"
    inputs.mkdir()
    out.mkdir()
    write_radiance(out / "earlier.hdr", np.full((8, 8, 3), 0.5, np.float32))
    return SimpleNamespace(inputs=inputs, out=out, output=out / "merged.hdr")


def assert_cli_fails(argv, capfd, work, needles) -> str:
    before = snapshot(work.out)
    sigterm_handler = signal.getsignal(signal.SIGTERM)
    code, out, err = run_cli(argv, capfd)
    assert signal.getsignal(signal.SIGTERM) is sigterm_handler, "main() left its SIGTERM handler installed"
    assert code == 2, (code, out, err)
    line = single_error_line(err)
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    assert "wrote" not in out
    assert snapshot(work.out) == before, "the output folder changed"
    return line


# --------------------------------------------------------------------------------------------------
# Damaged files.


def truncate(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def garble(path: Path, start: int | None = None) -> Path:
    """Invert 64 bytes, by default in the middle of the file (the compressed pixels of our small images).

    TIFF (zlib) and PNG (CRC) data carry checksums, so damaged pixels are detected there. JPEG entropy-coded
    data carries none: damage there decodes to wrong pixels that no reader can tell from right ones, so
    the JPEG rows damage the headers (quantisation and Huffman tables) instead.
    """
    data = bytearray(path.read_bytes())
    start = len(data) // 2 if start is None else start
    data[start : start + 64] = bytes(byte ^ 0xFF for byte in data[start : start + 64])
    path.write_bytes(bytes(data))
    return path


def empty(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def header_only(path: Path) -> Path:
    path.write_bytes(path.read_bytes()[:300])
    return path


def write_jpeg(path: Path, image: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), np.round(image[..., ::-1] * 255).astype(np.uint8))
    return path


# --------------------------------------------------------------------------------------------------
# Table 1: bad brackets, exposures and input files. ``build(folder)`` writes the inputs and returns
# (inputs, exposures or None); the CLI gets them as INPUT... [--exposures a,b,c].


@dataclass
class InputCase:
    id: str
    build: object
    error: type[DiffHDRError]
    needles: tuple[str, ...]
    cli_needles: tuple[str, ...] | None = None  # when the CLI words it otherwise (argparse, or brackets of any size)


def _files(folder, **kwargs):
    return write_scene(folder, exposure_txt=None, **kwargs)


def _scene(folder, exposure_txt="0\n2\n4\n", **kwargs):
    write_scene(folder / "scene", exposure_txt=exposure_txt, **kwargs)
    return folder / "scene"


def _replace(folder, name, writer):
    """A scene whose image ``name`` is replaced by ``writer(path_without_suffix)``."""
    scene = _scene(folder)
    (scene / f"{name}.tif").unlink()
    writer(scene / name)
    return scene


def _extra_image(folder):
    scene = _scene(folder)
    write_ldr(scene / "extra.tif", bracket_arrays()[0])
    return [scene], None


def _misnamed_image(folder):
    scene = _scene(folder)
    (scene / "long.tif").rename(scene / "long.tif.bak")
    return [scene], None


def _two_unnamed_ground_truths(folder):
    scene = _scene(folder)
    for name in ("a", "b"):
        write_radiance(scene / f"{name}.hdr", np.ones((16, 24, 3), np.float32))
    return [scene], None


def _empty_folder(folder):
    (folder / "empty").mkdir()
    return [folder / "empty"], None


def _misnamed_exposure_txt(folder):
    scene = _scene(folder, exposure_txt=None)
    (scene / "exposures.txt").write_text("0\n2\n4\n")
    return [scene], None


def _radiance_among_images(folder):
    return [*_files(folder)[:2], write_radiance(folder / "long.exr", np.ones((16, 24, 3), np.float32))], list(EV)


def _different_sizes(folder):
    paths = _files(folder)
    write_ldr(paths[2], bracket_arrays((20, 24))[2], overwrite=True)
    return paths, list(EV)


def _tiny(folder):
    paths = _files(folder)
    write_ldr(paths[1], bracket_arrays((4, 6))[1], overwrite=True)
    return paths, list(EV)


def _transparent_png(stem):
    image = np.round(bracket_arrays()[1][..., ::-1] * 255).astype(np.uint8)
    alpha = np.full(image.shape[:2] + (1,), 255, np.uint8)
    alpha[3, 5] = 0
    cv2.imwrite(str(stem.with_suffix(".png")), np.concatenate([image, alpha], axis=2))


def _cmyk_tiff(stem):
    cmyk = np.round((1 - np.concatenate([bracket_arrays()[1], np.zeros((16, 24, 1))], axis=2)) * 255)
    tifffile.imwrite(stem.with_suffix(".tif"), cmyk.astype(np.uint8), photometric="separated")


def _damaged(writer, damage, suffix):
    def build(folder):
        scene = _scene(folder)
        medium = scene / "medium.tif"
        image = read_ldr(medium)
        medium.unlink()
        target = scene / f"medium{suffix}"
        writer(target, image)
        damage(target)
        return [scene], None
    return build


INPUT_CASES = [
    # Bracket shape and content.
    # Brackets hold 2 to 9 frames (2-, 4- and 5-frame inputs are valid and tested in test_io_bracket.py).
    InputCase("one_image", lambda f: (_files(f)[:1], list(EV[:1])), InputError,
              ("1 frame", "short.tif", "a bracket holds 2 to 9 exposures"),
              cli_needles=("at least 2 frames", "found 1: short.tif")),
    InputCase("scene_with_two_images", lambda f: ([_scene(f, names=("short", "long"))], None), InputError,
              ("exposure.txt", "3 exposures for 2 images (long.tif, short.tif)", "one EV per image")),
    InputCase("scene_with_extra_image", _extra_image, InputError,
              ("exposure.txt", "3 exposures for 4 images", "extra.tif")),
    InputCase("scene_with_misnamed_image", _misnamed_image, InputError,
              ("3 exposures for 2 images (medium.tif, short.tif)",)),
    InputCase("scene_with_two_unnamed_ground_truths", _two_unnamed_ground_truths, InputError, ("several radiance files", "a.hdr, b.hdr", "HDRImg.hdr", "keep one ground truth")),
    InputCase("empty_folder", _empty_folder, InputError,
              ("empty", "no frames found", "a bracket holds 2 to 9 exposures"),
              cli_needles=("empty", "at least 2 frames", "found 0")),
    InputCase("input_not_found", lambda f: ([f / "nowhere.tif"] + _files(f)[1:], list(EV)), InputError,
              ("input not found", "nowhere.tif", "check the paths")),
    InputCase("folder_among_files", lambda f: ([_scene(f)] + _files(f)[1:], list(EV)), InputError,
              ("either one scene folder or the image files", "scene")),
    InputCase("different_sizes", _different_sizes, InputError,
              ("differ in size", "medium.tif 24x16", "long.tif 24x20", "same size")),
    InputCase("smaller_than_8x8", _tiny, InputError, ("medium.tif", "6x4 pixels", "at least 8x8")),
    InputCase("rgba_transparent", lambda f: ([_replace(f, "medium", _transparent_png)], None), ImageReadError,
              ("medium.png", "transparent pixels", "flatten it onto a background")),
    InputCase("cmyk", lambda f: ([_replace(f, "medium", _cmyk_tiff)], None), ImageReadError,
              ("medium.tif", "CMYK", "convert it to RGB")),
    InputCase("hdr_given_as_exposure", _radiance_among_images, ImageReadError, ("long.exr", "unsupported LDR format", "use one of .tif")),
    # Exposures.
    InputCase("no_exposure_txt_and_no_exif", lambda f: ([_scene(f, exposure_txt=None)], None), ExposureError,
              ("scene: no exposure.txt", "no usable EXIF", "give the exposures in EV"),
              cli_needles=("scene: no exposure.txt", "no usable EXIF", "--exposures")),
    InputCase("misnamed_exposure_txt", _misnamed_exposure_txt, ExposureError, ("no exposure.txt", "found exposures.txt, which is not a recognised name")),
    InputCase("files_without_exif", lambda f: (_files(f), None), ExposureError,
              ("short.tif", "no EXIF exposure time", "give the exposures in EV"),
              cli_needles=("short.tif", "no EXIF exposure time", "--exposures")),
    InputCase("exposure_txt_non_numeric", lambda f: ([_scene(f, exposure_txt="0\nbright\n4\n")], None), ExposureError,
              ("exposure.txt, line 2", "'bright' is not a number", "one exposure value (EV) per line")),
    InputCase("exposure_txt_nan", lambda f: ([_scene(f, exposure_txt="0\nnan\n4\n")], None), ExposureError,
              ("exposure.txt, line 2", "'nan' is not finite")),
    InputCase("exposure_txt_inf", lambda f: ([_scene(f, exposure_txt="0\n2\ninf\n")], None), ExposureError,
              ("exposure.txt, line 3", "'inf' is not finite")),
    InputCase("exposure_txt_too_few", lambda f: ([_scene(f, exposure_txt="0\n2\n")], None), ExposureError,
              ("exposure.txt", "2 exposures for 3 images", "exactly one EV per image")),
    InputCase("exposures_non_numeric", lambda f: (_files(f), ["a", "b", "c"]), ExposureError,
              ("not all numbers", "one EV number per image"),
              cli_needles=("argument --exposures", "expected comma-separated EV values like 0,2,4", "'a,b,c'")),
    InputCase("exposures_nan", lambda f: (_files(f), [0.0, float("nan"), 4.0]), ExposureError,
              ("exposures argument", "NaN or infinity", "give finite EV values")),
    InputCase("exposures_inf", lambda f: (_files(f), [0.0, 2.0, float("inf")]), ExposureError,
              ("exposures argument", "NaN or infinity", "give finite EV values")),
    InputCase("exposures_all_equal", lambda f: (_files(f), [1.0, 1.0, 1.0]), ExposureError,
              ("exposures argument", "all exposures equal 1 EV", "needs different exposures")),
    InputCase("exposures_repeated", lambda f: (_files(f), [0.0, 2.0, 2.0]), ExposureError,
              ("medium.tif, long.tif have the same exposure (2 EV)", "give the exposures in EV"),
              cli_needles=("medium.tif, long.tif have the same exposure (2 EV)", "--exposures")),
    # Truncated or corrupt files (libpng/libjpeg chatter must not reach the terminal).
    InputCase("tiff_truncated", _damaged(write_ldr, truncate, ".tif"), ImageReadError,
              ("medium.tif", "corrupt or truncated TIFF", "re-export")),
    InputCase("tiff_corrupt", _damaged(write_ldr, garble, ".tif"), ImageReadError,
              ("medium.tif", "corrupt or truncated TIFF", "re-export")),
    InputCase("png_truncated", _damaged(write_ldr, truncate, ".png"), ImageReadError,
              ("medium.png", "corrupt, truncated", "re-export")),
    InputCase("png_corrupt", _damaged(write_ldr, garble, ".png"), ImageReadError,
              ("medium.png", "corrupt, truncated", "re-export")),
    InputCase("jpeg_truncated", _damaged(write_jpeg, truncate, ".jpg"), ImageReadError,
              ("medium.jpg", "corrupt, truncated", "re-export")),
    InputCase("jpeg_corrupt", _damaged(write_jpeg, lambda path: garble(path, start=20), ".jpg"), ImageReadError,
              ("medium.jpg", "corrupt, truncated", "re-export")),
    InputCase("empty_file", _damaged(write_ldr, empty, ".png"), ImageReadError,
              ("medium.png", "file is empty", "re-export")),
]


def _cli_exposures(exposures) -> list[str]:
    return [] if exposures is None else ["--exposures", ",".join(str(value) for value in exposures)]


@pytest.mark.parametrize("case", INPUT_CASES, ids=[case.id for case in INPUT_CASES])
def test_bad_input_api(case, tmp_path, capfd):
    inputs, exposures = case.build(tmp_path)
    capfd.readouterr()
    with pytest.raises(case.error) as raised:
        load_bracket(inputs, exposures=exposures)
    for needle in case.needles:
        if needle.startswith("--"):  # the CLI's words for the remedy: the library names it in its own
            assert needle not in str(raised.value)
        else:
            assert needle in str(raised.value)
    out, err = capfd.readouterr()
    assert out == err == "", "a decoder printed to the terminal"


@pytest.mark.parametrize("case", INPUT_CASES, ids=[case.id for case in INPUT_CASES])
def test_bad_input_cli(case, work, model_dir, capfd):
    inputs, exposures = case.build(work.inputs)
    argv = ["merge", *inputs, *_cli_exposures(exposures), "-o", work.output, "--model", model_dir]
    assert_cli_fails(argv, capfd, work, case.cli_needles or case.needles)


def test_pipeline_refuses_bad_brackets_before_any_work():
    """The in-memory API: arrays, tensors and exposure lists are checked before the models run."""
    pipe = tiny_pipeline()
    calls = []
    pipe.unet.register_forward_hook(lambda *args: calls.append("unet"))
    pipe.condition_encoder.register_forward_hook(lambda *args: calls.append("encoder"))
    good = bracket_arrays()
    transparent = np.concatenate([good[1], np.zeros((16, 24, 1))], axis=2)
    table = [
        ((good[:1], list(EV[:1])), InputError, "a bracket needs 3 images (short to long); got 1"),
        ((good[:2], list(EV[:2])), InputError, "a bracket needs 3 images (short to long); got 2"),
        ((good + good[:1], [0, 1, 2, 3]), InputError, "a bracket needs 3 images (short to long); got 4"),
        (([good[0], good[1], good[2][:12]], list(EV)), InputError, "differ in size"),
        (([image[:4, :4] for image in good], list(EV)), InputError, "at least 8x8"),
        (([good[0], transparent, good[2]], list(EV)), InputError, "images[1] has a non-opaque alpha channel"),
        (([good[0], good[1] * 2, good[2]], list(EV)), InputError, "images[1] has float values outside [0, 1]"),
        (([good[0], np.full_like(good[1], np.nan), good[2]], list(EV)), InputError, "images[1] contains NaN"),
        ((good, None), ExposureError, "no exposure list"),
        ((good, ["0", "two", "4"]), ExposureError, "not all numbers"),
        ((good, [0, float("nan"), 4]), ExposureError, "NaN or infinity"),
        ((good, [0, 2, float("-inf")]), ExposureError, "NaN or infinity"),
        ((good, [3, 3, 3]), ExposureError, "all exposures equal 3 EV"),
        ((good, [2, 0, 4]), ExposureError, "positions 2, 1, 3 of the current order, which gives exposures [0.0, 2.0, 4.0]"),
    ]
    for (images, exposures), error, needle in table:
        with pytest.raises(error) as raised:
            pipe(images, exposures)
        assert needle in str(raised.value), (needle, str(raised.value))
    assert calls == []
    for keyword, value, needle in [("num_inference_steps", 0, "num_inference_steps must be a positive integer"),
                                   ("patch_size", 31, "patch_size must be a positive multiple of"),
                                   ("stride", 64, "stride must be an integer in [1, patch_size=32]"),
                                   ("output_type", "exr", "output_type must be one of 'np', 'pt', 'pil'")]:
        with pytest.raises(InputError, match=re.escape(needle)):
            pipe(good, list(EV), **{keyword: value})
    assert calls == []


# --------------------------------------------------------------------------------------------------
# Conversions that are the right thing to do: greyscale and opaque RGBA are accepted.


def test_greyscale_and_opaque_rgba_are_converted(work, model_dir, capfd):
    scene = work.inputs / "scene"
    write_scene(scene)
    short, medium = bracket_arrays()[:2]
    grey = np.round(short.mean(axis=2) * 65535).astype(np.uint16)
    (scene / "short.tif").unlink()
    tifffile.imwrite(scene / "short.tif", grey, photometric="minisblack")
    bgra = np.concatenate([medium[..., ::-1], np.ones((16, 24, 1))], axis=2)
    (scene / "medium.tif").unlink()
    cv2.imwrite(str(scene / "medium.png"), np.round(bgra * 255).astype(np.uint8))

    bracket = load_bracket(scene)
    assert [path.name for path in bracket.paths] == ["short.tif", "medium.png", "long.tif"]
    np.testing.assert_array_equal(bracket.images[0], np.repeat(grey[..., None] / np.float32(65535), 3, axis=2))
    np.testing.assert_allclose(bracket.images[1], np.round(medium * 255) / 255, atol=1e-7)

    code, out, err = run_cli(["merge", scene, "-o", work.output, "--model", model_dir], capfd)
    assert code == 0, err
    assert f"wrote {work.output}" in out
    assert np.isfinite(read_radiance(work.output)).all()


# --------------------------------------------------------------------------------------------------
# Table 2: radiance files (read by evaluation and by users of the API) that are truncated or corrupt.


def _radiance_file(tmp_path, suffix, damage):
    radiance = np.random.default_rng(1).random((16, 24, 3)).astype(np.float32) * 4
    return damage(write_radiance(tmp_path / f"scene{suffix}", radiance))


def _bad_signature(path):
    data = path.read_bytes()
    path.write_bytes(b"XX" + data[2:])
    return path


RADIANCE_CASES = [
    ("hdr_truncated", ".hdr", truncate, "corrupt, truncated"),
    ("hdr_bad_signature", ".hdr", _bad_signature, "not a Radiance RGBE file"),
    ("hdr_empty", ".hdr", empty, "file is empty"),
    ("exr_truncated", ".exr", truncate, "corrupt or truncated OpenEXR"),
    ("exr_bad_magic", ".exr", _bad_signature, "not an OpenEXR file"),
    ("exr_header_only", ".exr", header_only, "corrupt or truncated OpenEXR"),
]


@pytest.mark.parametrize("suffix, damage, needle", [case[1:] for case in RADIANCE_CASES],
                         ids=[case[0] for case in RADIANCE_CASES])
def test_corrupt_radiance_files_raise_one_quiet_error(suffix, damage, needle, tmp_path, capfd):
    path = _radiance_file(tmp_path, suffix, damage)
    capfd.readouterr()
    with pytest.raises(ImageReadError) as raised:
        read_radiance(path)
    assert str(path) in str(raised.value) and needle in str(raised.value)
    assert "re-export" in str(raised.value) or "corrupt" in str(raised.value)
    out, err = capfd.readouterr()
    assert out == err == "", f"OpenEXR/OpenCV printed: {out!r} {err!r}"


def test_a_corrupt_file_leaves_the_terminal_as_it_was(tmp_path, capfd):
    """A corrupt PNG is refused in our words (checked before libpng sees it), with nothing printed, and fd 1
    and 2 still write to the terminal afterwards (no reader redirects them)."""
    bad = garble(write_ldr(tmp_path / "bad.png", bracket_arrays()[0]))
    capfd.readouterr()
    with pytest.raises(ImageReadError, match="bad.png: corrupt"):
        read_ldr(bad)
    assert capfd.readouterr() == ("", "")
    os.write(1, b"fd1 still works\n")
    os.write(2, b"fd2 still works\n")
    out, err = capfd.readouterr()
    assert out == "fd1 still works\n" and err == "fd2 still works\n"


# --------------------------------------------------------------------------------------------------
# Table 3: models and outputs (CLI). ``build(work, model_dir)`` returns the arguments after the inputs.


def _model_without_index(work, model_dir):
    folder = work.inputs / "not_a_pipeline"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"\0" * 16)
    return ["-o", work.output, "--model", folder]


def _model_copy(work, model_dir):
    import shutil

    return Path(shutil.copytree(model_dir, work.inputs / "model_copy"))


def _model_with_foreign_code(work, model_dir):
    folder = _model_copy(work, model_dir)
    (folder / "unet" / "evil.py").write_text("open(__file__ + '.ran', 'w').close()\n")
    return ["-o", work.output, "--model", folder]


def _model_with_edited_shim(work, model_dir):
    folder = _model_copy(work, model_dir)
    with (folder / "pipeline_diffhdr.py").open("a") as shim:
        shim.write("import os  # edited\n")
    return ["-o", work.output, "--model", folder]


def _model_with_truncated_weights(work, model_dir):
    folder = _model_copy(work, model_dir)
    truncate(folder / "unet" / "diffusion_pytorch_model.safetensors")
    return ["-o", work.output, "--model", folder]


def _existing_preview(work, model_dir):
    write_preview(work.out / "preview.png", np.ones((8, 8, 3), np.float32))
    return ["-o", work.output, "--preview", work.out / "preview.png", "--model", model_dir]


def _output_is_a_folder(work, model_dir):
    (work.out / "folder.hdr").mkdir()
    return ["-o", work.out / "folder.hdr", "--model", model_dir]


def _unwritable_folder(work, model_dir):
    if IS_ROOT:
        return ["-o", "/proc/merged.hdr", "--model", model_dir]  # not even root can create files in /proc
    locked = work.inputs / "locked"
    locked.mkdir(mode=0o500)
    return ["-o", locked / "merged.hdr", "--model", model_dir]


MODEL_OUTPUT_CASES = [
    ("model_not_a_pipeline_folder", _model_without_index,
     ("not_a_pipeline is not a DiffHDR pipeline folder", "no model_index.json", "save_pretrained")),
    ("model_path_missing", lambda w, m: ["-o", w.output, "--model", w.inputs / "no_such_model"],
     ("no_such_model", "neither a local pipeline folder nor a reachable Hub repo")),
    ("model_with_foreign_python_file", _model_with_foreign_code,
     ("model_copy contains Python files that are not diffhdr_diffusers shims", "unet/evil.py", "trust_remote_code")),
    ("model_with_edited_shim", _model_with_edited_shim, ("pipeline_diffhdr.py", "trust_remote_code")),
    ("model_with_truncated_weights", _model_with_truncated_weights,
     ("could not load the DiffHDR pipeline", "diffusion_pytorch_model.safetensors")),
    ("output_folder_missing", lambda w, m: ["-o", w.out / "missing" / "merged.hdr", "--model", m],
     ("missing/merged.hdr", "does not exist", "create it first")),
    ("output_folder_is_a_file", lambda w, m: ["-o", w.out / "earlier.hdr" / "merged.hdr", "--model", m],
     ("earlier.hdr/merged.hdr", "earlier.hdr is a file", "choose another path")),  # it said "does not exist"
    ("output_folder_unwritable", _unwritable_folder, ("merged.hdr", "is not writable", "choose a folder")),
    ("output_exists", lambda w, m: ["-o", w.out / "earlier.hdr", "--model", m],
     ("earlier.hdr: already exists", "--overwrite")),
    ("preview_exists", _existing_preview, ("preview.png: already exists", "--overwrite")),
    ("output_is_a_folder", _output_is_a_folder,
     ("folder.hdr: is a folder", "give a file name")),
    ("output_wrong_type", lambda w, m: ["-o", w.out / "merged.bmp", "--model", m],
     ("merged.bmp: unsupported output type", ".hdr, .exr, .dng", ".jpg")),
    ("output_given_twice", lambda w, m: ["-o", w.output, "-o", w.out / "." / "merged.hdr", "--model", m],
     ("merged.hdr: the same output file is given twice", "its own name")),
    ("unknown_scheduler", lambda w, m: ["-o", w.output, "--model", m, "--scheduler", "magic"],
     ("unknown scheduler 'magic'", "choose one of: ddim")),
    ("patch_size_not_a_multiple", lambda w, m: ["-o", w.output, "--model", m, "--patch-size", "31"],
     ("patch_size must be a positive multiple of",)),
    ("unknown_window_blend", lambda w, m: ["-o", w.output, "--model", m, "--window-blend", "feather"],
     ("window_blend must be one of uniform, taper, got 'feather'",)),
    ("unknown_device", lambda w, m: ["-o", w.output, "--model", m, "--device", "quantum"],
     ("--device 'quantum'", "use cpu, cuda or cuda:N")),
]
ARGPARSE_CASES = [
    ("steps_zero", ["--steps", "0"], ("argument --steps", "expected a positive integer, got '0'")),
    ("stride_not_a_number", ["--stride", "wide"], ("argument --stride", "expected a positive integer, got 'wide'")),
    ("no_output", [], ("give -o OUT.hdr (or .exr) for one bracket, or --out DIR",)),
]


@pytest.mark.parametrize("build, needles", [case[1:] for case in MODEL_OUTPUT_CASES],
                         ids=[case[0] for case in MODEL_OUTPUT_CASES])
def test_bad_model_or_output_cli(build, needles, work, model_dir, capfd):
    scene = work.inputs / "scene"
    write_scene(scene)
    assert_cli_fails(["merge", scene, *build(work, model_dir)], capfd, work, needles)
    assert not list(work.inputs.rglob("*.ran")), "code from the model folder was executed"


@pytest.mark.parametrize("extra, needles", [case[1:] for case in ARGPARSE_CASES], ids=[case[0] for case in ARGPARSE_CASES])
def test_bad_arguments_cli(extra, needles, work, model_dir, capfd):
    scene = work.inputs / "scene"
    write_scene(scene)
    outputs = ["-o", work.output] if extra else []
    # One line, as every other error (argparse's usage text before it ran to twenty lines; trial 3).
    assert_cli_fails(["merge", scene, *outputs, "--model", model_dir, *extra], capfd, work, needles)


def test_existing_output_is_kept_byte_for_byte_and_replaced_only_with_overwrite(work, model_dir, capfd):
    scene = work.inputs / "scene"
    write_scene(scene)
    target = work.out / "earlier.hdr"
    before = target.read_bytes(), target.stat().st_mtime_ns
    code, _, err = run_cli(["merge", scene, "-o", target, "--model", model_dir], capfd)
    assert code == 2 and "already exists" in err
    assert (target.read_bytes(), target.stat().st_mtime_ns) == before
    code, out, err = run_cli(["merge", scene, "-o", target, "--model", model_dir, "--overwrite"], capfd)
    assert code == 0, err
    assert f"wrote {target}" in out
    assert target.read_bytes() != before[0] and read_radiance(target).shape == (16, 24, 3)
    assert sorted(path.name for path in work.out.iterdir()) == ["earlier.hdr"]  # no temporary file left


def test_model_and_output_api_errors(work, model_dir, tmp_path):
    """The same model and output faults through the Python API."""
    args = _model_with_foreign_code(work, model_dir)
    with pytest.raises(ModelLoadError, match="unet/evil.py"):
        DiffHDRPipeline.from_pretrained(args[-1])
    assert isinstance(DiffHDRPipeline.from_pretrained(args[-1], trust_remote_code=True), DiffHDRPipeline)
    with pytest.raises(ModelLoadError, match="no model_index.json"):
        DiffHDRPipeline.from_pretrained(_model_without_index(work, model_dir)[-1])
    radiance = np.ones((8, 8, 3), np.float32)
    write_preview(work.out / "earlier.png", radiance)
    before = snapshot(work.out)
    unwritable = Path("/proc" if IS_ROOT else "/")
    for folder, name, needle in [(work.out / "missing", "x", "does not exist"), (work.out, "earlier", "already exists"),
                                 (unwritable, "x", "is not writable")]:
        for writer, suffix in [(write_radiance, ".hdr"), (write_radiance, ".exr"), (write_preview, ".png"),
                               (write_ldr, ".tif")]:
            if not (folder / f"{name}{suffix}").exists() and needle == "already exists":
                continue
            with pytest.raises(OutputError, match=needle):
                writer(folder / f"{name}{suffix}", radiance if writer is not write_ldr else radiance * 0.5)
    with pytest.raises(InputError, match="NaN or infinite"):
        write_radiance(work.output, np.full((8, 8, 3), np.nan, np.float32))
    assert snapshot(work.out) == before


# --------------------------------------------------------------------------------------------------
# Resources and sampling faults.


def test_memory_is_estimated_before_allocating_and_the_need_is_reported(work, model_dir, capfd, monkeypatch):
    """With (faked) 16 MiB free, a 256x256 merge is refused before the models run, naming the need."""
    free = 16 << 20
    monkeypatch.setattr(psutil, "virtual_memory", lambda: SimpleNamespace(available=free))
    pipe = tiny_pipeline()
    calls = []
    pipe.unet.register_forward_hook(lambda *args: calls.append("unet"))
    pipe.condition_encoder.register_forward_hook(lambda *args: calls.append("encoder"))
    images = [np.full((256, 256, 3), value, np.float32) for value in (0.1, 0.4, 0.9)]
    with pytest.raises(ResourceError) as raised:
        pipe(images, list(EV))
    amount, unit = re.search(r"needs about ([\d.]+) (GiB|MiB)", str(raised.value)).groups()
    needed = float(amount) * (2**30 if unit == "GiB" else 2**20)
    conditioning_bytes = 256 * 256 * 18 * 4
    assert conditioning_bytes < needed < 1000 * conditioning_bytes
    assert "window_batch_size or patch_size" in str(raised.value)
    assert calls == []

    scene = work.inputs / "scene"
    write_scene(scene, size=(256, 256))
    line = assert_cli_fails(["merge", scene, "-o", work.output, "--model", model_dir], capfd, work, ("needs about",))
    assert re.search(r"merging a 256x256 bracket needs about [\d.]+ [GM]iB but only 16 MiB is free", line)


def test_nan_during_sampling_fails_with_the_step(work, capfd):
    nan_model = save_tiny_pipeline(work.inputs / "nan_model", nan_weights=True)
    pipe = DiffHDRPipeline.from_pretrained(nan_model)
    pipe.set_progress_bar_config(disable=True)
    with pytest.raises(SamplingError, match=r"NaN or inf at step 1/3 \(timestep \d+\)"):
        pipe(bracket_arrays(), list(EV), num_inference_steps=3)
    scene = work.inputs / "scene"
    write_scene(scene)
    assert_cli_fails(["merge", scene, "-o", work.output, "--preview", work.out / "merged.png", "--model", nan_model],
                     capfd, work, ("sampling produced NaN or inf at step 1/2", "check the model weights"))


# --------------------------------------------------------------------------------------------------
# The real command in a subprocess.


def test_subprocess_bad_input_prints_one_line(tmp_path):
    scene = tmp_path / "scene"
    write_scene(scene)
    garble(write_ldr(scene / "medium.png", read_ldr(scene / "medium.tif")))
    (scene / "medium.tif").unlink()
    result = subprocess.run([sys.executable, "-m", "diffhdr_diffusers.cli", "merge", str(scene), "-o",
                             str(tmp_path / "out.hdr")], capture_output=True, text=True, env=cli_env(), timeout=300,
                            check=False)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [single_error_line(result.stderr)]
    assert "medium.png: corrupt, truncated" in result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["scene"]


def test_sigterm_during_sampling_leaves_no_partial_output(tmp_path, model_dir):
    scene = tmp_path / "scene"
    write_scene(scene)
    out = tmp_path / "out"
    out.mkdir()
    steps = 1000
    process = subprocess.Popen(
        [sys.executable, "-m", "diffhdr_diffusers.cli", "merge", str(scene), "-o", str(out / "merged.hdr"),
         "-o", str(out / "merged.exr"), "--preview", str(out / "merged.png"), "--model", str(model_dir),
         "--steps", str(steps)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env())
    stderr = bytearray()
    reader = threading.Thread(target=lambda: [stderr.extend(chunk) for chunk in iter(lambda: process.stderr.read1(256), b"")],
                              daemon=True)
    reader.start()
    started = re.compile(rb"\| *([1-9]\d*)/%d \[" % steps)
    deadline = time.monotonic() + 240
    while not started.search(bytes(stderr)) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert started.search(bytes(stderr)), f"sampling never started: {bytes(stderr)[-500:]!r}"
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=60)
    finally:
        process.kill()
    reader.join(timeout=10)
    text = bytes(stderr).decode(errors="replace")
    assert code == 130, text[-500:]
    assert "Traceback" not in text
    assert "interrupted; no partial output was left" in text
    assert f"{steps}/{steps}" not in text, "sampling finished before the signal; raise the step count"
    assert list(out.iterdir()) == [], "an output or temporary file was left"
