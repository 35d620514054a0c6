"""Grouping a flat card folder into brackets from real EXIF written by Pillow."""

from __future__ import annotations

from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from diffhdr_diffusers.errors import InputError
from diffhdr_diffusers.io.grouping import group_frames

START = datetime(2026, 7, 1, 12, 0, 0)


def shoot(path: Path, when: datetime, exposure: float, bias: float = 0.0) -> Path:
    """A small JPEG with DateTimeOriginal, SubsecTimeOriginal, ExposureTime, FNumber, ISO and the bias."""
    exif = Image.Exif()
    sub = exif.get_ifd(0x8769)
    sub[0x9003] = when.strftime("%Y:%m:%d %H:%M:%S")
    sub[0x9291] = f"{when.microsecond // 10000:02d}"
    time = Fraction(exposure).limit_denominator(100000)
    sub[0x829A] = IFDRational(time.numerator, time.denominator)
    sub[0x829D] = IFDRational(8, 1)
    sub[0x8827] = 100
    sub[0x9204] = IFDRational(int(bias * 3), 3)
    level = int(np.clip(40 * exposure * 250, 0, 255))
    Image.fromarray(np.full((8, 12, 3), level, np.uint8)).save(path, exif=exif)
    return path


def card(tmp_path: Path) -> tuple[list[list[str]], list[Path]]:
    """Three 3-frame brackets shot back to back (0, -2, +2, at 0.3 s intervals), a pause, one 5-frame
    bracket, and a lone frame; file names interleave the brackets."""
    expected, paths = [], []
    when = START
    base = 1 / 125
    names = iter(f"IMG_{number:04d}.JPG" for number in (7, 1, 4, 8, 2, 5, 9, 3, 6, 10, 11, 12, 13, 14, 15))
    for _ in range(3):
        group = []
        for bias in (0, -2, 2):
            group.append(shoot(tmp_path / next(names), when, base * 2.0**bias, bias))
            when += timedelta(seconds=0.3)
        expected.append(sorted(p.name for p in group))
        paths += group
    when += timedelta(seconds=20)
    group = []
    for bias in (0, -1, 1, -2, 2):
        group.append(shoot(tmp_path / next(names), when, base * 2.0**bias, bias))
        when += timedelta(seconds=0.25)
    expected.append(sorted(p.name for p in group))
    paths += group
    lone = shoot(tmp_path / next(names), when + timedelta(seconds=30), base)
    return expected, paths + [lone]


def test_groups_interleaved_brackets_from_exif(tmp_path):
    expected, paths = card(tmp_path)
    shuffled = sorted(paths, key=lambda p: p.name[::-1])
    grouping = group_frames(shuffled)
    assert [sorted(p.name for p in group) for group in grouping.brackets] == expected
    assert [(path.name, reason) for path, reason in grouping.leftovers] == [(paths[-1].name, "no other frame within 2 s")]
    listing = grouping.describe()
    assert listing[3].startswith("bracket 4: 5 frames") and listing[-1].startswith("not grouped: ")


def test_count_and_folder_grouping(tmp_path):
    expected, paths = card(tmp_path)
    by_count = group_frames(paths[:9], by="count:3")
    assert [sorted(p.name for p in group) for group in by_count.brackets] == expected[:3]
    leftover = group_frames(paths[:10], by="count:3").leftovers
    assert len(leftover) == 1 and "do not make a bracket of 3" in leftover[0][1]
    assert len(group_frames(paths, by="folder").brackets) == 1
    with pytest.raises(InputError, match="use time, count:N"):
        group_frames(paths, by="exif")


def test_frames_without_time_are_reported(tmp_path):
    plain = tmp_path / "plain.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(plain)
    grouping = group_frames([plain])
    assert grouping.brackets == [] and "no capture time" in grouping.leftovers[0][1]


def test_auto_grouping_takes_a_folder_with_an_exposure_file_as_one_scene(tmp_path):
    """`diffhdr merge SCENE --out DIR` on one scene folder (frames and an exposure file, no EXIF times) merges
    that scene; the same frames without the exposure file are a card, and no bracket found there is an error."""
    from diffhdr_diffusers.batch import find_scenes

    scene = tmp_path / "beach"
    scene.mkdir()
    for index in range(3):
        Image.fromarray(np.full((8, 8, 3), 60 * index, np.uint8)).save(scene / f"{index}.png")
    (scene / "exposure.txt").write_text("-2\n0\n2\n")
    assert [(found.name, found.inputs) for found in find_scenes(scene)] == [("beach", (scene,))]
    (scene / "exposure.txt").unlink()
    logged = []
    with pytest.raises(InputError, match=r"beach: none of its 3 frames make a bracket by time.*count:N"):
        find_scenes(scene, log=logged.append)
    assert len(logged) == 3 and all("no capture time" in line for line in logged)


