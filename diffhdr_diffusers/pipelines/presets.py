"""Named sampling presets: keyword arguments for :class:`DiffHDRPipeline.__call__`, chosen per model.

A preset means what it says for the model it is used with: :func:`sampling_preset` reads the model's defaults
(its ``config``) and returns settings that keep that promise there. ``"default"`` is the model's own defaults
(no keyword arguments). ``"fast"`` costs at most half the model's default UNet window evaluations
(:func:`window_passes`, at the model's processing size of a 1000x1500 bracket), so it is never slower:

* where the shifted-window grid of :data:`FAST_PRESET` is that cheap (the paper's model: 62 window passes
  against 3,825), it is that grid;
* otherwise (a small model whose default is already a few steps on small windows, where the shifted grid's
  half-overlapping last step costs more than it saves), it is the model's default grid with half its steps;
* a model whose default is one step (the bundled one) has nothing cheaper at its processing size: its fast
  preset is its default, so never slower.

Cost and quality on the examples: ``benchmarks/bench_presets.py``.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..io.formats import MIN_SIZE
from .resolution import processing_size
from .tiling import WindowGrid, final_stride

# Non-overlapping windows whose grid shifts randomly at every step (seams land elsewhere at each step and
# average out; the last step runs on a fixed half-overlapping grid) and 5 steps; conditioning as the model
# defaults (per window: only edge bands are recomputed for each shifted grid).
# With `shift_windows` the stride defaults to the patch size. At 1000x1500 with patch 512 this is 4 steps of
# about 11.8 windows plus 15 windows in the last step, 62 window passes in all: 61.5x fewer UNet
# pixel-evaluations than the paper's p512/r64/T25 (153 windows x 25 steps).
# Cost and quality against the exact mode: benchmarks/bench_sampling.py and benchmarks/README.md.
FAST_PRESET = {"num_inference_steps": 5, "shift_windows": True}

PRESETS = ("default", "fast")
FAST_COST = 0.5  # the fast preset costs at most this share of the default's window passes
REFERENCE_SIZE = (1000, 1500)  # (height, width) the costs are compared at, before the processing resolution


def window_passes(config: Mapping, options: Mapping | None = None, size: tuple[int, int] = REFERENCE_SIZE) -> float:
    """UNet window evaluations of one call with ``options`` (call keyword arguments) on a bracket of ``size``,
    for a pipeline with ``config``: the sum over steps of the windows of each step's grid, at the processing size.
    A shifted grid is counted at its mean over offsets."""
    options = dict(options or {})
    get = lambda key: options.get(key, config[f"default_{key}"])  # noqa: E731
    steps, patch = get("num_inference_steps"), get("patch_size")
    resolution = get("processing_resolution")
    height, width = processing_size(*size, resolution, MIN_SIZE)
    if not options.get("shift_windows", False):
        return steps * len(WindowGrid.build(height, width, patch, options.get("stride", config["default_stride"])))
    stride = options.get("stride", patch)
    offsets = range(0, stride, max(1, stride // 8))
    shifted = sum(len(WindowGrid.build(height, width, patch, stride, (offset, offset))) for offset in offsets)
    last = len(WindowGrid.build(height, width, patch, final_stride(patch, stride)))
    return (steps - 1) * shifted / len(offsets) + last


def fast_preset(config: Mapping) -> dict:
    """The ``"fast"`` preset of a model (see the module docstring): at most :data:`FAST_COST` of its default cost."""
    default = window_passes(config)
    if window_passes(config, FAST_PRESET) <= FAST_COST * default:
        return dict(FAST_PRESET)
    steps = config["default_num_inference_steps"]
    return {"num_inference_steps": max(1, steps // 2)} if steps > 1 else {}


def sampling_preset(name: str, config: Mapping) -> dict:
    """Keyword arguments of :class:`DiffHDRPipeline.__call__` for the preset ``name`` (one of :data:`PRESETS`) on a
    pipeline with ``config`` (``pipe.config``). Explicit call arguments given after them override them."""
    if name == "default":
        return {}
    if name == "fast":
        return fast_preset(config)
    from ..errors import InputError

    raise InputError(f"unknown sampling preset {name!r}; choose one of: {', '.join(PRESETS)}.")
