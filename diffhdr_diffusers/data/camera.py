"""The synthetic camera: exposure, Poisson-Gaussian sensor noise, clipping, a tone curve and the file's codes.

The default camera matches the Kalantari convention, so that ``ldr ** 2.2 / 2 ** ev`` (EV relative to the
shortest exposure) recovers the radiance wherever a frame is neither saturated nor too noisy::

    ldr = quantise(clip(radiance * 2 ** ev + noise, 0, 1) ** (1 / 2.2))

A :class:`CameraMix` widens that to cameras that look like real ones, drawn per scene (:func:`draw_camera`):
a tone curve from :data:`~diffhdr_diffusers.camera.CURVES` (``code = curve(clip(radiance * 2**ev + noise))``),
a file format (16-bit TIFF, 8-bit PNG, 8-bit JPEG of quality 85-95, or a linear Bayer DNG), frames whose true
exposure differs from the nominal (EXIF) one by a few percent, per-frame white-balance gains a few percent
off the reference's, and motion blur in the frames longer than the reference.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction

import numpy as np
import tifffile
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from ..camera import CURVES
from ..errors import InputError
from ..hdr_domain import GAMMA

CODES_16BIT = 65535
POISSON_LIMIT = 25.0  # electrons; above it the Gaussian limit of the Poisson law is used

FORMATS: dict[str, tuple[str, int]] = {  # name: (file suffix, bits per sample)
    "tif": (".tif", 16),
    "png": (".png", 8),
    "jpg": (".jpg", 8),
    "dng": (".dng", 16),
}
"""File formats a synthetic camera writes: 16-bit TIFF, 8-bit PNG, 8-bit JPEG, linear Bayer DNG."""

JPEG_QUALITY = (85, 95)
DNG_BLACK, DNG_WHITE = 512, 16383  # a 14-bit sensor with a black pedestal
CURVE_RESPONSES = {"gamma2.2": "gamma:2.2", "srgb": "srgb", "filmic": "filmic", "log_shoulder": "log_shoulder"}
"""The ``--response`` value that inverts each curve exactly (``Response.from_curve`` / ``parse_response``)."""


@dataclass(frozen=True)
class SensorNoise:
    """Poisson-Gaussian noise in the linear domain.

    Attributes:
        full_well: photo-electrons at the saturation level (signal 1.0); shot noise has variance
            ``signal / full_well``.
        read_noise: standard deviation of the additive Gaussian read noise, in signal units.
    """

    full_well: float = 10000.0
    read_noise: float = 2e-4

    @classmethod
    def sample(cls, rng: np.random.Generator) -> SensorNoise:
        """A random sensor between a noisy phone (3000 e-) and a clean large sensor (40000 e-)."""
        return cls(
            full_well=float(2.0 ** rng.uniform(np.log2(3000), np.log2(40000))),
            read_noise=float(10 ** rng.uniform(-4.3, -3.4)),
        )

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class CameraMix:
    """The cameras a data set draws from, one per scene.

    Attributes:
        curves: tone curves (names of :data:`~diffhdr_diffusers.camera.CURVES`), drawn uniformly.
        formats: file formats (names of :data:`FORMATS`), drawn uniformly; ``dng`` is linear (no curve).
        exposure_error: a non-reference frame's true exposure is its nominal (EXIF) one times
            ``1 + u``, ``u`` uniform in ``[-exposure_error, exposure_error]``.
        white_balance_error: a non-reference frame's channels get gains ``1 + u`` likewise (the camera's
            white balance drifting between frames); the reference's are 1, so the ground truth is its colour.
        motion_blur: the longest frame integrates the moving scene over up to this fraction of a frame
            step (drawn per scene in ``[0, motion_blur]``); frames longer than the reference blur in
            proportion to their exposure time, the reference and shorter frames stay sharp.
    """

    curves: tuple[str, ...] = ("gamma2.2",)
    formats: tuple[str, ...] = ("tif",)
    exposure_error: float = 0.0
    white_balance_error: float = 0.0
    motion_blur: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "curves", tuple(self.curves))
        object.__setattr__(self, "formats", tuple(self.formats))
        unknown = [curve for curve in self.curves if curve not in CURVES]
        if not self.curves or unknown:
            raise InputError(f"--curves {','.join(unknown) or '(none)'}: choose among {', '.join(CURVES)}.")
        unknown = [name for name in self.formats if name not in FORMATS]
        if not self.formats or unknown:
            raise InputError(f"--formats {','.join(unknown) or '(none)'}: choose among {', '.join(FORMATS)}.")
        for name in ("exposure_error", "white_balance_error"):
            value = getattr(self, name)
            if not 0.0 <= value <= 0.25:
                raise InputError(f"--{name.replace('_', '-')} {value}: give a fraction in [0, 0.25] (e.g. 0.03).")
        if not 0.0 <= self.motion_blur <= 2.0:
            raise InputError(f"--motion-blur {self.motion_blur}: give a fraction of a frame step in [0, 2] (e.g. 0.5).")

    @property
    def is_kalantari(self) -> bool:
        """The old camera exactly: gamma 2.2, 16-bit TIFF, no errors, no blur."""
        return self == CameraMix()

    def to_dict(self) -> dict:
        return {**asdict(self), "curves": list(self.curves), "formats": list(self.formats)}


CAMERA_MIXES: dict[str, CameraMix] = {
    "kalantari": CameraMix(),
    "realistic": CameraMix(
        curves=tuple(CURVES), formats=("tif", "png", "jpg"), exposure_error=0.03, white_balance_error=0.03,
        motion_blur=0.5,
    ),
}
"""Named mixes: ``kalantari`` (gamma 2.2, 16-bit TIFF, exact exposures: the training data so far) and
``realistic`` (every curve, TIFF/PNG/JPEG, 3 % exposure and white-balance errors, motion blur)."""


def resolve_camera_mix(mix: CameraMix | str) -> CameraMix:
    """A :class:`CameraMix`, or its name in :data:`CAMERA_MIXES`; an unknown name raises :class:`InputError`."""
    if isinstance(mix, CameraMix):
        return mix
    if mix not in CAMERA_MIXES:
        raise InputError(f"--camera {mix}: use one of {', '.join(CAMERA_MIXES)}.")
    return CAMERA_MIXES[mix]


@dataclass(frozen=True)
class Camera:
    """One scene's camera, as drawn by :func:`draw_camera` (all of it goes into ``scene.json``).

    Attributes:
        curve: the tone curve (``"linear"`` for a DNG).
        file_format: a key of :data:`FORMATS`.
        jpeg_quality: the JPEG quality, or ``None``.
        exposure_factors: per frame, true exposure / nominal exposure (1 for the reference).
        white_balance: per frame, RGB gains relative to the reference (all 1 for the reference).
        motion_blur: the longest frame's blur, in frame steps.
        shake_px: camera shake during the longest frame, pixels (a straight streak).
        shake_angle: the streak's direction, radians.
        reference_time: the reference frame's exposure time in seconds (EXIF).
        f_number, iso: the EXIF aperture and sensitivity (the same for every frame).
        channel_sensitivity: a DNG's raw RGB response to white light (its AsShotNeutral), else all 1.
    """

    curve: str = "gamma2.2"
    file_format: str = "tif"
    jpeg_quality: int | None = None
    exposure_factors: tuple[float, ...] = ()
    white_balance: tuple[tuple[float, float, float], ...] = ()
    motion_blur: float = 0.0
    shake_px: float = 0.0
    shake_angle: float = 0.0
    reference_time: float = 1 / 125
    f_number: float = 8.0
    iso: int = 100
    channel_sensitivity: tuple[float, float, float] = (1.0, 1.0, 1.0)
    extra: dict = field(default_factory=dict)

    @property
    def suffix(self) -> str:
        return FORMATS[self.file_format][0]

    @property
    def bits(self) -> int:
        return FORMATS[self.file_format][1]

    @property
    def response(self) -> str:
        """The ``--response`` value that undoes this camera's curve exactly."""
        return "linear" if self.curve == "linear" else CURVE_RESPONSES[self.curve]

    def true_exposures(self, nominal: Sequence[float]) -> list[float]:
        """The EVs the frames were really exposed at: nominal plus ``log2`` of the exposure factors."""
        factors = self.exposure_factors or (1.0,) * len(nominal)
        return [float(ev) + math.log2(factor) for ev, factor in zip(nominal, factors)]

    def exposure_times(self, nominal: Sequence[float], reference_index: int) -> list[float]:
        """The EXIF exposure times in seconds: the nominal EVs, relative to the reference frame's time."""
        return [self.reference_time * 2.0 ** (ev - nominal[reference_index]) for ev in nominal]

    def blur_steps(self, nominal: Sequence[float], reference_index: int) -> list[float]:
        """Per frame, the frame steps its exposure integrates over: 0 up to the reference, then in proportion
        to the exposure time, ``motion_blur`` for the longest frame."""
        longest = max(nominal)
        return [self.motion_blur * 2.0 ** (ev - longest) if index > reference_index and self.motion_blur > 0 else 0.0
                for index, ev in enumerate(nominal)]

    def to_dict(self, nominal: Sequence[float] | None = None, reference_index: int | None = None) -> dict:
        record = {
            "curve": self.curve,
            "response": self.response,
            "format": self.file_format,
            "bits": self.bits,
            "jpeg_quality": self.jpeg_quality,
            "exposure_factors": list(self.exposure_factors),
            "white_balance": [list(gains) for gains in self.white_balance],
            "motion_blur_steps": self.motion_blur,
            "shake_px": self.shake_px,
            "f_number": self.f_number,
            "iso": self.iso,
        }
        if self.file_format == "dng":
            record |= {"as_shot_neutral": list(self.channel_sensitivity), "black_level": DNG_BLACK,
                       "white_level": DNG_WHITE, "cfa_pattern": "RGGB"}
        if nominal is not None and reference_index is not None:
            record["exposure_times_s"] = self.exposure_times(nominal, reference_index)
            record["blur_steps"] = self.blur_steps(nominal, reference_index)
        return record | self.extra