def textured_card(tmp_path: Path) -> Path:
    """The card of :func:`card`, with frames of a real texture (a crop of a gradient with stripes) so they merge."""
    folder = tmp_path / "card"
    folder.mkdir()
    card(folder)
    y, x = np.mgrid[0:48, 0:64]
    radiance = ((0.02 + 0.5 * x / 64) * (1.2 + np.sin(y / 3.0)))[..., None] * np.array([1.0, 0.9, 0.8])
    for path in folder.iterdir():
        with Image.open(path) as image:
            exif = image.getexif()
            time = float(exif.get_ifd(0x8769)[0x829A])
        frame = np.clip(radiance * time * 125, 0, 1) ** (1 / 2.2)
        Image.fromarray((frame * 255 + 0.5).astype(np.uint8)).save(path, exif=exif)
    return folder


def test_card_folder_merges_bracket_by_bracket(tmp_path, capfd):
    from merge_support import run_cli

    folder = textured_card(tmp_path)
    code, out, err = run_cli(["merge", str(folder), "--out", str(tmp_path / "out"), "--dry-run"], capfd)
    assert code == 0 and "4 brackets; nothing merged" in out and "IMG_0015.JPG not merged" in err
    assert not (tmp_path / "out").exists()
    code, out, err = run_cli(["merge", str(folder), "--out", str(tmp_path / "out"), "--method", "flow-merge",
                              "--response", "gamma:2.2"], capfd)
    assert code == 0, err
    written = sorted(path.name for path in (tmp_path / "out").glob("*.hdr"))
    # Named by the first and last file name (they were named in capture order: "IMG_0007-IMG_0004", which hid
    # IMG_0001).
    assert written == ["IMG_0001-IMG_0007.hdr", "IMG_0002-IMG_0008.hdr", "IMG_0003-IMG_0009.hdr",
                       "IMG_0010-IMG_0014.hdr"]


def test_card_batch_killed_mid_run_resumes_byte_identically(tmp_path, capfd):
    import os
    import signal
    import subprocess
    import sys
    import time

    from merge_support import run_cli
    from merge_support import SLOW_MERGE

    folder = textured_card(tmp_path)
    args = [str(folder), "--method", "flow-merge", "--response", "gamma:2.2", "--format", "hdr"]
    assert run_cli(["merge", *args[:1], "--out", str(tmp_path / "reference"), *args[1:]], capfd)[0] == 0
    out = tmp_path / "killed"
    command = [sys.executable, "-c", SLOW_MERGE, args[0], "--out", str(out), *args[1:]]
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not list((out / "done").glob("*.json")):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert 1 <= len(list((out / "done").glob("*.json"))) < 4
    restart = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert restart.returncode == 0, restart.stderr[-2000:]
    for name in sorted(path.name for path in (tmp_path / "reference").glob("*.hdr")):
        assert (out / name).read_bytes() == (tmp_path / "reference" / name).read_bytes()
    assert len(list(out.glob("*.hdr"))) == 4


def test_a_card_bracket_without_exposures_is_told_a_fix_that_batch_mode_takes(tmp_path, capfd):
    """A card bracket whose frames carry no exposure time failed with "pass them with --exposures", which --out
    refuses, or "put an exposure.txt next to the images", which makes the card one scene (trial 3)."""
    from merge_support import run_cli

    card = tmp_path / "card"
    card.mkdir()
    for index in range(3):
        Image.fromarray(np.full((16, 16, 3), 60 * index + 30, np.uint8)).save(card / f"IMG_{index}.png")
    code, out, err = run_cli(["merge", str(card), "--out", str(tmp_path / "out"), "--group-by", "count:3",
                              "--method", "flow-merge"], capfd)
    assert code == 1, err
    assert "failed IMG_0-IMG_2: " in out and "no EXIF exposure time" in out, out
    assert "put the bracket's frames in a folder of their own with an exposure.txt" in out
    assert "--exposures" not in out and "next to the images" not in out
