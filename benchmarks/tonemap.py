"""Tone mapping targets (issue 25): clipping, local contrast in a saturated window, halos and 24 MP speed.

    python benchmarks/tonemap.py                 # everything (about a minute on this CPU)
    python benchmarks/tonemap.py --no-speed      # without the 24 MP timing
    python benchmarks/tonemap.py --save DIR      # also write each tonemapped image as PNG into DIR

Rows, per input:

- **radiance maps** in ``/work/shared/data/real_hdr`` and ``real_hdr_more`` (real HDR photographs);
- **the real brackets** in ``/work/shared/data/real_brackets``, merged by flow-merge with the camera response
  estimated from each bracket (``--response auto``: aligned and deghosted). For these, OpenCV's Mertens
  fusion of the same frames is the anchor.

Columns: ``clipped`` = pixels whose every channel is within 2 % of black or white, split ``black`` and
``white`` (target: at most 5 % in total); ``window`` = in the reference frame's saturated region
(all channels >= 0.98, at least 0.5 % of the image), the mean gradient magnitude of log luminance
over the short frame's (target: at least 0.45, Mertens's on pingpong); ``step overshoot`` on a
synthetic 10-stop step edge (target: under 5 % of the step); 24 MP seconds against Mertens's
(target: under 5 s).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import cv2
import numpy as np

from diffhdr_diffusers.io import read_ldr, read_radiance, scan_scene, scene_exposures
from diffhdr_diffusers.tonemapping import luminance, srgb_decode, to_bits, tonemap

DATA = Path("/work/shared/data")
OPERATORS = ("natural", "global", "none")
NEAR = 0.02  # "within 2 % of black or white", on the sRGB-encoded output


def flow_merged(folder: Path) -> tuple[np.ndarray, list[np.ndarray], list[float]]:
    """A real bracket merged as ``diffhdr merge --method flow-merge`` does (the response estimated from the
    bracket, aligned, deghosted), with its frames short to long as read and their EVs."""
    from diffhdr_diffusers.io import load_bracket
    from diffhdr_diffusers.methods import load_method

    bracket = load_bracket(folder)
    result = load_method("flow-merge", response="auto").merge_bracket(bracket)
    return result.radiance, bracket.images, bracket.exposures


def mertens(frames: list[np.ndarray]) -> np.ndarray:
    """OpenCV's exposure fusion of camera-encoded frames, as float RGB in [0, 1]."""
    fused = cv2.createMergeMertens().process([np.ascontiguousarray(to_bits(frame)[..., ::-1]) for frame in frames])
    return np.clip(fused[..., ::-1], 0.0, 1.0)


def clipped(image: np.ndarray) -> tuple[float, float]:
    """Fractions of pixels whose channels are all within 2 % of black, and of white."""
    return float(np.all(image <= NEAR, axis=-1).mean()), float(np.all(image >= 1.0 - NEAR, axis=-1).mean())


def log_gradient(image: np.ndarray) -> np.ndarray:
    """Gradient magnitude of log2 luminance of an sRGB-encoded image (display-linear luminance)."""
    log_luminance = np.log2(np.maximum(luminance(srgb_decode(image)), 1e-4))
    dx = cv2.Sobel(log_luminance, cv2.CV_32F, 1, 0, ksize=3) / 8
    dy = cv2.Sobel(log_luminance, cv2.CV_32F, 0, 1, ksize=3) / 8
    return np.hypot(dx, dy)


def saturated_window(reference: np.ndarray) -> np.ndarray | None:
    """Where the reference frame is clipped in every channel (eroded by 2 pixels), or None if under 0.5 %."""
    mask = np.all(reference >= 0.98, axis=-1).astype(np.uint8)
    mask = cv2.erode(mask, np.ones((5, 5), np.uint8)).astype(bool)
    return mask if mask.mean() >= 0.005 else None


def window_contrast(image: np.ndarray, short: np.ndarray, window: np.ndarray) -> float:
    """Local contrast of ``image`` in ``window`` relative to the short frame's there."""
    return float(log_gradient(image)[window].mean() / log_gradient(short)[window].mean())


