"""Batch mode of ``diffhdr merge``: a folder of scene folders, resumable, a bad scene fails alone, sharded."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from diffhdr_diffusers.cli import main
from diffhdr_diffusers.data.synth import synthesize_scenes
from merge_support import SLOW_MERGE, free_port

NUM_SCENES = 6
SIZE = (48, 64)
ROOT = Path(__file__).resolve().parents[1]
GAMMA = ("--response", "gamma:2.2")  # the synthetic scenes' camera


@pytest.fixture(scope="module")
def shoot(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("shoot")
    synthesize_scenes(folder, NUM_SCENES, size=SIZE, seed=3)
    return folder


@pytest.fixture(scope="module")
def reference_run(shoot, tmp_path_factory) -> Path:
    """An uninterrupted batch run of the shoot with flow-merge."""
    out = tmp_path_factory.mktemp("reference") / "merged"
    assert main(["merge", str(shoot), "--out", str(out), "--method", "flow-merge", *GAMMA]) == 0
    return out


def _scenes(shoot: Path) -> list[str]:
    return sorted(path.name for path in shoot.iterdir() if path.is_dir())


def _outputs(out: Path) -> dict[str, bytes]:
    """Every output and marker file, by path relative to ``out`` (summaries and shard files excluded)."""
    return {str(path.relative_to(out)): path.read_bytes() for path in sorted(out.rglob("*"))
            if path.is_file() and path.parent.name != "shards" and path.name != "summary.json"}


def _partials(out: Path) -> list[Path]:
    return [path for path in out.rglob("*") if ".partial" in path.name or path.name.endswith(".probe")]


def _done_markers(out: Path) -> list[Path]:
    """Finished scenes' markers; not the temporary file of a marker being written (``.NAME.XXXX.partial.json``,
    which a ``*.json`` glob also matches)."""
    return [path for path in (out / "done").glob("*.json") if ".partial" not in path.name]


def test_batch_writes_one_output_set_per_scene_and_resumes(shoot, reference_run, tmp_path, capsys):
    names = _scenes(shoot)
    files = _outputs(reference_run)
    assert set(files) == ({f"{name}.hdr" for name in names} | {f"{name}.png" for name in names}
                          | {f"done/{name}.json" for name in names})
    summary = json.loads((reference_run / "summary.json").read_text())
    assert (summary["done"], summary["fallback"], summary["skipped"], summary["failed"]) == (NUM_SCENES, 0, 0, 0)

    # The same bytes as a single merge of that scene.
    single = tmp_path / "single.hdr"
    assert main(["merge", str(shoot / names[2]), "-o", str(single), "--method", "flow-merge", *GAMMA]) == 0
    assert single.read_bytes() == files[f"{names[2]}.hdr"]
    marker = json.loads(files[f"done/{names[2]}.json"])
    assert marker["settings"]["method"] == "flow-merge" and marker["outputs"][f"{names[2]}.hdr"]["bytes"] == single.stat().st_size
    assert marker["camera"]["response"] == "gamma:2.2" and marker["settings"]["response"] == "gamma:2.2"

    # A second run skips everything; a deleted output makes only its scene run again.
    out = tmp_path / "merged"
    shutil.copytree(reference_run, out)
    capsys.readouterr()
    assert main(["merge", str(shoot), "--out", str(out), "--method", "flow-merge", *GAMMA]) == 0
    assert f"{NUM_SCENES} scenes: 0 done, 0 merged with a fallback, {NUM_SCENES} skipped" in capsys.readouterr().out
    (out / f"{names[4]}.png").unlink()
    assert main(["merge", str(shoot), "--out", str(out), "--method", "flow-merge", *GAMMA]) == 0
    assert f"1 done, 0 merged with a fallback, {NUM_SCENES - 1} skipped" in capsys.readouterr().out
    assert _outputs(out) == files

    # Other settings do not count as finished: that is an error per scene, unless --overwrite.
    assert main(["merge", str(shoot), "--out", str(out), "--method", "naive-merge", *GAMMA]) == 1
    captured = capsys.readouterr().out
    assert f"0 done, 0 merged with a fallback, 0 skipped (already finished), {NUM_SCENES} failed" in captured and "other settings" in captured
    assert "pass --overwrite" in captured  # the library names the remedy; the CLI words it as its flag
    assert "method 'flow-merge', now 'naive-merge'" in captured  # which setting differs
    assert main(["merge", str(shoot), "--out", str(out), "--method", "naive-merge", "--overwrite", *GAMMA]) == 0
    assert json.loads((out / "done" / f"{names[0]}.json").read_text())["settings"]["method"] == "naive-merge"

    # The previews follow --tonemap, as a single merge's do (before, a shoot ignored it).
    global_look = tmp_path / "global"
    assert main(["merge", str(shoot), "--out", str(global_look), "--method", "flow-merge", "--tonemap", "global", *GAMMA]) == 0
    assert (global_look / f"{names[2]}.png").read_bytes() != files[f"{names[2]}.png"]
    single_png = tmp_path / "single.png"
    assert main(["merge", str(shoot / names[2]), "-o", str(single_png), "--method", "flow-merge", "--tonemap", "global", *GAMMA]) == 0
    assert (global_look / f"{names[2]}.png").read_bytes() == single_png.read_bytes()


def test_a_bad_scene_fails_alone_with_its_reason(shoot, reference_run, tmp_path, capsys):
    broken = tmp_path / "shoot"
    shutil.copytree(shoot, broken)
    names = _scenes(broken)
    tiff = sorted((broken / names[1]).glob("*.tif"))[0]
    tiff.write_bytes(tiff.read_bytes()[:300])  # truncated
    (broken / names[3] / "exposure.txt").write_text("0\n0\n0\n")  # equal exposures: invalid

    out = tmp_path / "merged"
    code = main(["merge", str(broken), "--out", str(out), "--method", "flow-merge", *GAMMA])
    captured = capsys.readouterr()
    assert code != 0
    assert f"{NUM_SCENES} scenes: {NUM_SCENES - 2} done, 0 merged with a fallback, 0 skipped (already finished), 2 failed" in captured.out
    failed_lines = [line for line in captured.out.splitlines() if line.strip().startswith("failed ")]
    assert len(failed_lines) == 2
    assert failed_lines[0].startswith(f"  failed {names[1]}: ") and tiff.name in failed_lines[0]
    assert failed_lines[1].startswith(f"  failed {names[3]}: ") and "exposure" in failed_lines[1].lower()
    summary = json.loads((out / "summary.json").read_text())
    assert [row["status"] for row in summary["scenes"]] == ["done", "failed", "done", "failed", "done", "done"]
    for name in (names[1], names[3]):
        assert not (out / f"{name}.hdr").exists() and not (out / "done" / f"{name}.json").exists()
    for name in (names[0], names[2], names[4], names[5]):
        assert (out / f"{name}.hdr").read_bytes() == (reference_run / f"{name}.hdr").read_bytes()
    assert not _partials(out)




def test_sigkill_mid_run_then_restart_gives_identical_outputs(shoot, reference_run, tmp_path):
    out = tmp_path / "merged"
    command = [sys.executable, "-c", SLOW_MERGE, str(shoot), "--out", str(out), "--method", "flow-merge", *GAMMA]
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not _done_markers(out):
            assert process.poll() is None, "the batch run ended before its first scene was done"
            assert time.monotonic() < deadline, "no scene finished within 120 s"
            time.sleep(0.02)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    finished = len(_done_markers(out))
    assert 1 <= finished < NUM_SCENES
    # What a kill during a write leaves behind: the temporary file of an atomic write.
    (out / f".{_scenes(shoot)[-1]}.0123abcd.partial.hdr").write_bytes(b"#?RADIANCE\n")

    restart = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert restart.returncode == 0, restart.stderr[-2000:]
    assert f"{NUM_SCENES - finished} done, 0 merged with a fallback, {finished} skipped" in restart.stdout
    assert _outputs(out) == _outputs(reference_run)
    assert not _partials(out)


@pytest.mark.slow
def test_two_accelerate_processes_give_the_same_outputs(shoot, reference_run, tmp_path):
    out = tmp_path / "merged"
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", free_port(),
               "-m", "diffhdr_diffusers.commands.merge", str(shoot), "--out", str(out), "--method", "flow-merge", *GAMMA]
    result = subprocess.run(command, env={**os.environ, "ACCELERATE_USE_CPU": "1"}, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"{NUM_SCENES} scenes: {NUM_SCENES} done, 0 merged with a fallback, 0 skipped" in result.stdout
    shards = [json.loads((out / "shards" / f"rank-{rank}.json").read_text()) for rank in (0, 1)]
    assert [row["scene"] for row in shards[1]["scenes"]] == _scenes(shoot)[NUM_SCENES // 2:]  # split_between_processes
    assert _outputs(out) == _outputs(reference_run)


def test_scenes_merged_with_a_fallback_have_their_own_status_and_brackets_of_any_size_merge(tmp_path, capsys):
    from diffhdr_diffusers.data.synth import synthesize_scene
    from diffhdr_diffusers.io import write_ldr

    shoot = tmp_path / "shoot"
    brackets = {"a_two": (-1.0, 1.0), "b_five": (-4.0, -2.0, 0.0, 2.0, 4.0), "c_mixed": (0.0, 2.0, 4.0)}
    for name, evs in brackets.items():
        images = synthesize_scene(seed=2, index=0, size=(96, 128), ev_sets=[evs]).images
        if name == "c_mixed":  # its short frame shows another scene: not used, so the scene is a fallback
            images = [synthesize_scene(seed=9, index=5, size=(96, 128), ev_sets=[evs]).images[0], *images[1:]]
        (shoot / name).mkdir(parents=True)
        for frame, image in enumerate(images):
            write_ldr(shoot / name / f"{frame}.tif", image)
        (shoot / name / "exposure.txt").write_text("".join(f"{ev:g}\n" for ev in evs))
    out = tmp_path / "merged"
    assert main(["merge", str(shoot), "--out", str(out), "--method", "flow-merge", *GAMMA]) == 0
    text = capsys.readouterr().out
    assert "3 scenes: 2 done, 1 merged with a fallback, 0 skipped (already finished), 0 failed" in text
    assert "  fallback c_mixed: 0.tif not used: only " in text and "% of informative pixels consistent" in text
    summary = json.loads((out / "summary.json").read_text())
    assert [row["status"] for row in summary["scenes"]] == ["done", "done", "fallback"] and summary["fallback"] == 1
    warned = summary["scenes"][2]["warnings"]
    assert warned and warned[0].startswith("0.tif not used: only ")
    # A rerun skips every scene; summary.json still says what each one's merge warned, and which fell back (a rerun
    # after an interrupted run counted no fallback at all).
    assert main(["merge", str(shoot), "--out", str(out), "--method", "flow-merge", *GAMMA]) == 0
    text = capsys.readouterr().out
    assert "3 skipped (already finished; 1 of them with a fallback)" in text
    assert "  skipped (merged with a fallback before) c_mixed: 0.tif not used: only " in text
    rerun = json.loads((out / "summary.json").read_text())
    assert [row["status"] for row in rerun["scenes"]] == ["skipped"] * 3 and rerun["scenes"][2]["warnings"] == warned
    assert [row["fallback"] for row in rerun["scenes"]] == [False, False, True]
    marker = json.loads((out / "done" / "c_mixed.json").read_text())
    assert marker["rejected"][0]["index"] == 0 and marker["camera"]["response"] == "gamma:2.2"
    assert json.loads((out / "done" / "b_five.json").read_text())["exposures"] == list(brackets["b_five"])


def test_stale_marker_names_a_setting_one_side_lacks_as_unset(tmp_path):
    """A model's done marker against flow-merge settings: the model's settings read as unset now, not None."""
    from diffhdr_diffusers.batch import marker_path, stale_marker

    marker = marker_path(tmp_path, "beach")
    marker.parent.mkdir(parents=True)
    marker.write_text(json.dumps({"settings": {"method": "diffhdr", "steps": 2}}))
    assert stale_marker(tmp_path, "beach", {"method": "flow-merge"}) == "method 'diffhdr', now 'flow-merge'; steps 2, now unset"
    assert stale_marker(tmp_path, "beach", {"method": "diffhdr", "steps": 2}) == ""
    # Nested settings (the preview's tone mapping) name the setting that differs, not the whole dict.
    marker.write_text(json.dumps({"settings": {"tonemap": {"detail": 1.0, "operator": "local"}}}))
    assert stale_marker(tmp_path, "beach", {"tonemap": {"detail": 0.5, "operator": "local"}}) == "tonemap.detail 1.0, now 0.5"


def test_another_bracket_of_the_same_name_is_not_taken_as_finished(shoot, reference_run, tmp_path, capsys):
    """Day two's bracket in a folder named as day one's: its scene fails with the frames its outputs came from,
    instead of being skipped as finished (it was: day two was lost with exit 0). The same card from another mount
    point still resumes, and --overwrite merges the new frames."""
    names = _scenes(shoot)
    out = tmp_path / "merged"
    shutil.copytree(reference_run, out)
    moved = tmp_path / "card_elsewhere"
    shutil.copytree(shoot, moved)
    assert main(["merge", str(moved), "--out", str(out), "--method", "flow-merge", *GAMMA]) == 0
    assert f"{NUM_SCENES} skipped" in capsys.readouterr().out
    day_two = tmp_path / "day_two"
    day_two.mkdir()
    shutil.copytree(shoot / names[1], day_two / names[0])  # another bracket, under the first one's name
    first_frame = sorted((day_two / names[0]).glob("input_*"))[0]
    before = (out / f"{names[0]}.hdr").read_bytes()
    assert main(["merge", str(day_two), "--out", str(out), "--method", "flow-merge", *GAMMA]) == 1
    text = capsys.readouterr().out
    assert f"failed {names[0]}: {out} holds its outputs merged from other files (" in text and "pass --overwrite" in text
    assert first_frame.name in text and (out / f"{names[0]}.hdr").read_bytes() == before
    # An exposure file edited since the merge is named as what changed.
    edited = tmp_path / "edited"
    shutil.copytree(shoot, edited)
    exposure_file = next(path for path in (edited / names[2]).iterdir() if path.suffix == ".txt")
    exposure_file.write_text(exposure_file.read_text() + "\n")
    assert main(["merge", str(edited), "--out", str(out), "--method", "flow-merge", *GAMMA]) == 1
    assert f"merged from other files ({exposure_file.name} changed)" in capsys.readouterr().out
    assert main(["merge", str(day_two), "--out", str(out), "--method", "flow-merge", "--overwrite", *GAMMA]) == 0
    assert (out / f"{names[0]}.hdr").read_bytes() == (reference_run / f"{names[1]}.hdr").read_bytes()


def test_an_output_folder_inside_the_card_is_no_scene(tmp_path, capsys):
    """`diffhdr merge card --out card/hdr` twice: the second run resumed (it took the card for one scene folder
    once the output folder was in it, and failed); a frame in no bracket is listed in the summary too."""
    from test_grouping import textured_card

    card = textured_card(tmp_path)
    out = card / "hdr"
    arguments = ["merge", str(card), "--out", str(out), "--method", "flow-merge", *GAMMA]
    assert main(arguments) == 0
    assert "4 scenes: 4 done" in capsys.readouterr().out
    assert main(arguments) == 0
    second = capsys.readouterr().out
    assert "4 scenes: 0 done, 0 merged with a fallback, 4 skipped (already finished), 0 failed" in second, second
    assert "1 frame in no bracket, not merged:\n  IMG_0015.JPG: " in second
    summary = json.loads((out / "summary.json").read_text())
    assert [row["file"] for row in summary["not_merged"]] == ["IMG_0015.JPG"]
