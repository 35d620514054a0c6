"""A fixed train / held-out split of the real radiance maps, by file name.

The held-out maps (about 20 % of ``shared/data/real_hdr`` and ``shared/data/real_hdr_more``) span the
kinds of scene: outdoor sun, overcast, urban, forest, low sun, night and interiors. Training never
sees them; every other map is train. Names match by stem, case-insensitively, so a map converted
from ``.hdr`` to ``.exr`` keeps its split. ``Desk``, ``StillLife`` and ``MtTamWest`` (the sources of
``examples/``) are train.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

SPLITS = ("train", "heldout", "all")

HELDOUT_MAPS: dict[str, str] = {  # file name: kind of scene
    "GoldenGate.exr": "outdoor sun, urban landscape (OpenEXR samples)",
    "nancy_church.hdr": "interior, church windows (PU21)",
    "crystal_falls_1k.hdr": "outdoor sun, waterfall and trees",
    "kloofendal_overcast_1k.hdr": "overcast, outdoor",
    "leadenhall_market_1k.hdr": "urban covered market, skylights and lamps",
    "phalzer_forest_01_1k.hdr": "forest",
    "golden_bay_1k.hdr": "low sun, coast",
    "st_peters_square_night_1k.hdr": "night, city lights",
    "hotel_room_1k.exr": "interior, window and lamps",
    "drachenfels_cellar_1k.hdr": "interior, dark cellar with lamps",
}
_HELDOUT_STEMS = frozenset(Path(name).stem.lower() for name in HELDOUT_MAPS)


def is_heldout(path: str | os.PathLike) -> bool:
    """Whether the radiance map at ``path`` belongs to the held-out split."""
    return Path(path).stem.lower() in _HELDOUT_STEMS


def split_radiance_maps(paths: Iterable[str | os.PathLike], split: str) -> list[Path]:
    """The maps of ``paths`` in ``split`` (``"train"``, ``"heldout"`` or ``"all"``), in the given order."""
    if split not in SPLITS:
        raise ValueError(f"split {split!r}: use one of {SPLITS}")
    paths = [Path(path) for path in paths]
    if split == "all":
        return paths
    return [path for path in paths if is_heldout(path) == (split == "heldout")]
