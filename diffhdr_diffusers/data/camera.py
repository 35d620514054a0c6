"""A simple camera: exposure, Poisson-Gaussian sensor noise, clipping, gamma response, 16-bit codes.

The model matches the Kalantari convention, so that ``ldr ** 2.2 / 2 ** ev`` (EV relative to the
shortest exposure) recovers the radiance wherever a frame is neither saturated nor too noisy::

    ldr = quantise(clip(radiance * 2 ** ev + noise, 0, 1) ** (1 / 2.2))
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..hdr_domain import GAMMA

CODES_16BIT = 65535
POISSON_LIMIT = 25.0  # electrons; above it the Gaussian limit of the Poisson law is used


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


def expose(
    radiance: np.ndarray,
    relative_ev: float,
    rng: np.random.Generator | None,
    noise: SensorNoise | None,
    gamma: float = GAMMA,
) -> np.ndarray:
    """Capture ``radiance`` at ``relative_ev`` stops above the shortest exposure.

    Returns 16-bit codes (uint16, same shape). With ``noise=None`` (or ``rng=None``) the capture is
    noise-free but still clipped and quantised.
    """
    signal = radiance.astype(np.float32) * np.float32(2.0**relative_ev)
    np.clip(signal, 0.0, 1.0, out=signal)  # the sensor saturates at its full well
    if noise is not None and rng is not None:
        signal = _add_noise(signal, rng, noise)
    encoded = signal ** np.float32(1.0 / gamma)
    return np.round(encoded * CODES_16BIT).astype(np.uint16)


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


def codes_to_float(codes: np.ndarray) -> np.ndarray:
    """16-bit codes to float32 in [0, 1], exactly as ``read_ldr`` decodes them."""
    return codes.astype(np.float32) / np.float32(CODES_16BIT)


def saturated_fraction(codes: np.ndarray) -> float:
    """Fraction of pixels with at least one channel at the top code."""
    return float(np.mean(np.any(codes >= CODES_16BIT, axis=-1)))
