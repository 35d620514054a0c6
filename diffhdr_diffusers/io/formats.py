"""The one definition of every file suffix and file name the library reads or writes.

Readers, scene scanners, the dataset loaders, the synthesiser and the CLI import these; none spells
a suffix list of its own.
"""

from __future__ import annotations

TIFF_SUFFIXES = (".tif", ".tiff")
PNG_SUFFIXES = (".png",)
JPEG_SUFFIXES = (".jpg", ".jpeg")
LDR_SUFFIXES = TIFF_SUFFIXES + PNG_SUFFIXES + JPEG_SUFFIXES
"""LDR exposures: 8/16-bit (or float) TIFF, 8/16-bit PNG, 8-bit JPEG."""

RAW_SUFFIXES = (
    ".dng", ".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".raf", ".orf", ".rw2", ".rwl",
    ".pef", ".srw", ".x3f", ".3fr", ".fff", ".iiq", ".mos", ".mef", ".mrw", ".erf", ".kdc", ".dcr", ".raw",
)
"""Camera RAW files, read through LibRaw (rawpy): linear already, so they need no response curve."""

FRAME_SUFFIXES = LDR_SUFFIXES + RAW_SUFFIXES
"""Every kind of bracket frame: LDR images and camera RAW files (one bracket holds one kind)."""

MIN_FRAMES, MAX_FRAMES = 2, 9
"""The number of exposures a bracket may hold."""

RADIANCE_SUFFIXES = (".hdr", ".exr")
"""Linear radiance files read as radiance (ground truths, predictions): Radiance RGBE and OpenEXR."""

RADIANCE_OUTPUT_SUFFIXES = RADIANCE_SUFFIXES + (".dng",)
"""Linear radiance outputs: also a linear (LinearRaw) DNG for raw editors (:mod:`.dng`)."""

PREVIEW_SUFFIXES = PNG_SUFFIXES + JPEG_SUFFIXES
"""8-bit tone-mapped previews (``--preview``)."""

MIN_SIZE = 8
"""Smallest accepted image side in pixels."""

NAMED_ORDER = ("short", "medium", "long")
"""File stems that order a three-frame bracket by meaning instead of by name."""

GROUND_TRUTH_NAME = "HDRImg.hdr"
"""The ground-truth radiance of a Kalantari scene; its stem matches in any letter case, as ``.hdr`` or ``.exr``."""

KALANTARI_LDR_NAMES = ("input_1.tif", "input_2.tif", "input_3.tif")
"""The LDR file names ``diffhdr synth`` writes; natural order is short to long."""

IGNORED_NAMES = frozenset({"thumbs.db", "desktop.ini"})
"""Files (lower case) that scene folders may hold besides the scene; hidden files are ignored too."""

MAX_PIXELS = 1 << 28
"""Largest accepted image (16k x 16k); a header claiming more is treated as corrupt rather than allocated."""
