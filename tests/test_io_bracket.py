"""Loading brackets from scene folders and file lists, and their failure modes."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from diffhdr_diffusers.errors import ExposureError, ImageReadError, InputError
from diffhdr_diffusers.io import load_bracket, write_ldr, write_radiance


def _make_scene(folder, names=("a.tif", "b.tif", "c.tif"), exposures="-2\n0\n2\n", size=(16, 12), ground_truth=True):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for index, name in enumerate(names):
        write_ldr(folder / name, np.clip(rng.random((*size, 3)) * (index + 1) / 3, 0, 1))
    if exposures is not None:
        (folder / "exposure.txt").write_text(exposures)
    if ground_truth:
        write_radiance(folder / "HDRImg.hdr", rng.random((*size, 3)).astype(np.float32))
    return folder


def test_kalantari_scene(tmp_path):
    scene = _make_scene(tmp_path / "001")
    bracket = load_bracket(scene)
    assert bracket.name == "001"
    assert [path.name for path in bracket.paths] == ["a.tif", "b.tif", "c.tif"]
    assert bracket.exposures == [-2.0, 0.0, 2.0]
    assert bracket.ground_truth == scene / "HDRImg.hdr"
    assert all(image.shape == (16, 12, 3) and image.dtype == np.float32 for image in bracket.images)
    # Images are in file order: the third was written brightest.
    assert bracket.images[0].mean() < bracket.images[1].mean() < bracket.images[2].mean()


def test_short_medium_long_names_ordered_by_meaning(tmp_path):
    scene = _make_scene(tmp_path / "s", names=("short.png", "medium.png", "long.png"), ground_truth=False)
    bracket = load_bracket(scene)
    assert [path.stem for path in bracket.paths] == ["short", "medium", "long"]
    assert bracket.ground_truth is None


def test_files_with_explicit_exposures(tmp_path):
    scene = _make_scene(tmp_path / "s")
    files = [scene / "a.tif", scene / "b.tif", scene / "c.tif"]
    bracket = load_bracket(files, exposures=[0, 1, 2])
    assert bracket.paths == files and bracket.exposures == [0.0, 1.0, 2.0] and bracket.ground_truth is None
    assert bracket.warnings == [] and bracket.response_hint is None and bracket.camera_to_rec709 is None
    # Out of order: sorted by exposure, with a note naming the new order.
    bracket = load_bracket(files, exposures=[0, 2, 1])
    assert [path.name for path in bracket.paths] == ["a.tif", "c.tif", "b.tif"] and bracket.exposures == [0, 1, 2]
    assert bracket.notes == ["frames sorted by exposure, short to long: a.tif (+0 EV), c.tif (+1 EV), b.tif (+2 EV)."]
    assert bracket.warnings == []  # a note, not a problem


@pytest.mark.parametrize(
    "scene, exposures, first",
    [("pingpong", pytest.approx([-2, 0, 2.0589], abs=1e-3), "Img1.JPG"),
     ("sculpture_garden", pytest.approx([-2.0, 0.0, 2.0]), "1.tif"),
     ("horse", [-1.0, 0.0, 1.0], "1.png")],
)
def test_real_bracket_folders(shared_data, scene, exposures, first):
    bracket = load_bracket(shared_data / "real_brackets" / scene)
    assert bracket.exposures == exposures
    assert bracket.paths[0].name == first and len(bracket.images) == 3
    assert bracket.name == scene
    # Longer exposures are brighter.
    means = [float(image.mean()) for image in bracket.images]
    assert means == sorted(means)


def test_real_files_exif_in_wrong_order_are_sorted(shared_data):
    folder = shared_data / "real_brackets" / "pingpong"
    bracket = load_bracket([folder / "Img2.JPG", folder / "Img1.JPG", folder / "Img3.JPG"])
    assert [path.name for path in bracket.paths] == ["Img1.JPG", "Img2.JPG", "Img3.JPG"]
    assert bracket.exposures == pytest.approx([-2, 0, 2.0589], abs=1e-3)
    assert len(bracket.notes) == 1 and "sorted by exposure" in bracket.notes[0] and bracket.warnings == []
    assert bracket.notes[0].endswith("Img3.JPG (+2.06 EV).")  # to 0.01 stops, as the EVs are shown everywhere


@pytest.mark.parametrize("count", [1, 10])
def test_wrong_number_of_files(tmp_path, count):
    scene = _make_scene(tmp_path / "s", names=[f"{index}.tif" for index in range(count)], exposures=None, ground_truth=False)
    files = sorted(scene.glob("*.tif"))
    with pytest.raises(InputError, match=f"{count} frames? .*a bracket holds 2 to 9 exposures") as error:
        load_bracket(files if count > 1 else files[0], exposures=list(range(count)))
    assert files[0].name in str(error.value) and "--" not in str(error.value)
    with pytest.raises(InputError, match=f"{count} frames? .*a bracket holds 2 to 9 exposures") as error:
        load_bracket(scene, exposures=list(range(count)))


def test_required_count_is_checked(tmp_path):
    scene = _make_scene(tmp_path / "s", names=("a.tif", "b.tif"), exposures="0\n2\n")
    with pytest.raises(InputError, match=r"expected 3 LDR images, found 2: a.tif, b.tif; this needs exactly 3"):
        load_bracket(scene, num_images=3)
    assert len(load_bracket(scene).images) == 2


def test_scene_with_extra_image_lists_them(tmp_path):
    scene = _make_scene(tmp_path / "s", names=("a.tif", "b.tif", "c.tif", "d.png"))
    with pytest.raises(ExposureError, match=r"3 exposures for 4 images \(a.tif, b.tif, c.tif, d.png\)") as error:
        load_bracket(scene)
    assert "exactly one image per exposure" not in str(error.value)


@pytest.mark.parametrize("count", [2, 5, 7, 9])
def test_any_number_of_exposures_in_any_order(tmp_path, count):
    """A folder of N frames whose names are not in exposure order: sorted by the exposure file, with a note."""
    evs = [2 * index - count + 1 for index in range(count)]  # e.g. -4, -2, 0, 2, 4
    shuffled = [(index + 1) % count for index in range(count)]  # names out of exposure order
    names = [f"frame{index}.png" for index in range(count)]
    scene = _make_scene(tmp_path / "s", names=names, ground_truth=False,
                        exposures="".join(f"{evs[shuffled[index]]}\n" for index in range(count)))
    bracket = load_bracket(scene)
    assert bracket.exposures == [float(ev) for ev in evs] and len(bracket.images) == count
    assert [path.name for path in bracket.paths] == [names[shuffled.index(index)] for index in range(count)]
    assert bracket.reference_index == count // 2
    assert any("sorted by exposure" in note for note in bracket.notes)


def test_files_one_by_one_read_their_folder_exposure_file(tmp_path):
    scene = _make_scene(tmp_path / "s", names=("a.tif", "b.tif", "c.tif"), exposures="-2\n0\n2\n", ground_truth=False)
    bracket = load_bracket([scene / "c.tif", scene / "a.tif"])
    assert [path.name for path in bracket.paths] == ["a.tif", "c.tif"] and bracket.exposures == [-2.0, 2.0]
    (scene / "exposure.txt").unlink()
    (scene / "exposure_times.txt").write_text("1/400\n1/100\n1/25\n")
    # Times give ratios only: the bracket's own reference (the second of two) is EV 0.
    assert load_bracket([scene / "b.tif", scene / "c.tif"]).exposures == pytest.approx([-2.0, 0.0])


def test_an_exposure_file_among_the_files_is_the_exposures_not_a_frame(tmp_path):
    """`diffhdr merge scene/*` lists the exposure file with the frames: it gives the exposures (it used to be
    counted as a frame and end in a KeyError); one from elsewhere lists the frames given, in name order."""
    from diffhdr_diffusers.methods.frames import count_frames

    scene = _make_scene(tmp_path / "s", exposures="-2\n0\n2\n", ground_truth=False)
    files = sorted(scene.iterdir())
    assert count_frames(files) == 3
    bracket = load_bracket(files)
    assert [path.name for path in bracket.paths] == ["a.tif", "b.tif", "c.tif"] and bracket.exposures == [-2.0, 0.0, 2.0]
    elsewhere = tmp_path / "exposure_times.txt"
    elsewhere.write_text("1/100\n1/25\n")
    assert load_bracket([scene / "c.tif", elsewhere, scene / "b.tif"]).exposures == pytest.approx([-2.0, 0.0])
    with pytest.raises(InputError, match=r"several exposure files given \(exposure.txt, exposure_times.txt\)"):
        load_bracket([*files, elsewhere])


def test_a_frame_given_twice_or_no_image_says_so(tmp_path):
    """A frame given twice is named as such (it read as two frames of the same exposure), and a text file named
    .jpg among frames without exposures is not an image (it read as a frame without EXIF)."""
    scene = _make_scene(tmp_path / "s", exposures=None, ground_truth=False)
    with pytest.raises(InputError, match=r"b.tif: given twice; give each frame of the bracket once"):
        load_bracket([scene / "a.tif", scene / "b.tif", tmp_path / "s" / ".." / "s" / "b.tif"])
    (scene / "notes.jpg").write_text("not a photo")
    with pytest.raises(ImageReadError, match=r"notes.jpg: corrupt, truncated or not a supported image"):
        load_bracket([scene / "a.tif", scene / "notes.jpg"])
    with pytest.raises(ExposureError, match="EXIF"):  # real images without EXIF: the exposures are what is missing
        load_bracket([scene / "a.tif", scene / "b.tif"])


def test_scene_without_exposures_says_what_to_add(tmp_path):
    scene = _make_scene(tmp_path / "s", exposures=None)
    (scene / "exposures.txt").write_text("0\n1\n2\n")  # misnamed
    with pytest.raises(ExposureError, match="exposure.txt") as error:
        load_bracket(scene)
    assert "exposures.txt" in str(error.value) and "give the exposures in EV" in str(error.value)
    assert str(error.value).count("give the exposures in EV") == 1 and "--" not in str(error.value)
    assert load_bracket(scene, exposures=[0, 1, 2]).exposures == [0.0, 1.0, 2.0]


def test_scene_with_bad_exposure_file(tmp_path):
    with pytest.raises(ExposureError, match="all exposures equal.*give the exposures in EV"):
        load_bracket(_make_scene(tmp_path / "equal", exposures="0\n0\n0\n"))
    with pytest.raises(ExposureError, match="a.tif, c.tif have the same exposure"):
        load_bracket(_make_scene(tmp_path / "repeat", exposures="0\n1\n0\n"))
    with pytest.raises(ExposureError, match="2 exposures for 3 images"):
        load_bracket(_make_scene(tmp_path / "short", exposures="0\n2\n"))


def test_images_of_different_sizes(tmp_path):
    scene = _make_scene(tmp_path / "s", ground_truth=False)
    write_ldr(scene / "b.tif", np.zeros((20, 12, 3)), overwrite=True)
    with pytest.raises(InputError, match=r"a.tif 12x16, b.tif 12x20, c.tif 12x16"):
        load_bracket(scene)


def test_corrupt_image_in_scene(tmp_path):
    scene = _make_scene(tmp_path / "s")
    (scene / "b.tif").write_bytes((scene / "b.tif").read_bytes()[:300])
    with pytest.raises(ImageReadError, match="b.tif"):
        load_bracket(scene)


def test_missing_inputs(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_bracket([tmp_path / "x.tif", tmp_path / "y.tif", tmp_path / "z.tif"])


def test_several_ground_truths_rejected(tmp_path):
    scene = _make_scene(tmp_path / "s", ground_truth=False)
    for name in ("one.hdr", "two.exr"):
        write_radiance(scene / name, np.ones((16, 12, 3), np.float32))
    with pytest.raises(InputError, match="one.hdr, two.exr"):
        load_bracket(scene)
    shutil.move(scene / "two.exr", tmp_path / "two.exr")
    assert load_bracket(scene).ground_truth == scene / "one.hdr"


def test_frames_in_adobe_rgb_are_merged_into_rec709_colours(shared_data, tmp_path, capfd):
    """sculpture_garden's TIFFs embed Adobe RGB (1998); read as sRGB their colours came out desaturated. The same
    frames written with and without that profile merge to radiance one colour matrix apart."""
    import tifffile
    from PIL import Image

    from diffhdr_diffusers.cli import main
    from diffhdr_diffusers.data.synth import synthesize_scene
    from diffhdr_diffusers.io import read_radiance

    with Image.open(shared_data / "real_brackets" / "sculpture_garden" / "1.tif") as image:
        adobe = image.info["icc_profile"]
    scene = synthesize_scene(seed=2, index=0, size=(48, 64), ev_sets=[(-2.0, 0.0, 2.0)])
    for name, profile in (("plain", None), ("adobe", adobe)):
        (tmp_path / name).mkdir()
        for index, frame in enumerate(scene.images):
            codes = np.round(np.clip(frame, 0, 1) * 65535).astype(np.uint16)
            tifffile.imwrite(tmp_path / name / f"{index}.tif", codes, photometric="rgb", iccprofile=profile)
        (tmp_path / name / "exposure.txt").write_text("-2\n0\n2\n")
        assert main(["merge", str(tmp_path / name), "--method", "flow-merge", "--response", "gamma:2.2",
                     "-o", str(tmp_path / f"{name}.exr")]) == 0
    assert "Adobe RGB (1998) colours converted to sRGB" in capfd.readouterr().out
    plain, converted = read_radiance(tmp_path / "plain.exr"), read_radiance(tmp_path / "adobe.exr")
    adobe_to_rec709 = np.array([[1.3984, -0.3983, 0.0], [0.0, 1.0, 0.0], [0.0, -0.0429, 1.0429]])  # the known matrix
    np.testing.assert_allclose(converted, np.clip(plain @ adobe_to_rec709.T, 0, None), rtol=2e-3, atol=2e-4)
    assert load_bracket(tmp_path / "plain").colour_profile is None
