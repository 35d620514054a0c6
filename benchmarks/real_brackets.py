"""Real handheld brackets, scored by rank statistics (no ground truth and no response curve assumed).

    python benchmarks/real_brackets.py [--data ../shared/data/real_brackets] [--model PATH]

For each bracket in ``--data`` (pingpong, horse, sculpture_garden) and each method, it prints:

* ``rejected``: frames the alignment did not use;
* ``above clip``: where the reference frame is saturated in all channels and the shortest frame is
  not, the share of output pixels whose luminance is above the reference's clip level (a
  reference-only output has none);
* ``rho hi``: there, Spearman's rank correlation of the output's luminance with the shortest frame's
  (the output follows the scene, not a flat white);
  the other frames are first registered to the reference by a global homography (ORB features on
  histogram-equalised grey images and RANSAC, independent of the project's alignment), and every statistic is taken
  at quarter resolution, so camera shake (pingpong moves by about 36 pixels) and a pixel of parallax
  do not decide a rank; pixels that moved are left out by histogram order (those saturated in the reference
  must be among the short frame's brightest, as many as the reference has saturated, and likewise for black);
* ``rho lo``: where the reference is black in all channels and the longest frame is not, the rank
  correlation with the longest frame;
* ``rho mid``: where the reference is well exposed, the rank correlation with the reference (a ghost
  blended in from another frame lowers it).

Targets (issue 22): no frame rejected, ``above clip`` mostly (> 50 %), ``rho hi`` and ``rho lo`` >= 0.9,
``rho mid`` >= 0.99. Ranks are taken on code values, so no response curve enters the statistics.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from scipy.stats import spearmanr

from diffhdr_diffusers.alignment.exposure import BLACK_LEVEL, WHITE_LEVEL
from diffhdr_diffusers.errors import InputError
from diffhdr_diffusers.io import load_bracket
from diffhdr_diffusers.methods import load_method, load_pipeline

BRACKETS = ("pingpong", "horse", "sculpture_garden")
SAMPLES = 200_000
LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)


def luminance(image: np.ndarray) -> np.ndarray:
    return np.asarray(image, np.float32) @ LUMA


def rank_correlation(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """Spearman's rho of ``a`` and ``b`` over ``mask`` (a fixed subsample when large); nan if < 50 pixels."""
    index = np.flatnonzero(mask)
    if len(index) < 50:
        return float("nan")
    if len(index) > SAMPLES:
        index = index[:: len(index) // SAMPLES]
    return float(spearmanr(a.ravel()[index], b.ravel()[index]).statistic)


def register(frame: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(warped, seen)``: ``frame`` warped onto ``reference`` by a global homography from ORB features on
    histogram-equalised grey images and RANSAC (exposure does not matter to it; independent of the project's own
    alignment), and where the frame saw that part of the scene (camera shake leaves a strip along the edge where
    it did not: no statistic is taken there)."""
    height, width = reference.shape[:2]
    frame = np.asarray(frame, np.float32)
    unregistered = frame, np.ones((height, width), bool)

    def grey(image):
        return cv2.equalizeHist(np.clip(np.asarray(image, np.float32).mean(axis=2) * 255 + 0.5, 0, 255).astype(np.uint8))

    orb = cv2.ORB_create(5000)
    points_ref, features_ref = orb.detectAndCompute(grey(reference), None)
    points, features = orb.detectAndCompute(grey(frame), None)
    if features_ref is None or features is None:
        return unregistered
    matches = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(features, features_ref)
    if len(matches) < 12:
        return unregistered
    source = np.float32([points[m.queryIdx].pt for m in matches])
    target = np.float32([points_ref[m.trainIdx].pt for m in matches])
    homography, _ = cv2.findHomography(source, target, cv2.RANSAC, 3.0)
    if homography is None:
        return unregistered
    warped = cv2.warpPerspective(frame, homography, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    seen = cv2.warpPerspective(np.ones(frame.shape[:2], np.float32), homography, (width, height),
                               flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    return warped, seen >= 1.0 - 1e-6


def coarse(image: np.ndarray) -> np.ndarray:
    """Quarter resolution (area average), so that a pixel or two of parallax does not decide a rank."""
    return cv2.resize(np.asarray(image, np.float32), None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA)


def score(images, clip_ev, reference_index, radiance, rejected) -> dict:
    reference = images[reference_index]
    (short, short_seen), (long, long_seen) = register(images[0], reference), register(images[-1], reference)
    reference, short, long = (coarse(image) for image in (reference, short, long))
    short_seen, long_seen = (coarse(seen.astype(np.float32)) >= 1.0 for seen in (short_seen, long_seen))
    radiance = coarse(radiance)
    ref_max, short_level, long_level = reference.max(axis=2), luminance(short), luminance(long)
    saturated = (reference.min(axis=2) >= WHITE_LEVEL) & (short.max(axis=2) < WHITE_LEVEL) & (short.max(axis=2) > BLACK_LEVEL)
    saturated &= short_seen
    black = (ref_max <= BLACK_LEVEL) & (long.max(axis=2) > BLACK_LEVEL) & (long.max(axis=2) < WHITE_LEVEL) & long_seen
    # Leave out what moved: a monotone camera keeps the order of brightness, so the pixels saturated in the
    # reference must be among the short frame's brightest (as many of them, by histogram), and the black
    # ones among the long frame's darkest. A pixel outside that share shows something else (a person).
    saturated &= short_level >= np.quantile(short_level, 1.0 - 1.2 * (reference.min(axis=2) >= WHITE_LEVEL).mean())
    black &= long_level <= np.quantile(long_level, min(1.0, 1.2 * (ref_max <= BLACK_LEVEL).mean()))
    exposed = (ref_max > 0.1) & (ref_max < 0.9)
    output = luminance(radiance)
    clip_level = 1.0 / 2.0**clip_ev  # the brightest radiance the reference frame can express
    return {
        "rejected": rejected,
        "hi px": saturated.mean(),
        "above clip": float((output[saturated] > 1.02 * clip_level).mean()) if saturated.any() else float("nan"),
        "rho hi": rank_correlation(output, luminance(short), saturated),
        "rho lo": rank_correlation(output, luminance(long), black),
        "rho mid": rank_correlation(output, luminance(reference), exposed),
        "max": float(output.max() / clip_level),
    }


def methods(model: str | None) -> dict:
    """Label -> a merge method of the project's one methods layer, with the response it applies."""
    table = {"reference frame": load_method("reference", response="auto"),
             "naive merge (auto response)": load_method("naive-merge", response="auto"),
             "flow-merge, gamma:2.2": load_method("flow-merge", response="gamma:2.2"),
             "flow-merge, auto": load_method("flow-merge", response="auto")}
    if model is not None:
        table["model, auto"] = load_method(load_pipeline(None if model == "bundled" else model, progress=False), response="auto")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[1] / "../shared/data/real_brackets"))
    parser.add_argument("--model", default=None,
                        help="also score a model: a pipeline folder, or 'bundled' (default: classical methods only)")
    args = parser.parse_args()
    data = Path(args.data)
    if not data.is_dir():
        raise SystemExit(f"{data}: no real brackets here; pass --data")
    print("| bracket | method | rejected | reference saturated | above clip | rho hi | rho lo | rho mid | max / clip | s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    table = methods(args.model)
    for name in BRACKETS:
        bracket = load_bracket(data / name)
        reference_index = len(bracket.images) // 2
        for label, method in table.items():
            try:
                result = method.merge_bracket(bracket, reference_index=reference_index)
            except InputError as error:
                print(f"| {name} | {label} | {error} |")
                continue
            radiance = result.radiance
            if bracket.camera_to_rec709 is not None:  # scored in the frames' own RGB (an ICC profile's), as they are
                radiance = radiance @ np.linalg.inv(bracket.camera_to_rec709).T.astype(np.float32)
            row = score(bracket.images, result.camera.exposures[reference_index], reference_index, radiance,
                        len(result.rejected))
            seconds = result.seconds
            print(f"| {name} | {label} | {row['rejected']} | {row['hi px']:.1%} | {row['above clip']:.0%} | "
                  f"{row['rho hi']:.3f} | {row['rho lo']:.3f} | {row['rho mid']:.4f} | {row['max']:.1f} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
