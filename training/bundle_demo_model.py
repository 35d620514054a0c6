"""Bundle a trained run as the package's default model, with a model card of measured metrics.

Copies the exported pipeline of ``RUN_DIR`` (written by ``train_diffhdr.py``) into
``diffhdr_diffusers/default_model``, scores it and the classical baselines with ``diffhdr evaluate`` on a
held-out Kalantari-layout folder, and writes the card from those numbers, the run's validation curve and
the facts given on the command line. Nothing in the card is typed in by hand except ``--data`` and
``--command``.

    python training/bundle_demo_model.py runs/demo --test-dir demo_data/Test --results runs/demo_eval \\
        --data "240 synthetic scenes ..." --command "accelerate launch training/train_diffhdr.py ..." \\
        --duration "110 minutes on a 2-core CPU"
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
from pathlib import Path

from diffhdr_diffusers import cli
from diffhdr_diffusers.errors import InputError
from diffhdr_diffusers.pipelines.model_card import write_model_card

PACKAGE_MODEL = Path(__file__).resolve().parents[1] / "diffhdr_diffusers" / "default_model"
PIPELINE_ITEMS = ("model_index.json", "scheduler", "unet", "condition_encoder")
COLUMNS = ("psnr_mu", "psnr_l", "ssim_mu", "ssim_l", "pu21_psnr", "seconds")
BASELINES = ("flow-merge", "reference", "naive-merge", "debevec")  # flow-merge first: the baseline to beat
MODEL_ROW = "DiffHDR (this model)"


def evaluate(test_dir: str, results: Path, name: str, source: list[str]) -> dict:
    """Run ``diffhdr evaluate`` (in this process) and return its mean metrics, rounded for the card."""
    out = results / name
    code = cli.main(["evaluate", test_dir, *source, "--out", str(out), "--overwrite"])
    if code:
        raise SystemExit(code)
    means = json.loads((out / "metrics.json").read_text())["means"]
    return {key.replace("seconds", "s/scene"): round(means[key], 4 if "ssim" in key else 2) for key in COLUMNS}


def validation_curve(run: Path) -> str:
    """``step N: X dB`` for every validation record of the run."""
    path = run / "validation.jsonl"
    if not path.exists():
        return "not recorded"
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return ", ".join(f"step {r['step']}: {r['psnr_mu']:.2f} dB" for r in records)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="output_dir of a finished train_diffhdr.py run")
    parser.add_argument("--test-dir", required=True, help="held-out Kalantari-layout folder to score on")
    parser.add_argument("--results", type=Path, required=True, help="folder for the evaluation outputs")
    parser.add_argument("--data", required=True, help="what the model was trained on (one sentence)")
    parser.add_argument("--command", required=True, help="the exact training command")
    parser.add_argument("--duration", required=True, help="how long training ran, and on what")
    parser.add_argument("--objective", default=None, help="the training objective (one sentence)")
    parser.add_argument("--note", default="", help="extra sentence after the metrics description")
    parser.add_argument("--limitation", action="append", default=[], help="an extra limitation (repeatable)")
    parser.add_argument("--initial-steps", type=int, default=0, metavar="K",
                        help="optimizer steps of the weights the run started from (--pretrained_model_name_or_path)")
    parser.add_argument("--dest", type=Path, default=PACKAGE_MODEL, help="where to bundle (default: the package)")
    parser.add_argument("--evaluate-args", default="", metavar="ARGS",
                        help="further diffhdr evaluate flags for every method, e.g. '--response auto --units model'")
    parser.add_argument("--baselines", default=",".join(BASELINES), metavar="M,...",
                        help=f"the methods scored beside the model, the first being the one to beat (default {','.join(BASELINES)})")
    parser.add_argument("--section", action="append", default=[], metavar="HEADING=FILE.md",
                        help="an extra card section from a markdown file, before the limitations (repeatable)")
    parser.add_argument("--description", default=None, help="the card's opening sentence")
    args = parser.parse_args(argv)
    extra = shlex.split(args.evaluate_args)
    baselines = [method for method in args.baselines.split(",") if method]
    sections = {}
    for item in args.section:
        heading, _, path = item.partition("=")
        if not path or not Path(path).is_file():
            raise InputError(f"--section {item}: give HEADING=FILE.md with an existing markdown file.")
        sections[heading] = Path(path).read_text().strip()

    state_file = args.run_dir / "training_state.json"
    if not state_file.is_file():
        raise InputError(f"{state_file}: not found; RUN_DIR must be the --output_dir of a train_diffhdr.py run that "
                         "saved a checkpoint.")
    state = json.loads(state_file.read_text())
    if args.dest.exists():
        shutil.rmtree(args.dest)
    args.dest.mkdir(parents=True)
    for item in PIPELINE_ITEMS:
        source = args.run_dir / item
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, args.dest / item)

    rows = {MODEL_ROW: evaluate(args.test_dir, args.results, "model", ["--model", str(args.dest), *extra])}
    for method in baselines:
        rows[method] = evaluate(args.test_dir, args.results, method, ["--method", method, *extra])
    scenes = len([p for p in Path(args.test_dir).iterdir() if p.is_dir()])
    flags = f" {args.evaluate_args}" if args.evaluate_args else ""
    described = {"flow-merge": "flow-merge (the classical baseline to beat)", "reference": "the reference frame"}
    comparisons = [f"{rows[MODEL_ROW]['psnr_mu'] - rows[method]['psnr_mu']:+.2f} dB against {described[method]}"
                   for method in baselines if method in described]
    note = (f"Means over the {scenes} held-out scenes of `{args.test_dir}`, scored with `diffhdr evaluate "
            f"{args.test_dir} --model <this folder>{flags}` (the pipeline defaults above, seed 0) and `--method "
            f"{'|'.join(baselines)}{flags}`. PSNR-mu: {', '.join(comparisons)}. {args.note}").strip()
    training = {"data": args.data}
    if args.objective:
        training["objective"] = args.objective
    steps = f"{state['global_step'] + args.initial_steps:,} optimizer steps"
    if args.initial_steps:
        steps += f" ({args.initial_steps:,} in an earlier run, then {state['global_step']:,} starting from its weights)"
    training.update({"steps": steps, "duration": args.duration,
                     "validation PSNR-mu (held-out centre crops)": validation_curve(args.run_dir),
                     "command": args.command})
    write_model_card(args.dest, overwrite=True,
                     description=args.description or (
                         "The demo DiffHDR pipeline bundled with `diffhdr-diffusers`, trained by the project's own "
                         "`training/train_diffhdr.py` so that the README's quick start runs offline."),
                     training=training, metrics=rows, metrics_note=note, sections=sections,
                     limitations=[*args.limitation,
                                  "Trained only on synthetic brackets; for real photographs convert the authors' "
                                  "weights with `diffhdr convert-original` (trained 3 M steps on Kalantari's real "
                                  "captures)."])
    (args.results / "rows.json").write_text(json.dumps(rows, indent=1))
    print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    from diffhdr_diffusers.cli import run_command

    sys.exit(run_command("bundle_demo_model", main))