def draw_camera(
    rng: np.random.Generator,
    mix: CameraMix,
    num_frames: int,
    reference_index: int,
    curve: str | None = None,
    file_format: str | None = None,
) -> Camera:
    """Draw one scene's camera from ``mix`` (``curve`` and ``file_format`` fix those choices).

    The draws happen in a fixed order whatever the mix, so a scene's other choices do not depend on it.
    """
    drawn_curve = mix.curves[int(rng.integers(len(mix.curves)))]
    drawn_format = mix.formats[int(rng.integers(len(mix.formats)))]
    curve, file_format = curve or drawn_curve, file_format or drawn_format
    quality = int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1))
    factors = 1.0 + rng.uniform(-1.0, 1.0, num_frames) * mix.exposure_error
    gains = 1.0 + rng.uniform(-1.0, 1.0, (num_frames, 3)) * mix.white_balance_error
    factors[reference_index], gains[reference_index] = 1.0, 1.0
    blur = float(rng.uniform(0.0, mix.motion_blur))
    shake = float(rng.uniform(0.0, 1.0)) * blur * 4.0  # up to 2 pixels per tenth of a step
    angle = float(rng.uniform(0.0, 2.0 * math.pi))
    reference_time = 2.0 ** -float(rng.integers(5, 10))  # 1/32 to 1/512 s, exact in binary
    f_number = float(rng.choice([2.8, 4.0, 5.6, 8.0, 11.0]))
    iso = int(rng.choice([100, 200, 400, 800]))
    sensitivity = (float(rng.uniform(0.45, 0.7)), 1.0, float(rng.uniform(0.55, 0.85)))
    if file_format == "dng":  # RAW: linear, and its white balance is metadata (one neutral for the bracket)
        curve, gains = "linear", np.ones((num_frames, 3))
    return Camera(
        curve=curve,
        file_format=file_format,
        jpeg_quality=quality if file_format == "jpg" else None,
        exposure_factors=tuple(float(value) for value in factors),
        white_balance=tuple(tuple(float(value) for value in row) for row in gains),
        motion_blur=blur,
        shake_px=shake,
        shake_angle=angle,
        reference_time=reference_time,
        f_number=f_number,
        iso=iso,
        channel_sensitivity=sensitivity if file_format == "dng" else (1.0, 1.0, 1.0),
    )


