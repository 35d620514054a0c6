"""Named sampling presets: keyword arguments for :class:`DiffHDRPipeline.__call__`."""

# Non-overlapping windows whose grid shifts randomly at every step (seams land elsewhere at each step and
# average out; the last step runs on a fixed half-overlapping grid) and 5 steps; conditioning as the model
# defaults (per window: only edge bands are recomputed for each shifted grid).
# With `shift_windows` the stride defaults to the patch size. At 1000x1500 with patch 512 this is 4 steps of
# about 11.8 windows plus 15 windows in the last step, 62 window passes in all: 61.5x fewer UNet
# pixel-evaluations than the paper's p512/r64/T25 (153 windows x 25 steps).
# Cost and quality against the exact mode: benchmarks/bench_sampling.py and benchmarks/README.md.
FAST_PRESET = {"num_inference_steps": 5, "shift_windows": True}
