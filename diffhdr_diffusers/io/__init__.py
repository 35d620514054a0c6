"""Image and exposure I/O: LDR exposures, camera RAW files, HDR radiance maps (and linear DNG output),
previews, exposure values, scenes and brackets of 2 to 9 frames.

File suffixes and names are defined once, in :mod:`.formats`; scene folders are scanned once, by
:func:`.scene.scan_scene`; outputs are written atomically through :mod:`.atomic`.

Every writer is atomic (temporary file, then rename) and refuses to overwrite unless asked. Every
reader raises :class:`~diffhdr_diffusers.errors.ImageReadError` (or another ``InputError``) naming
the file instead of returning garbage.
"""

from .atomic import (
    atomic_folder,
    atomic_path,
    check_output_path,
    replace_folder,
    write_json_atomically,
    write_text_atomically,
)
from .bracket import Bracket, load_bracket
from .dng import write_dng
from .exposures import (
    EXPLICIT_EXPOSURES_HINT,
    exposures_from_exif,
    read_exposure_times_txt,
    read_exposure_txt,
    read_relative_exposures_txt,
    sort_by_exposure,
    validate_exposures,
)
from .ldr import read_ldr, write_ldr
from .preview import tonemap_preview, write_preview
from .radiance import read_radiance, write_radiance
from .raw import read_raw
from .scene import SceneScan, scan_scene, scene_exposures

__all__ = [
    "EXPLICIT_EXPOSURES_HINT",
    "Bracket",
    "SceneScan",
    "atomic_folder",
    "atomic_path",
    "check_output_path",
    "exposures_from_exif",
    "load_bracket",
    "read_exposure_times_txt",
    "read_exposure_txt",
    "read_ldr",
    "read_radiance",
    "read_raw",
    "read_relative_exposures_txt",
    "replace_folder",
    "scan_scene",
    "scene_exposures",
    "sort_by_exposure",
    "tonemap_preview",
    "validate_exposures",
    "write_dng",
    "write_json_atomically",
    "write_ldr",
    "write_preview",
    "write_radiance",
    "write_text_atomically",
]
