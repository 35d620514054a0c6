"""Evaluation: metric runs of a merge method over folders of scenes (``diffhdr evaluate``).

The methods themselves (a model, or the classical merges) live in :mod:`diffhdr_diffusers.methods`; sharding
across processes in :mod:`diffhdr_diffusers.sharding`.
"""

from .runs import (
    UNITS,
    MethodPredictor,
    Prediction,
    PredictionsPredictor,
    discover_scenes,
    evaluate_scene,
    peak_memory_mib,
    run_evaluation,
    scene_response,
)

__all__ = [
    "UNITS",
    "MethodPredictor",
    "Prediction",
    "PredictionsPredictor",
    "discover_scenes",
    "evaluate_scene",
    "peak_memory_mib",
    "run_evaluation",
    "scene_response",
]