def sensor_signal(
    radiance: np.ndarray,
    relative_ev: float,
    rng: np.random.Generator | None,
    noise: SensorNoise | None,
    gains: Sequence[float] | None = None,
) -> np.ndarray:
    """The linear sensor signal in [0, 1]: ``clip(radiance * 2**relative_ev * gains + noise)``, float32."""
    signal = radiance.astype(np.float32) * np.float32(2.0**relative_ev)
    if gains is not None:
        signal *= np.asarray(gains, dtype=np.float32)
    np.clip(signal, 0.0, 1.0, out=signal)  # the sensor saturates at its full well
    if noise is not None and rng is not None:
        signal = _add_noise(signal, rng, noise)
    return signal


def encode(signal: np.ndarray, curve: str | None = None, bits: int = 16, gamma: float = GAMMA) -> np.ndarray:
    """Tone-map a linear signal with ``curve`` (``None``: ``signal ** (1/gamma)``; ``"linear"``: none) and
    quantise to ``bits`` (8: uint8, 16: uint16)."""
    if curve is None:
        encoded = signal ** np.float32(1.0 / gamma)
    elif curve == "linear":
        encoded = np.clip(signal, 0.0, 1.0)
    else:
        encoded = CURVES[curve](signal)
    top = (1 << bits) - 1
    return np.round(encoded * np.float32(top)).astype(np.uint16 if bits > 8 else np.uint8)


