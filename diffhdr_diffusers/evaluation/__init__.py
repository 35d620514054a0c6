"""Evaluation: classical baselines and metric runs over folders of scenes (``diffhdr evaluate``)."""

from .baselines import BASELINES, baseline
from .runs import (
    BaselinePredictor,
    PipelinePredictor,
    Prediction,
    PredictionsPredictor,
    ProcessGroup,
    discover_scenes,
    evaluate_scene,
    load_pipeline_predictor,
    peak_memory_mib,
    process_group,
    run_evaluation,
    shard,
)

__all__ = [
    "BASELINES",
    "BaselinePredictor",
    "PipelinePredictor",
    "Prediction",
    "PredictionsPredictor",
    "ProcessGroup",
    "baseline",
    "discover_scenes",
    "evaluate_scene",
    "load_pipeline_predictor",
    "peak_memory_mib",
    "process_group",
    "run_evaluation",
    "shard",
]
