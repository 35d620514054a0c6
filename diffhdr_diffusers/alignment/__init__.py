"""Alignment: warp every exposure of a bracket onto the reference, with a per-pixel confidence.

:func:`align_exposures` does it all (the steps are in :mod:`.align`); a rejected frame carries its reason
(:attr:`AlignmentResult.reasons`, :class:`RejectedFrame`).
"""

from .align import (
    AlignmentResult,
    FrameAlignment,
    FrameFlows,
    RejectedFrame,
    align_exposures,
    check_bracket,
    frame_flows,
    linearized,
    rejected_frames,
    warp_bracket,
)

__all__ = ["AlignmentResult", "FrameAlignment", "FrameFlows", "RejectedFrame", "align_exposures", "check_bracket",
           "frame_flows", "linearized", "rejected_frames", "warp_bracket"]
