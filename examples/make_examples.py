"""Regenerate the bundled sample brackets (deterministic).

    python examples/make_examples.py --radiance-dir ../shared/data/real_hdr

Each scene is synthesised by ``diffhdr_diffusers.data.synthesize_scene`` from one BSD-3-licensed
OpenEXR sample radiance map (see LICENSE.openexr-images): a random crop, a gamma-2.2 camera with
Poisson-Gaussian noise, 16-bit quantisation, hand-held camera jitter and moving foreground objects.
The ground truth ``HDRImg.hdr`` is the radiance seen by the medium (reference) exposure.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from diffhdr_diffusers.data import synthesize_scene, write_scene

HERE = Path(__file__).resolve().parent
# name: (radiance map, seed, EV set). Seeds were picked by looking at the results: large objects
# moving in front of a sky that saturates; a stained-glass window that saturates in the medium and
# long frames; a dark still life with a bright lamp flame.
EXAMPLES = {
    "mountain_motion": ("MtTamWest.exr", 6, (0.0, 2.0, 4.0)),
    "desk_window": ("Desk.exr", 1, (0.0, 3.0, 6.0)),
    "still_life_lamp": ("StillLife.exr", 1, (0.0, 3.0, 6.0)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--radiance-dir", type=Path, default=HERE.parents[1] / "shared" / "data" / "real_hdr")
    parser.add_argument("--size", default="256x384")
    args = parser.parse_args()
    size = tuple(int(side) for side in args.size.split("x"))
    for name, (radiance_map, seed, evs) in EXAMPLES.items():
        scene = synthesize_scene(seed, size=size, ev_sets=[evs], radiance_maps=[args.radiance_dir / radiance_map],
                                 procedural_fraction=0.0)
        print(f"wrote {write_scene(scene, HERE / name, overwrite=True)}")
    shutil.copy(args.radiance_dir / "LICENSE.openexr-images", HERE / "LICENSE.openexr-images")


if __name__ == "__main__":
    main()