def expose(
    radiance: np.ndarray,
    relative_ev: float,
    rng: np.random.Generator | None,
    noise: SensorNoise | None,
    gamma: float = GAMMA,
) -> np.ndarray:
    """Capture ``radiance`` at ``relative_ev`` stops above the shortest exposure with the gamma camera.

    Returns 16-bit codes (uint16, same shape). With ``noise=None`` (or ``rng=None``) the capture is
    noise-free but still clipped and quantised.
    """
    return encode(sensor_signal(radiance, relative_ev, rng, noise), None, 16, gamma)


def _add_noise(signal: np.ndarray, rng: np.random.Generator, noise: SensorNoise) -> np.ndarray:
    """Shot noise (exact Poisson below 25 electrons, its Gaussian limit above) plus Gaussian read noise."""
    full_well = np.float32(noise.full_well)
    standard = rng.standard_normal(signal.shape, dtype=np.float32)
    noisy = signal + np.sqrt(signal / full_well + np.float32(noise.read_noise**2)) * standard
    dark = signal * full_well < POISSON_LIMIT
    if np.any(dark):
        electrons = rng.poisson(signal[dark] * full_well).astype(np.float32)
        noisy[dark] = electrons / full_well + np.float32(noise.read_noise) * standard[dark]
    return np.clip(noisy, 0.0, 1.0, out=noisy)


def bayer_mosaic(signal: np.ndarray) -> np.ndarray:
    """An RGGB Bayer mosaic (H, W) of a linear RGB signal (H, W, 3) with even sides, as DNG codes (uint16)."""
    mosaic = np.empty(signal.shape[:2], np.float32)
    mosaic[0::2, 0::2] = signal[0::2, 0::2, 0]
    mosaic[0::2, 1::2] = signal[0::2, 1::2, 1]
    mosaic[1::2, 0::2] = signal[1::2, 0::2, 1]
    mosaic[1::2, 1::2] = signal[1::2, 1::2, 2]
    return np.round(DNG_BLACK + np.clip(mosaic, 0.0, 1.0) * (DNG_WHITE - DNG_BLACK)).astype(np.uint16)


def codes_to_float(codes: np.ndarray) -> np.ndarray:
    """8- or 16-bit codes to float32 in [0, 1], exactly as ``read_ldr`` decodes them."""
    top = np.float32(np.iinfo(codes.dtype).max) if codes.dtype.kind == "u" else np.float32(CODES_16BIT)
    return codes.astype(np.float32) / top


def saturated_fraction(codes: np.ndarray) -> float:
    """Fraction of pixels with a channel at the top code of its dtype (a 2-D DNG mosaic: at the white level)."""
    if codes.ndim == 2:
        return float(np.mean(codes >= DNG_WHITE))
    top = np.iinfo(codes.dtype).max if codes.dtype.kind == "u" else CODES_16BIT
    return float(np.mean(np.any(codes >= top, axis=-1)))


