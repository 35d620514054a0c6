"""``diffhdr merge --method flow-merge``: no model, literal EVs as users type them, a warning when alignment fails."""

import json
import re

import numpy as np
from merge_support import run_cli

from diffhdr_diffusers.data.synth import synthesize_scene
from diffhdr_diffusers.io import read_radiance, write_ldr
from diffhdr_diffusers.io.radiance import read_radiance_metadata
from diffhdr_diffusers.merging import flow_merge


def _write(folder, images):
    folder.mkdir(parents=True, exist_ok=True)
    return [write_ldr(folder / f"{index}.tif", image) for index, image in enumerate(images)]


def test_flow_merge_from_the_command_line_in_the_exposures_units(tmp_path, capfd):
    scene = synthesize_scene(seed=2, index=0, size=(48, 64), ev_sets=[(-2.0, 0.0, 2.0)])
    paths = _write(tmp_path / "in", scene.images)
    code, out, err = run_cli(["merge", *paths, "--method", "flow-merge", "--exposures", "-2,0,2", "--response",
                              "gamma:2.2", "-o", tmp_path / "m.exr", "--preview", tmp_path / "m.png"], capfd)
    assert code == 0, err
    assert "warning" not in err and (tmp_path / "m.png").is_file()
    merged = read_radiance(tmp_path / "m.exr")
    np.testing.assert_allclose(merged, flow_merge(scene.images, [-2.0, 0.0, 2.0]).radiance, rtol=2e-3, atol=1e-6)
    code, _, err = run_cli(["merge", *paths, "--method", "flow-merge", "--exposures", "0,2,4", "--response",
                            "gamma:2.2", "-o", tmp_path / "shifted.exr"], capfd)
    assert code == 0, err
    np.testing.assert_allclose(read_radiance(tmp_path / "shifted.exr"), merged / 4, rtol=1e-6)


def test_frames_given_out_of_order_are_sorted_with_a_note_not_a_warning(tmp_path, capfd):
    scene = synthesize_scene(seed=2, index=0, size=(48, 64), ev_sets=[(-2.0, 0.0, 2.0)])
    short, middle, long = _write(tmp_path / "in", scene.images)
    code, out, err = run_cli(["merge", long, short, middle, "--method", "flow-merge", "--exposures", "2,-2,0",
                              "--response", "gamma:2.2", "-o", tmp_path / "m.exr"], capfd)
    assert code == 0, err
    assert "Note: frames sorted by exposure, short to long: 0.tif (-2 EV), 1.tif (+0 EV), 2.tif (+2 EV)." in out
    assert "warning" not in err
    np.testing.assert_allclose(read_radiance(tmp_path / "m.exr"), flow_merge(scene.images, [-2.0, 0.0, 2.0]).radiance,
                               rtol=2e-3, atol=1e-6)


def test_frames_of_another_scene_warn_in_one_line_and_still_merge(tmp_path, capfd):
    scene = synthesize_scene(seed=2, index=0, size=(48, 64), ev_sets=[(0.0, 2.0, 4.0)])
    other = synthesize_scene(seed=9, index=5, size=(48, 64), ev_sets=[(0.0, 2.0, 4.0)])
    paths = _write(tmp_path / "in", [other.images[0], scene.images[1], scene.images[2]])
    code, _, err = run_cli(["merge", *paths, "--method", "flow-merge", "--exposures", "0,2,4", "--response",
                            "gamma:2.2", "-o", tmp_path / "m.exr"], capfd)
    assert code == 0, err
    warnings = [line for line in err.splitlines() if "warning" in line]
    # One line: the frame, and alignment's own reason with its measured figure.
    assert len(warnings) == 1 and re.search(r"0\.tif not used: only \d+ % of informative pixels consistent with the "
                                            r"reference \(15 % needed\)", warnings[0]), err
    assert json.loads(read_radiance_metadata(tmp_path / "m.exr")["rejected"])[0]["index"] == 0
    assert "Traceback" not in err


def test_one_command_writes_a_16_bit_tiff_a_jpeg_and_a_jpeg_preview(tmp_path, capfd):
    """--bits 16 is for the PNG/TIFF photo; the JPEG beside it is 8-bit (before: an error, so two runs)."""
    import tifffile
    from PIL import Image

    scene = synthesize_scene(seed=2, index=0, size=(48, 64), ev_sets=[(0.0, 2.0, 4.0)])
    paths = _write(tmp_path / "in", scene.images)
    code, _, err = run_cli(["merge", *paths, "--method", "flow-merge", "--exposures", "0,2,4", "-o", tmp_path / "m.tif",
                            "-o", tmp_path / "m.jpg", "--bits", "16", "--preview", tmp_path / "p.jpg"], capfd)
    assert code == 0, err
    assert tifffile.imread(tmp_path / "m.tif").dtype == np.uint16
    for name in ("m.jpg", "p.jpg"):
        with Image.open(tmp_path / name) as image:
            assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (64, 48))
