"""``training/bundle_demo_model.py``: the bundled model's card carries the numbers `diffhdr evaluate` measured."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import torch
from merge_support import save_tiny_pipeline
from merge_support import write_scenes

from diffhdr_diffusers import DiffHDRPipeline

SCRIPT = Path(__file__).resolve().parents[1] / "training" / "bundle_demo_model.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("bundle_demo_model", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bundles_the_run_and_writes_measured_metrics_into_its_card(tmp_path):
    run = save_tiny_pipeline(tmp_path / "run")
    (run / "training_state.json").write_text(json.dumps({"global_step": 1234}))
    (run / "validation.jsonl").write_text(json.dumps({"step": 1000, "psnr_mu": 25.5}) + "\n")
    (run / "checkpoint-1000").mkdir()  # training leftovers must not be bundled
    test_dir = write_scenes(tmp_path / "Test", num_scenes=2, size=(32, 48))
    dest, results = tmp_path / "default_model", tmp_path / "results"

    _load_script().main([str(run), "--test-dir", str(test_dir), "--results", str(results), "--dest", str(dest),
                         "--data", "two toy scenes", "--command", "accelerate launch train", "--duration", "1 s",
                         "--initial-steps", "500"])

    assert not (dest / "checkpoint-1000").exists()
    bundled, trained = (DiffHDRPipeline.from_pretrained(folder).unet.state_dict() for folder in (dest, run))
    assert bundled.keys() == trained.keys() and all(torch.equal(bundled[k], trained[k]) for k in trained)
    card = (dest / "README.md").read_text()
    rows = json.loads((results / "rows.json").read_text())
    for name, source in (("DiffHDR (this model)", "model"), ("flow-merge", "flow-merge"), ("naive-merge", "naive-merge")):
        measured = json.loads((results / source / "metrics.json").read_text())["means"]["psnr_mu"]
        assert rows[name]["psnr_mu"] == round(measured, 2)
        assert f"| {name} | {rows[name]['psnr_mu']:.2f} |" in card
    assert "against flow-merge (the classical baseline to beat)" in card
    assert "1,734 optimizer steps (500 in an earlier run, then 1,234 starting from its weights)" in card and "step 1000: 25.50 dB" in card and "two toy scenes" in card
