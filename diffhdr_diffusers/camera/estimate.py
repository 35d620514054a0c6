"""Estimate a camera's inverse response and the frames' true exposure ratios from the bracket itself.

The method needs no dense alignment and shrugs off noise: it compares the frames' *histograms* over the part
of the scene both frames show (a homography between them, so camera shake does not bring new content into one
histogram), without the pixels where something moved (an object covers different parts of the scene in each
frame, which would shift one histogram against the other). For two frames of one scene at exposures ``k_i``
and ``k_j``, the ``q``-quantile of frame ``i``'s code values and the ``q``-quantile of frame ``j``'s
see the same radiance (the response is monotone), so with ``L = log(inverse_response)``::

    L(z_j(q)) - L(z_i(q)) = log(k_j / k_i)            for every quantile q both frames resolve

(Grossberg and Nayar's brightness transfer function). ``L`` is a monotone piecewise-linear curve per
channel (non-negative increments between knots, ``L(1) = 0``, its bends drawn to those of the known camera
curve closest to a first fit, see :data:`SMOOTHNESS`); the exposure ratios share one
correction per frame, with the nominal EVs (exposure file, flag or EXIF) as a Gaussian prior. Quantiles
where either frame is black or saturated are left out, so clipping never biases the fit. A linear
least-squares problem with bounds (:func:`scipy.optimize.lsq_linear`) solves it, reweighted a few times so
that equations far off the fit (what moving objects leave in the histograms) count less.

The ratios and the curve's overall steepness are only known together (``L`` and every ``log k`` can be
scaled by one factor), so the prior fixes the steepness: the nominal ratios are kept unless the frames
measurably disagree with one another, and any correction is reported.

Files are most often encoded with a standard curve (sRGB, or gamma 2.2 as Adobe RGB is). The same equations
are also solved with each of :data:`STANDARD_CURVES` held fixed (only the exposure corrections free); when one
fits almost as well as the free curve (:data:`STANDARD_TOLERANCE`), it is used exactly, with its own units.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..alignment.homography import estimate_affine_ecc, estimate_homography
from ..errors import InputError
from .response import TABLE_SIZE, Response

LOW_CODE = 0.004  # codes at or below this are black: nothing to measure (the curve's toe is a power law there)
DARK_CODE = 0.05  # observations of darker codes count less, in proportion
HIGH_CODE = 0.99  # codes at or above this may be clipped
# In log code, where a gamma curve is a straight line; a highlight shoulder bends within the top tenth.
KNOTS = np.union1d(np.linspace(math.log(LOW_CODE), 0.0, 20), np.log([0.85, 0.9, 0.95, 0.98]))
QUANTILES = np.linspace(0.002, 0.998, 400)
MARGIN = 0.06  # border share left out of the histograms of frames that do not register
REGISTER_SIDE = 640  # pixels: frames are registered and compared at this size at most
MIN_SHARED = 0.3  # share of the frame two registered frames must both show
SHARED_SAMPLES = 50_000  # pixels of the shared part whose quantiles are taken (every k-th)
SAMPLE_PIXELS = 400_000
# Weight of the penalty on L's bends (per knot): in the second fit, on its bends away from the closest known
# camera curve's. Frames 3-4 stops apart tie L's values only a whole frame-gap apart (a code in the long frame
# to the code the short frame shows it at); between those points any wiggle fits them, and a plainly smooth
# curve (0.3) bent where the equations of the brightest codes pulled it: pingpong's two outer frames alone
# merged a grey wall with a yellow band. Chosen on synthetic validation sets (train-split maps): flow-merge
# PSNR-mu 35.77 / 36.06 / 31.00 (3-4 stop gaps) with 0.3 and no shape, 36.08 / 36.25 / 34.39 with 5.0.
SMOOTHNESS = 5.0
# Above this code the bends stay those of a straight line: few quantile pairs reach the shoulder, and drawn to the
# closest curve's shoulder, horse's clip level rose 0.4 stops, above its short frame's samples of the clipped
# highlights, which the saturation rule then refused (merged above the clip level: 99 % -> 33 % of them).
# Validation 36.08 / 36.25 / 34.39 with the whole shape, 35.90 / 36.12 / 34.29 without it above 0.95.
SHAPE_TOP = 0.95
STEEPNESS_WEIGHT = 100.0
EV_PRIOR_SIGMA = 0.2  # stops: how far a frame's true exposure may plausibly sit from its nominal EV
MIN_OBSERVATIONS = 40  # resolved quantiles per channel below which the curve is not estimable
# Stops: corrections at least this large are reported (all are applied). The estimate's own error, on 516 frames of
# correctly labelled validation brackets (`--seed 31`, `--seed 23`, `--seed 51`; exposures off by up to 0.044
# stops), is 0.018 median, 0.06 p95, 0.10 p99: at 0.05, 7 % of those frames were reported as mis-exposed, and the
# bundled desk_window sample, shot at exact EVs, reported +7 % on two of its frames.
CORRECTION_REPORTED = 0.1
FALLBACK = "srgb"
# The curve's absolute scale is not in the bracket (above the brightest code that two frames both show,
# a camera's highlight shoulder can hide a stop). The curve stays normalised to 1 at the top code (the
# frames' clipping stays at 1), and the units come from the known camera curve (camera.CURVES) closest in
# shape to the estimate over UNITS_CODES, where the bracket constrains it: the estimate is shifted to that
# curve's units there (the median log ratio), and the shift goes into the EVs, so the merged radiance is in
# those units. A fixed metering code (sRGB's 18 % grey, 0.4613, meaning 0.18) fitted sRGB-like curves as
# well but put a log-encoded curve's units about a stop off. Measured on synthetic validation brackets
# (benchmarks/response_heldout.py on a train-split set).
UNITS_CODES = (0.1, 0.9)
# Moving objects: a pixel whose code in one frame is this far from what the two frames' histograms map its
# code in the other frame to shows something that moved; it leaves both histograms, with this margin around
# it (pixels), judged on frames smoothed by this sigma (pixels), so noise does not decide.
MOVED_CODE = 0.2
MOVED_MARGIN = 7
MOVED_SMOOTHING = 3.0
GREY = np.full((1, 3), 1.0 / 3.0)  # the channels' mean, as a cv2.transform matrix
# Whatever moving objects leave in the quantiles (and a pair of frames that registered wrongly) is an
# outlier of the curve's equations: they are refitted this many times, each weighted by
# 1 / sqrt(1 + (misfit / ROBUST_STOPS)^2) (a soft L1 loss) from the previous fit.
ROBUST_PASSES = 6
ROBUST_STOPS = 0.1
# Standard encodings (camera.CURVES names): when one explains the quantile equations with a robust loss at
# most STANDARD_TOLERANCE times the free curve's, it is used exactly (its EV corrections too), units included.
# The tolerance is (brackets of 2 or 3 frames, more frames): with more frame pairs the free curve's extra
# freedom buys it less, and a log curve with a shoulder fits as sRGB at 2.1-2.9 times the free loss. Chosen
# on three synthetic validation sets (train-split maps; benchmarks/README.md).
SPAN_CODES = (0.05, 0.95)  # dark and bright codes whose linear light a camera curve spans by several stops
# Fewer stops between SPAN_CODES is no camera's curve: the known curves span 5.9 to 9.4, the estimates of
# correctly labelled synthetic validation brackets 5.0 or more.
MIN_SPAN_STOPS = 4.5
STANDARD_CURVES = ("gamma2.2", "srgb")
STANDARD_TOLERANCE = (3.0, 2.0)


@dataclass
class CameraEstimate:
    """The result of :func:`estimate_camera`.

    Attributes:
        response: the estimated inverse response (or the fallback, see ``fallback``).
        exposures: the EVs to merge with: the nominal ones, corrected by the measured ratios.
        warnings: one line each: a fallback with its reason, or an exposure correction.
        fallback: whether the bracket did not constrain the curve and :data:`FALLBACK` was used.
        residual: RMS misfit of the quantile equations, in stops (``nan`` for a fallback).
        grey_stops: the units' shift (stops) that brings the estimate to the units of ``units_curve`` (see
            :data:`UNITS_CODES`); already in ``exposures``, not counted as a correction.
        units_curve: the known camera curve (a name of :data:`~diffhdr_diffusers.camera.CURVES`) whose units
            the estimate takes: the standard curve taken exactly, else the closest in shape to the free curve
            (``None`` for a fallback).
    """

    response: Response
    exposures: list[float]
    warnings: list[str] = field(default_factory=list)
    fallback: bool = False
    residual: float = math.nan
    grey_stops: float = 0.0
    units_curve: str | None = None


def _samples(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(n, 3) pixels of a frame's centre (without the border), subsampled for speed."""
    height, width = frame.shape[:2]
    dy, dx = int(height * MARGIN), int(width * MARGIN)
    centre = frame[dy:height - dy or None, dx:width - dx or None].reshape(-1, frame.shape[2])
    if len(centre) > SAMPLE_PIXELS:
        step = len(centre) // SAMPLE_PIXELS
        centre = centre[rng.integers(0, step) :: step]
    return np.asarray(centre, dtype=np.float32)


