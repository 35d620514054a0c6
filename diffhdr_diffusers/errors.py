"""One error type for everything the library rejects, with subclasses by cause.

Every message says what is wrong, where (file or argument), and how to fix it. The CLI prints
``str(error)`` and exits non-zero without a traceback.
"""

from __future__ import annotations


class DiffHDRError(Exception):
    """Base class of every error raised on purpose by ``diffhdr_diffusers``."""

    exit_code = 2


class InputError(DiffHDRError, ValueError):
    """A bracket, an exposure list or an argument is unusable."""


class ImageReadError(InputError):
    """An image or radiance file is missing, truncated, corrupt or of an unsupported kind."""


class CropSizeError(InputError):
    """The training crop is larger than a scene: a setting to change, not a bad scene to skip."""


class ExposureError(InputError):
    """Exposure values are missing, unparsable, non-finite, equal or out of order."""


class DatasetError(InputError):
    """A scene folder of a dataset is incomplete or inconsistent."""


class OutputError(DiffHDRError, OSError):
    """An output cannot be written (missing folder, no permission, exists without overwrite)."""


class ModelLoadError(DiffHDRError):
    """A model path or checkpoint is not what it claims to be, or is not trusted."""


class SamplingError(DiffHDRError, FloatingPointError):
    """Sampling produced non-finite values."""


class ResourceError(DiffHDRError, MemoryError):
    """The requested work would need more memory than is available."""


class CheckpointError(DiffHDRError):
    """A training checkpoint could not be written or read."""


class MissingDependencyError(DiffHDRError, ImportError):
    """An optional package that a requested feature needs is not installed."""


class FallbackWarning(UserWarning):
    """A result that fell back, for callers of the library's lower layers (the pipeline): a frame not used, and why.
    :mod:`diffhdr_diffusers.methods` reports fallbacks in its results and silences these."""


# Remedies that library messages name in domain words. Each front end may say them in its own terms
# (:func:`word_message`): the CLI names its flags, the web app its boxes.
GIVE_EXPOSURES = "give the exposures in EV, one per frame, short to long"
ALLOW_OVERWRITE = "allow overwriting to replace it"
USE_FLOW_MERGE = "merge it with the classical flow-merge instead"
MERGE_AS_SHOOT = "merge them as a shoot, one output per scene folder"
TRUST_FOREIGN_CODE = "trust the folder's code explicitly"
SMALLER_CROP = "use a training crop no larger than the smallest scene"


def word_message(message: str, wording: dict[str, str]) -> str:
    """``message`` with each remedy phrase of ``wording`` replaced by the front end's words for it."""
    for phrase, words in wording.items():
        message = message.replace(phrase, words)
    return message