# sRGB D65 linear RGB from CIE XYZ: a DNG ColorMatrix1 that makes the camera's white-balanced RGB linear sRGB.
XYZ_TO_SRGB = (
    (3.2404542, -1.5371385, -0.4985314),
    (-0.9692660, 1.8760108, 0.0415560),
    (0.0556434, -0.2040259, 1.0572252),
)
CAPTURE_TIME = "2026:12:01 12:00:00"


def _rational(value: float, limit: int = 1_000_000) -> tuple[int, int]:
    fraction = Fraction(value).limit_denominator(limit)
    return fraction.numerator, fraction.denominator


def frame_exif(camera: Camera, exposure_time: float, bias: float, frame: int) -> Image.Exif:
    """The EXIF a camera writes into a JPEG: make and model, exposure time, f-number, ISO, exposure bias
    (the nominal EV relative to the reference) and the capture time with a per-frame sub-second."""
    exif = Image.Exif()
    exif[0x010F] = "diffhdr synth"  # Make
    exif[0x0110] = f"{camera.curve} camera"  # Model
    sub = exif.get_ifd(0x8769)
    sub[0x829A] = IFDRational(*_rational(exposure_time))  # ExposureTime
    sub[0x829D] = IFDRational(*_rational(camera.f_number, 100))  # FNumber
    sub[0x8827] = camera.iso  # ISOSpeedRatings
    sub[0x9204] = IFDRational(*_rational(bias, 100))  # ExposureBiasValue
    sub[0x9003] = CAPTURE_TIME  # DateTimeOriginal
    sub[0x9291] = f"{frame:02d}"  # SubsecTimeOriginal
    return exif


def _dng_tags(camera: Camera, exposure_time: float) -> list[tuple]:
    """The DNG tags LibRaw needs for an RGGB mosaic, plus the exposure in IFD0 (as some DNG writers keep it)."""
    neutral = [value for channel in camera.channel_sensitivity for value in _rational(channel, 10000)]
    matrix = [value for row in XYZ_TO_SRGB for entry in row for value in _rational(entry, 10000)]
    return [
        (50706, "B", 4, (1, 4, 0, 0), True),  # DNGVersion
        (50708, "s", 0, f"diffhdr synth {camera.curve}", True),  # UniqueCameraModel
        (33421, "H", 2, (2, 2), True),  # CFARepeatPatternDim
        (33422, "B", 4, (0, 1, 1, 2), True),  # CFAPattern: RGGB
        (50714, "H", 1, DNG_BLACK, True),  # BlackLevel
        (50717, "H", 1, DNG_WHITE, True),  # WhiteLevel
        (50721, "2i", 9, matrix, True),  # ColorMatrix1
        (50778, "H", 1, 21, True),  # CalibrationIlluminant1: D65
        (50728, "2I", 3, neutral, True),  # AsShotNeutral
        (33434, "2I", 1, _rational(exposure_time), True),  # ExposureTime
        (33437, "2I", 1, _rational(camera.f_number, 100), True),  # FNumber
        (34855, "H", 1, camera.iso, True),  # ISOSpeedRatings
    ]


def write_frame(path: str | os.PathLike, codes: np.ndarray, camera: Camera, exposure_time: float, bias: float,
                frame: int) -> None:
    """Write one frame's codes as the camera's file format (the caller makes the write atomic)."""
    if camera.file_format == "tif":
        # Uncompressed like Kalantari's files: zlib saves ~10% on noisy 16-bit data at 50x the time.
        tifffile.imwrite(path, codes, photometric="rgb")
    elif camera.file_format == "png":
        Image.fromarray(codes).save(path, format="PNG")
    elif camera.file_format == "jpg":
        Image.fromarray(codes).save(path, format="JPEG", quality=camera.jpeg_quality,
                                    exif=frame_exif(camera, exposure_time, bias, frame))
    else:
        tifffile.imwrite(path, codes, photometric=32803, subfiletype=0, metadata=None,
                         extratags=_dng_tags(camera, exposure_time))