def _small(frame: np.ndarray) -> np.ndarray:
    """The frame with its longer side at :data:`REGISTER_SIDE` at most, float32: every k-th pixel, so codes stay
    codes (averaging would turn a clipped edge into levels no radiance has)."""
    height, width = frame.shape[:2]
    scale = REGISTER_SIDE / max(height, width)
    frame = np.asarray(frame, dtype=np.float32)
    if scale >= 1.0:
        return frame
    return cv2.resize(frame, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_NEAREST)


def _equalised(frame: np.ndarray) -> np.ndarray:
    """8-bit grey with an equalised histogram: frames of one scene look alike whatever their exposure and curve."""
    return cv2.equalizeHist(np.clip(cv2.transform(frame, GREY) * 255.0 + 0.5, 0, 255).astype(np.uint8))


def _shared_quantiles(frame_i, frame_j, mapping) -> tuple[np.ndarray, np.ndarray] | None:
    """Both frames' quantiles over the part of the scene they both show, or ``None`` when they share too little.

    A hand-held bracket's frames are shifted and turned against each other, so each frame's border shows
    content the other lacks and whole-frame histograms drift apart; ``mapping``, a homography from frame
    ``i``'s pixels to frame ``j``'s (ORB on equalised grey; an affine ECC fit where ORB finds too few
    features), finds the common part. Moving objects, and what they cover in one frame and not the other, are
    left out of both histograms (:func:`_static_pixels`).
    """
    height, width = frame_i.shape[:2]
    warped = cv2.warpPerspective(frame_j, np.linalg.inv(mapping), (width, height), flags=cv2.INTER_NEAREST,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=(-1.0, -1.0, -1.0))
    inside = cv2.erode((warped[..., 0] >= 0).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    if inside.mean() < MIN_SHARED:
        return None
    static = _static_pixels(frame_i, np.maximum(warped, 0.0), inside)
    if static.mean() >= MIN_SHARED * inside.mean():
        inside = static
    pixels = np.flatnonzero(inside)
    pixels = pixels[:: max(1, len(pixels) // SHARED_SAMPLES)]
    channels = frame_i.shape[2]
    return _quantiles(frame_i.reshape(-1, channels)[pixels]), _quantiles(warped.reshape(-1, channels)[pixels])


def _quantiles(values: np.ndarray) -> np.ndarray:
    """:data:`QUANTILES` of ``values`` along its first axis (``np.quantile``'s linear rule, by one sort: many
    times faster than its partition for 400 quantiles)."""
    ordered = np.sort(np.ascontiguousarray(values.T), axis=-1).T  # channels contiguous: a quicker sort
    position = QUANTILES * (len(ordered) - 1)
    below = np.floor(position).astype(int)
    above = np.minimum(below + 1, len(ordered) - 1)
    fraction = (position - below).reshape((-1,) + (1,) * (ordered.ndim - 1))
    return ordered[below] * (1 - fraction) + ordered[above] * fraction


def _segment_weights(codes: np.ndarray) -> np.ndarray:
    """(n, K-1) matrix ``A`` with ``L(code) = A @ increments`` (``L(1) = 0``, increments between knots)."""
    # L(z) = -sum over segments above z of (the part of the segment above z) / (segment length) * increment
    lower, upper = KNOTS[:-1], KNOTS[1:]
    part = np.clip((upper[None, :] - np.log(codes)[:, None]) / (upper - lower)[None, :], 0.0, 1.0)
    return -part


def _design(pairs, frame_count, curve: Response | None = None):
    """Rows ``[A(z_j) - A(z_i) | e_j - e_i] = log(k_j / k_i)`` for every resolved quantile pair; with a fixed
    ``curve``, only the EV columns, and its ``L(z_j) - L(z_i)`` moves to the target."""
    segments = 0 if curve is not None else len(KNOTS) - 1
    rows, targets = [], []
    for (i, j, z_i, z_j, log_ratio) in pairs:
        block = np.zeros((len(z_i), segments + frame_count))
        target = np.full(len(z_i), log_ratio)
        if curve is None:
            block[:, :segments] = _segment_weights(z_j) - _segment_weights(z_i)
        else:
            codes = np.repeat(np.stack([z_i, z_j], -1)[..., None], 3, axis=-1)
            log_linear = np.log(np.maximum(curve.linearize(codes)[..., 0], 1e-12))
            target -= log_linear[:, 1] - log_linear[:, 0]
        block[:, segments + j] -= 1.0  # L(z_j) - L(z_i) = log ratio + e_j - e_i
        block[:, segments + i] += 1.0
        # Dark levels are noisy and shift with noise more than bright ones: they only shape the toe.
        weight = np.minimum(1.0, z_i / DARK_CODE)[:, None]
        rows.append(block * weight)
        targets.append(target * weight[:, 0])
    matrix, target = np.concatenate(rows), np.concatenate(targets)
    return matrix, target


def estimate_camera(
    frames: Sequence[np.ndarray],
    exposures: Sequence[float],
    reference_index: int | None = None,
) -> CameraEstimate:
    """Estimate the inverse response and the true EVs of one bracket.

    One curve serves the three channels: cameras apply their tone curve after white balance, to each channel
    alike, and separate curves fit the noise of dark, coloured content (a red cast in sculpture_garden's
    shadowed tree); the quantiles of each channel are observations of it.

    Args:
        frames: N >= 2 float (H, W, 3) frames in [0, 1] (code values as read), any order.
        exposures: N nominal EVs: the prior for the ratios.
        reference_index: the frame whose EV is not corrected (default ``N // 2`` of the sorted EVs); every
            EV still moves by the units shift ``grey_stops``.

    Returns:
        A :class:`CameraEstimate`. When the bracket cannot constrain the curve (too few frames
        overlap in brightness, equal exposures, nearly all pixels clipped), it falls back to the sRGB
        curve with the nominal EVs and says why in ``warnings``; it never raises for that.
    """
    evs = [float(ev) for ev in exposures]
    if len(frames) != len(evs) or len(frames) < 2:
        raise InputError(f"a response needs at least 2 frames with one EV each, got {len(frames)} frames, {len(evs)} EVs.")
    order = np.argsort(evs, kind="stable")
    if reference_index is None:
        reference_index = int(order[len(order) // 2])

    def fallback(reason: str) -> CameraEstimate:
        return CameraEstimate(Response.from_curve(FALLBACK), evs,
                              [f"camera response not estimable ({reason}); using the {FALLBACK} curve"], True)

    if len(set(evs)) < len(evs):
        return fallback("two frames have the same exposure")
    channel_count = np.asarray(frames[0]).shape[2]
    small = [_small(np.asarray(frame)) for frame in frames]
    grey = [_equalised(frame) for frame in small]
    rng, whole = np.random.default_rng(0), {}

    def whole_frame(index: int) -> np.ndarray:  # (Q, 3) quantiles of a frame that did not register
        if index not in whole:
            whole[index] = _quantiles(_samples(np.asarray(frames[index]), rng))
        return whole[index]

    mappings: dict[tuple[int, int], np.ndarray | None] = {}
    for position in range(len(order) - 1):  # neighbours; next-but-one frames through the frame between them
        i, j = int(order[position]), int(order[position + 1])
        mappings[i, j] = estimate_homography(grey[i], grey[j])
        if mappings[i, j] is None:  # small or plain frames: too few ORB features
            mappings[i, j] = estimate_affine_ecc(grey[i], grey[j])
    for position in range(len(order) - 2):
        i, middle, j = (int(order[position + offset]) for offset in range(3))
        first, second = mappings[i, middle], mappings[middle, j]
        mappings[i, j] = None if first is None or second is None else second @ first

    pairs, resolved, reversed_levels = [], np.zeros(channel_count, int), np.zeros(channel_count, int)
    for (i, j), mapping in mappings.items():
        shared = None if mapping is None else _shared_quantiles(small[i], small[j], mapping)
        if shared is None:
            shared = whole_frame(i), whole_frame(j)
        log_ratio = (evs[j] - evs[i]) * math.log(2.0)
        for channel in range(channel_count):
            z_i, z_j = shared[0][:, channel], shared[1][:, channel]
            keep = (z_i > LOW_CODE) & (z_j < HIGH_CODE) & (z_j > z_i + 1.0 / 512)
            if keep.sum() >= 3:
                pairs.append((i, j, z_i[keep], z_j[keep], log_ratio))
                resolved[channel] += int(keep.sum())
            reversed_levels[channel] += int(((z_j > LOW_CODE) & (z_i < HIGH_CODE) & (z_i > z_j + 1.0 / 512)).sum())
    if resolved.min() < MIN_OBSERVATIONS and reversed_levels.min() >= MIN_OBSERVATIONS:
        return fallback("the frames get darker where the exposures given get longer: the exposures look listed in "
                        "the wrong order")
    if resolved.min() < MIN_OBSERVATIONS:
        return fallback(f"only {int(resolved.min())} brightness levels seen in two frames, "
                        f"{MIN_OBSERVATIONS} needed")
    fit = _fit(pairs, evs, reference_index, channel_count)
    if fit is None:
        return fallback("the fit did not converge")
    # The bends the equations leave open follow the known camera curve closest to a first, plainly smooth fit.
    closest, _ = closest_curve_units(Response("auto", np.repeat(_table(fit[0])[:, None], 3, axis=1)))
    fit = _fit(pairs, evs, reference_index, channel_count, shape=Response.from_curve(closest)) or fit
    increments, corrections, misfit, loss = fit
    stretch_warning = None
    response, units_curve, grey_stops = Response("auto", np.repeat(_table(increments)[:, None], 3, axis=1)), None, 0.0
    # A standard encoding that explains the bracket almost as well as the free curve is taken exactly.
    standard = [(named[3], name, named[1], named[2]) for name in STANDARD_CURVES
                if (named := _fit(pairs, evs, reference_index, channel_count, Response.from_curve(name)))]
    if standard and min(standard)[0] <= STANDARD_TOLERANCE[len(evs) > 3] * loss:
        _, units_curve, corrections, misfit = min(standard)
        response = Response.from_curve(units_curve)
    else:
        stretch = _implausible_flatness(response)
        if stretch is not None:  # the steepness the EVs' span gave is not a camera's: take the closest camera's
            factor, span, typical = stretch
            increments = increments * factor
            response = Response("auto", np.repeat(_table(increments)[:, None], 3, axis=1))
            base = evs[reference_index]
            corrections = np.array([(factor - 1.0) * (ev - base) + factor * c for ev, c in zip(evs, corrections)])
            given = max(abs(ev - base) for ev in evs)
            stretch_warning = (f"exposures given at most {given:g} EV from the reference would make the camera curve span "
                               f"only {span:.1f} stops (cameras span {typical:.1f} or more), so they are merged "
                               f"{factor:.1f}x as far apart; if they are right, name the response (srgb, or a "
                               f"calibrated one)")
        units_curve, grey_stops = closest_curve_units(response)
    measured = [ev + float(correction) for ev, correction in zip(evs, corrections)]
    warnings = [stretch_warning] if stretch_warning else []
    # A stretched bracket's frames are reported only where they differ from the stretch the warning announced.
    announced = np.asarray(corrections) - (0.0 if stretch_warning is None else (factor - 1.0) * (np.asarray(evs) - base))
    warnings += [
        f"frame {index + 1}: measured exposure {measured[index]:+.2f} EV where {evs[index]:+.2f} was given "
        f"({2 ** float(corrections[index]) - 1:+.0%}); merging with the measured value"
        for index in range(len(evs)) if abs(announced[index]) >= CORRECTION_REPORTED
    ]
    exposures = [ev - grey_stops for ev in measured]
    return CameraEstimate(response, exposures, warnings, False, misfit, grey_stops, units_curve)


def _knot_slopes(curve: Response) -> np.ndarray:
    """The slopes of ``L`` (log linear light against log code) of ``curve`` between :data:`KNOTS`."""
    codes = np.repeat(np.exp(KNOTS).astype(np.float32)[:, None], 3, axis=1)
    log_linear = np.log(np.maximum(curve.linearize(codes).mean(axis=1), 1e-12))
    return np.diff(log_linear) / np.diff(KNOTS)


def _fit(pairs, evs, reference_index, channel_count, curve: Response | None = None, shape: Response | None = None):
    """``(increments, corrections, misfit, loss)``: the curve's knot increments (none for a fixed ``curve``),
    each frame's EV correction (stops), the RMS misfit (stops) of the quantile equations and their mean
    robust loss; ``None`` when the solver fails. ``shape``: the curve whose bends L's are drawn to (default:
    none, a straight line in log-log)."""
    from scipy.optimize import lsq_linear

    matrix, target = _design(pairs, len(evs), curve)
    scale = 1.0 / math.sqrt(len(target) / (channel_count * len(QUANTILES)))
    matrix, target = matrix * scale, target * scale
    segments = 0 if curve is not None else len(KNOTS) - 1
    unknowns = segments + len(evs)
    # Curvature of L: differences of consecutive slopes.
    widths = np.diff(KNOTS)
    bends = np.zeros(segments) if shape is None else _knot_slopes(shape)
    if shape is not None:
        top = KNOTS[1:] > math.log(SHAPE_TOP)
        bends[top] = bends[~top][-1]
    extra, extra_target = [], []
    for m in range(segments - 1):
        row = np.zeros(unknowns)
        row[m] = -SMOOTHNESS / widths[m] * widths.mean()
        row[m + 1] = SMOOTHNESS / widths[m + 1] * widths.mean()
        extra.append(row)
        extra_target.append(SMOOTHNESS * widths.mean() * (bends[m + 1] - bends[m]))
    for frame in range(len(evs)):  # the EV prior (the reference's correction is pinned to 0 by the bounds)
        row = np.zeros(unknowns)
        row[segments + frame] = 1.0 / (EV_PRIOR_SIGMA * math.log(2.0))
        extra.append(row)
        extra_target.append(0.0)
    # The curve's steepness and the ratios are only known together (scaling L and every log ratio by one
    # factor fits the data as well): the nominal EVs' span fixes the steepness, so corrections may not
    # stretch or shrink the bracket as a whole (orthogonal to ``ev - ev_reference``), only reshape it.
    row = np.zeros(unknowns)
    span = np.asarray(evs) - evs[reference_index]
    row[segments:] = STEEPNESS_WEIGHT * span / max(np.abs(span).max(), 1e-6)
    extra.append(row)
    extra_target.append(0.0)
    extra, extra_target = np.asarray(extra), np.asarray(extra_target)
    lower = np.concatenate([np.full(segments, 1e-4), np.full(len(evs), -math.log(2.0))])
    upper = np.concatenate([np.full(segments, np.inf), np.full(len(evs), math.log(2.0))])
    lower[segments + reference_index] = -1e-12
    upper[segments + reference_index] = 1e-12
    weights = np.ones(len(target))
    for _ in range(1 + ROBUST_PASSES):  # iteratively reweighted: equations far off the fit count less
        full_matrix = np.concatenate([matrix * weights[:, None], extra])
        full_target = np.concatenate([target * weights, extra_target])
        solution = lsq_linear(full_matrix, full_target, bounds=(lower, upper), method="bvls")
        if not np.all(np.isfinite(solution.x)):
            return None
        residual = (matrix @ solution.x - target) / scale / math.log(2.0)  # stops
        weights = 1.0 / np.sqrt(1.0 + (residual / ROBUST_STOPS) ** 2)
    misfit = float(np.sqrt(np.mean(residual**2)))
    loss = float(np.mean(np.sqrt(1.0 + (residual / ROBUST_STOPS) ** 2) - 1.0))
    return solution.x[:segments], solution.x[segments:] / math.log(2.0), misfit, loss


def _static_pixels(frame_i: np.ndarray, warped_j: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """The pixels of ``inside`` that show the same thing in both frames.

    A monotone response maps a static scene's codes in frame ``i`` to its codes in frame ``j`` by one monotone
    function, whatever the curve: the two histograms give it, quantile to quantile. A pixel more than
    :data:`MOVED_CODE` from it shows something that moved (an object, or what it covered), and leaves with a
    margin. Clipped and black pixels are judged alike: the transfer maps frame ``i``'s codes that frame ``j``
    clips to ``j``'s clip level, so a pixel clipped in ``j`` where ``i`` shows a mid-tone shows an object too.
    """
    grey_i = cv2.GaussianBlur(cv2.transform(frame_i, GREY), (0, 0), MOVED_SMOOTHING)[inside]
    grey_j = cv2.GaussianBlur(cv2.transform(warped_j, GREY), (0, 0), MOVED_SMOOTHING)[inside]
    step = max(1, len(grey_i) // SHARED_SAMPLES)
    transfer = np.interp(grey_i, _quantiles(grey_i[::step]), _quantiles(grey_j[::step]))
    moved = inside.copy()
    moved[inside] = np.abs(grey_j - transfer) >= MOVED_CODE
    margin = np.ones((MOVED_MARGIN, MOVED_MARGIN), np.uint8)
    return inside & ~cv2.dilate(moved.astype(np.uint8), margin).astype(bool)


def _curve_span(response: Response) -> float:
    """Stops of linear light between the codes :data:`SPAN_CODES` (dark to bright) of ``response``."""
    codes = np.repeat(np.asarray(SPAN_CODES, np.float32)[:, None], 3, axis=1)
    low, high = response.linearize(codes).mean(axis=1)
    return float(np.log2(max(high, 1e-12) / max(low, 1e-12)))


def _implausible_flatness(response: Response) -> tuple[float, float, float] | None:
    """``(factor, span, typical)`` when the estimated curve spans fewer than :data:`MIN_SPAN_STOPS` between
    :data:`SPAN_CODES` (the bracket's EVs are farther apart than given: a curve fitted to the given span comes
    out flat, and so does the merge): the factor that brings it to the span of the closest known camera curve.
    The quantile equations fit any such stretch of curve and EVs alike; only the curve's shape tells them apart."""
    from . import CURVES

    span = _curve_span(response)
    if span >= MIN_SPAN_STOPS:
        return None
    name, _ = closest_curve_units(response)
    typical = min(_curve_span(Response.from_curve(curve)) for curve in CURVES)
    target = max(_curve_span(Response.from_curve(name)), typical)
    return target / max(span, 1e-6), span, typical


def closest_curve_units(response: Response) -> tuple[str, float]:
    """``(curve, stops)``: the known camera curve closest in shape to ``response`` over :data:`UNITS_CODES`
    (the RMS of their log2 difference after its median is removed) and the shift, in stops, that takes the
    response's values to that curve's units there."""
    from . import CURVES

    codes = np.repeat(np.linspace(*UNITS_CODES, 65, dtype=np.float32)[:, None], 3, axis=1)
    estimated = np.log2(np.maximum(response.linearize(codes).mean(axis=1), 1e-12))
    fits = []
    for name in CURVES:
        difference = np.log2(np.maximum(Response.from_curve(name).linearize(codes).mean(axis=1), 1e-12)) - estimated
        shift = float(np.median(difference))
        fits.append((float(np.sqrt(np.mean((difference - shift) ** 2))), name, shift))
    _, name, shift = min(fits)
    return name, shift


def _table(increments: np.ndarray) -> np.ndarray:
    """(TABLE_SIZE,) inverse response from the knot increments of ``L``; below :data:`LOW_CODE` a power law
    through 0 with the shadows' mean slope."""
    codes = np.linspace(0.0, 1.0, TABLE_SIZE)
    log_knots = -np.concatenate([np.cumsum(increments[::-1])[::-1], [0.0]])
    values = np.exp(np.interp(np.log(np.maximum(codes, 1e-12)), KNOTS, log_knots))
    toe = codes < LOW_CODE
    slope = increments[:3].sum() / (KNOTS[3] - KNOTS[0])
    values[toe] = np.exp(log_knots[0]) * (codes[toe] / LOW_CODE) ** float(np.clip(slope, 1.0, 3.0))
    return values.astype(np.float32)