def step_edge(height: int = 64, width: int = 256, stops: float = 10.0) -> np.ndarray:
    """A synthetic radiance map: grey at 1 on the left half, ``2**stops`` on the right (with faint texture)."""
    radiance = np.ones((height, width, 3), np.float32)
    radiance[:, width // 2:] = 2.0**stops
    texture = 1.0 + 0.02 * np.sin(np.arange(width, dtype=np.float32) / 3.0)
    return radiance * texture[None, :, None]


def step_plateaus(image: np.ndarray) -> tuple[float, float]:
    """Display-linear luminance of the tonemapped step's far dark and bright plateaus."""
    profile = srgb_decode(image).mean(axis=(0, 2))
    return float(np.median(profile[: profile.size // 8])), float(np.median(profile[-profile.size // 8:]))


def step_overshoot(image: np.ndarray) -> float:
    """Largest excursion of the tonemapped step beyond its own far plateaus, as a fraction of the step."""
    profile = srgb_decode(image).mean(axis=(0, 2))
    width = profile.size
    dark, bright = np.median(profile[: width // 8]), np.median(profile[-width // 8:])
    step = abs(bright - dark)
    low, high = min(dark, bright), max(dark, bright)
    excursion = max(profile.max() - high, low - profile.min(), 0.0)
    return float(excursion / step) if step > 0 else float("inf")


def radiance_inputs() -> list[tuple[str, Path]]:
    maps = sorted((DATA / "real_hdr").glob("*.exr")) + sorted((DATA / "real_hdr").glob("*.hdr"))
    maps += sorted((DATA / "real_hdr_more").glob("*.hdr")) + sorted((DATA / "real_hdr_more").glob("*.exr"))
    return [(path.stem, path) for path in maps]


def save(folder: Path | None, name: str, image: np.ndarray) -> None:
    if folder is not None:
        cv2.imwrite(str(folder / f"{name}.png"), to_bits(image)[..., ::-1])


def bracket_table(save_dir: Path | None) -> None:
    folders = sorted(path for path in (DATA / "real_brackets").glob("*") if path.is_dir())
    print("\n## Real brackets, flow-merge with the estimated response (diffhdr merge --method flow-merge)\n")
    print("| bracket | output | black % | white % | clipped % | window contrast / short | seconds |")
    print("|---|---|---|---|---|---|---|")
    for folder in folders:
        radiance, frames, exposures = flow_merged(folder)
        reference, short = frames[len(frames) // 2], frames[0]
        window = saturated_window(reference)
        start = time.perf_counter()
        rows = {"Mertens (frames)": mertens(frames)}
        rows["Mertens (frames)", "seconds"] = time.perf_counter() - start
        for operator in OPERATORS:
            start = time.perf_counter()
            rows[operator] = tonemap(radiance, operator)
            rows[operator, "seconds"] = time.perf_counter() - start
        for name in ("Mertens (frames)", *OPERATORS):
            black, white = clipped(rows[name])
            contrast = f"{window_contrast(rows[name], short, window):.2f}" if window is not None else "no window"
            print(f"| {folder.name} | {name} | {100 * black:.1f} | {100 * white:.1f} | {100 * (black + white):.1f} "
                  f"| {contrast} | {rows[name, 'seconds']:.2f} |")
            save(save_dir, f"{folder.name}_{name.split()[0].lower()}", rows[name])
        save(save_dir, f"{folder.name}_reference", reference)


def radiance_table(save_dir: Path | None) -> None:
    print("\n## Real radiance maps (real_hdr, real_hdr_more): natural operator\n")
    print("| map | stops | black % | white % | clipped % | global clipped % | seconds |")
    print("|---|---|---|---|---|---|---|")
    worst = []
    for name, path in radiance_inputs():
        radiance = read_radiance(path)
        values = luminance(radiance)
        positive = values[values > 0]
        stops = np.log2(np.percentile(positive, 99.9) / np.percentile(positive, 0.1)) if positive.size else 0.0
        start = time.perf_counter()
        image = tonemap(radiance)
        seconds = time.perf_counter() - start
        black, white = clipped(image)
        global_black, global_white = clipped(tonemap(radiance, "global"))
        worst.append(black + white)
        print(f"| {name} | {stops:.1f} | {100 * black:.1f} | {100 * white:.1f} | {100 * (black + white):.1f} "
              f"| {100 * (global_black + global_white):.1f} | {seconds:.2f} |")
        save(save_dir, f"map_{name}", image)
    print(f"\nnatural: worst clipped {100 * max(worst):.1f} %, median {100 * np.median(worst):.1f} %, "
          f"{sum(value > 0.05 for value in worst)} of {len(worst)} maps over 5 %")


def halo_table(save_dir: Path | None) -> None:
    print("\n## Synthetic 10-stop step edge: overshoot beyond the plateaus, fraction of the step\n")
    print("| operator | overshoot % | step kept (stops of 10) |")
    print("|---|---|---|")
    radiance = step_edge()
    for operator in OPERATORS[:2]:
        image = tonemap(radiance, operator)
        dark, bright = step_plateaus(image)
        print(f"| {operator} | {100 * step_overshoot(image):.2f} | {np.log2(bright / dark):.1f} |")
        save(save_dir, f"step_{operator}", image)
    # Exposure fusion of virtual exposures of the same radiance (EV -12 to -2, 2 stops apart), for comparison.
    virtual = [tonemap(radiance, "none", exposure=float(ev)) for ev in range(-12, 0, 2)]
    fused = mertens(virtual)
    kept = np.log2(step_plateaus(fused)[1] / step_plateaus(fused)[0])
    print(f"| Mertens fusion of 6 virtual exposures (cv2) | {100 * step_overshoot(fused):.2f} | {kept:.1f} |")
    save(save_dir, "step_mertens", fused)


def speed_table(repeats: int) -> None:
    print(f"\n## 24 MP (4000 x 6000) timing: first run and best of {repeats}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n")
    radiance = cv2.resize(read_radiance(DATA / "real_hdr" / "StillLife.exr"), (6000, 4000),
                          interpolation=cv2.INTER_LINEAR)
    frames = [to_bits(tonemap(radiance, "none", exposure=ev)) for ev in (-2.0, 0.0, 2.0)]
    runs = {operator: [_timed(lambda: tonemap(radiance, operator)) for _ in range(repeats)] for operator in OPERATORS}
    anchor = "Mertens (3 frames, uint8)"
    runs[anchor] = [_timed(lambda: cv2.createMergeMertens().process(frames)) for _ in range(repeats)]
    print("| method | first s | best s | best / Mertens best |")
    print("|---|---|---|---|")
    for name, seconds in runs.items():
        print(f"| {name} | {seconds[0]:.2f} | {min(seconds):.2f} | {min(seconds) / min(runs[anchor]):.2f} |")


def _timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-speed", action="store_true", help="skip the 24 MP timing")
    parser.add_argument("--repeats", type=int, default=2, help="24 MP timing: best of this many runs")
    parser.add_argument("--save", type=Path, help="write the tonemapped images as PNG into this folder")
    args = parser.parse_args()
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
    print(f"OpenCV threads: {cv2.getNumThreads()}")
    halo_table(args.save)
    bracket_table(args.save)
    radiance_table(args.save)
    if not args.no_speed:
        speed_table(args.repeats)


if __name__ == "__main__":
    main()
