"""Image and exposure I/O: LDR exposures, HDR radiance maps, previews, exposure values and brackets.

Every writer is atomic (temporary file, then rename) and refuses to overwrite unless asked. Every
reader raises :class:`~diffhdr_diffusers.errors.ImageReadError` (or another ``InputError``) naming
the file instead of returning garbage.
"""

from .atomic import atomic_path, check_output_path
from .bracket import Bracket, load_bracket
from .exposures import (
    exposures_from_exif,
    read_exposure_times_txt,
    read_exposure_txt,
    read_relative_exposures_txt,
    validate_exposures,
)
from .ldr import read_ldr, write_ldr
from .preview import tonemap_preview, write_preview
from .radiance import read_radiance, write_radiance

__all__ = [
    "Bracket",
    "atomic_path",
    "check_output_path",
    "exposures_from_exif",
    "load_bracket",
    "read_exposure_times_txt",
    "read_exposure_txt",
    "read_ldr",
    "read_radiance",
    "read_relative_exposures_txt",
    "tonemap_preview",
    "validate_exposures",
    "write_ldr",
    "write_preview",
    "write_radiance",
]
