"""Named sampling presets: keyword arguments for :class:`DiffHDRPipeline.__call__`."""

# Non-overlapping windows whose grid shifts randomly at every step (seams land elsewhere at each step and
# average out), whole-image conditioning and 5 steps. The stride defaults to the patch size at call time
# (`diffhdr merge --fast`). At 1000x1500 with patch 512 this is about 11.8 window passes per step, 59 in
# all: 65x fewer UNet pixel-evaluations than the paper's p512/r64/T25 (153 windows x 25 steps).
# Cost and quality against the exact mode: benchmarks/bench_sampling.py and benchmarks/README.md.
FAST_PRESET = {"num_inference_steps": 5, "shift_windows": True, "condition_per_window": False}

# Few-step solver recommended with FAST_PRESET (a `scheduler_from_name` name). A scheduler is a pipeline
# component, not a call argument, so callers set it: `pipe.scheduler = scheduler_from_name(FAST_SCHEDULER,
# pipe.scheduler.config)`. Its quality gain over DDIM at 5 steps is still to be measured on a trained model.
FAST_SCHEDULER = "unipc"
