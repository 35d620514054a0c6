"""What the camera response costs at 12 MP, against a flow-merge of the same bracket in the same run.

    python benchmarks/bench_response.py [--bracket ../shared/data/real_brackets/pingpong] [--repeats 2]

The bracket (real JPEGs) is upscaled to 4000x3000 (nearest neighbour, so the frames keep their 8-bit codes as a 12 MP JPEG does). Rows: estimating the response and exposures
(``estimate_camera``), re-encoding the frames into the canonical encoding (``encode_canonical``), both
together (``apply_camera(response="auto")``), and ``flow_merge_radiance`` on the canonical frames. The
last column is each row's time over the flow-merge's (issue 22's target: auto adds at most 20 %).
Best of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2

from diffhdr_diffusers.camera import apply_camera, encode_canonical, estimate_camera
from diffhdr_diffusers.io import load_bracket
from diffhdr_diffusers.merging import flow_merge_radiance


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = Path(__file__).resolve().parents[1] / "../shared/data/real_brackets/pingpong"
    parser.add_argument("--bracket", default=str(default))
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    bracket = load_bracket(args.bracket)
    images = [cv2.resize(image, (4000, 3000), interpolation=cv2.INTER_NEAREST) for image in bracket.images]  # still 8-bit codes, as a 12 MP JPEG
    evs = bracket.exposures
    estimate = estimate_camera(images, evs)
    canonical, camera = apply_camera(images, evs, "auto")
    rows = {
        "estimate_camera": best_of(args.repeats, lambda: estimate_camera(images, evs)),
        "encode_canonical": best_of(args.repeats, lambda: encode_canonical(images, estimate.response)),
        "apply_camera (auto: both)": best_of(args.repeats, lambda: apply_camera(images, evs, "auto")),
        "flow_merge_radiance": best_of(args.repeats, lambda: flow_merge_radiance(canonical, camera.exposures)),
    }
    merge = rows["flow_merge_radiance"]
    print(f"12 MP (4000x3000, {len(images)} frames from {Path(args.bracket).name}), best of {args.repeats}")
    print("| step | s | / flow-merge |\n|---|---|---|")
    for name, seconds in rows.items():
        print(f"| {name} | {seconds:.2f} | {seconds / merge:.2f} |")


if __name__ == "__main__":
    main()
