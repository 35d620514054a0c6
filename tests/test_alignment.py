"""The alignment stage: exposure matching, homography, DIS flow, warping, confidence, failure."""

from __future__ import annotations

import json
import re

import cv2
import numpy as np
import pytest

from diffhdr_diffusers.alignment import AlignmentResult, align_exposures
from diffhdr_diffusers.alignment.exposure import match_exposures, reexpose
from diffhdr_diffusers.alignment.flow import resize_flow, soft_border, warp
from diffhdr_diffusers.data.synth import synthesize_scene
from diffhdr_diffusers.errors import InputError
from diffhdr_diffusers.hdr_domain import linearize

SIZE = (96, 144)


def _static(seed: int = 4, size: tuple[int, int] = SIZE, ev_set=(-2.0, 0.0, 2.0)):
    return synthesize_scene(seed, 0, size=size, ev_sets=[ev_set], motion=False)


def _transform(images, index, matrix):
    """Move frame ``index``'s content by the 2x3 ``matrix`` (frame(M p) = static(p))."""
    moved = list(images)
    height, width = images[index].shape[:2]
    moved[index] = cv2.warpAffine(images[index], matrix, (width, height), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REFLECT_101)
    return moved


def test_reexpose_matches_a_longer_capture():
    scene = _static()
    raised = reexpose(scene.images[0], scene.exposures[0], scene.exposures[1])
    reference = scene.images[1]
    both = (reference.max(axis=2) < 0.9) & (scene.images[0].max(axis=2) > 0.1)
    assert both.mean() > 0.2
    assert np.median(np.abs(raised - reference)[both]) < 0.01
    _, _, valid = match_exposures(reference, scene.images[2], 0.0, 2.0)
    assert valid.dtype == bool and not valid[scene.images[2].max(axis=2) >= 0.99].any()


@pytest.mark.parametrize("motion", ["translation", "rotation"])
def test_known_motion_is_recovered(motion):
    scene = _static()
    height, width = SIZE
    if motion == "translation":
        matrix = np.float64([[1, 0, 4.0], [0, 1, -3.0]])
    else:
        matrix = cv2.getRotationMatrix2D((width / 2, height / 2), 3.0, 1.0)
    images = _transform(_transform(scene.images, 0, matrix), 2, matrix)
    result = align_exposures(images, scene.exposures)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    truth = np.stack([matrix[0, 0] * xs + matrix[0, 1] * ys + matrix[0, 2] - xs,
                      matrix[1, 0] * xs + matrix[1, 1] * ys + matrix[1, 2] - ys], axis=-1)
    interior = np.zeros(SIZE, bool)
    interior[10:-10, 10:-10] = True
    for index in (0, 2):
        trusted = interior & (result.confidence[index] > 0.5)
        assert trusted.mean() > 0.3
        error = np.linalg.norm(result.flows[index] - truth, axis=-1)[trusted]
        assert np.median(error) < 0.3, (index, np.median(error))
        assert np.percentile(error, 90) < 1.0
        # warped frame lines up with the unmoved one
        aligned = np.abs(result.images[index] - scene.images[index]).mean(axis=2)[trusted]
        assert np.median(aligned) < 0.01
    assert not any(result.failed)


def test_result_layout_and_reference_untouched():
    scene = synthesize_scene(1, 2, size=SIZE, ev_sets=[(0.0, 2.0, 4.0)], motion=True)
    result = align_exposures(scene.images, scene.exposures)
    assert isinstance(result, AlignmentResult) and result.reference_index == 1
    assert np.array_equal(result.images[1], scene.images[1])
    assert np.allclose(result.radiance[1], linearize(scene.images[1], 2.0))
    assert result.flows[1] is None and result.failed[1] is False
    assert np.all(result.confidence[1] == 1)
    for index in (0, 2):
        assert result.images[index].shape == SIZE + (3,) and result.images[index].dtype == np.float32
        assert result.radiance[index].dtype == np.float32
        assert result.flows[index].shape == SIZE + (2,) and result.flows[index].dtype == np.float32
        confidence = result.confidence[index]
        assert confidence.shape == SIZE and confidence.dtype == np.float32
        assert confidence.min() >= 0 and confidence.max() <= 1
        # the HDR view is the warp of the HDR-domain frame (its edge averaged along itself, which the warp repeats
        # beyond it), not a recomputation from the warped LDR
        source = soft_border(scene.images[index])
        assert np.allclose(result.radiance[index], warp(linearize(source, scene.exposures[index]), result.flows[index],
                                                        offset=1), atol=1e-6)
        assert np.array_equal(source[1:-1, 1:-1], scene.images[index])  # the frame's own pixels as they are
    settings = json.loads(json.dumps(result.settings))
    assert settings["flow_preset"] == "medium" and settings["reference_index"] == 1


def test_confidence_low_where_saturated_or_moving():
    scene = synthesize_scene(5, 1, size=SIZE, ev_sets=[(0.0, 2.0, 4.0)], motion=True)
    result = align_exposures(scene.images, scene.exposures)
    saturated = scene.images[1].max(axis=2) >= 0.995
    if saturated.any():
        assert result.confidence[0][saturated].mean() < 0.2
    long_saturated = result.images[2].max(axis=2) >= 0.995
    if long_saturated.mean() > 0.01:
        assert result.confidence[2][long_saturated].mean() < 0.2


def test_where_the_reference_is_clipped_a_warp_that_shows_something_else_there_loses():
    """The reference shows white (nothing to track); a warp that puts a dark thing there cannot be right, whichever
    warp it is. Elsewhere in the white neither warp is refuted and the dense flow is kept (before: kept
    everywhere in the white, so a dense flow dragging dark pixels in won)."""
    from diffhdr_diffusers.alignment.confidence import prefer_dense

    white = np.ones((64, 64, 3), np.float32)
    valid = np.zeros((64, 64), bool)
    stained = white.copy()
    stained[20:36, 20:36] = 0.3
    no_motion = np.zeros((64, 64, 2), np.float32)
    dense_stains = prefer_dense(white, white, stained, valid, no_motion, None)
    global_stains = prefer_dense(white, stained, white, valid, no_motion, None)
    assert dense_stains[24:32, 24:32].max() < 0.05 and global_stains[24:32, 24:32].min() > 0.95
    assert dense_stains[50:, 50:].min() > 0.99 and global_stains[50:, 50:].min() > 0.99


def test_a_clipped_region_lies_behind_a_neighbour_that_moves_as_their_edge_does():
    """A blown region beside an informative one; DIS carries the edge's motion (6 px) into the blown region. If the
    neighbour moves so too, it is in front and the region is background (the global warp is right there); if the
    neighbour stays put, the region is the thing that moved (the dense flow is right)."""
    from diffhdr_diffusers.alignment.confidence import occluded_background

    decided = np.ones((80, 120), bool)
    decided[:, :50] = False  # the blown region, left
    still = np.zeros((80, 120, 2), np.float32)
    edge_moves = still.copy()
    edge_moves[:, :56, 0] = 6.0  # the region and the edge beside it
    neighbour_moves = still.copy()
    neighbour_moves[..., 0] = 6.0  # everything right of it too
    assert occluded_background(decided, neighbour_moves, still)[:, :50].all()
    assert not occluded_background(decided, edge_moves, still).any()


def test_different_scenes_fail_without_raising():
    scene = synthesize_scene(2, 0, size=SIZE, ev_sets=[(0.0, 2.0, 4.0)])
    other = synthesize_scene(2, 9, size=SIZE, ev_sets=[(0.0, 2.0, 4.0)])
    images = [other.images[0], scene.images[1], other.images[2]]
    result = align_exposures(images, scene.exposures)
    assert result.failed == [True, False, True]
    assert result.confidence[0].max() < 0.05 and result.confidence[2].max() < 0.05
    # each rejection says why, with the measured share
    assert result.reasons[1] is None
    for index in (0, 2):
        share = re.match(r"only (\d+) % of informative pixels consistent with the reference \(15 % needed\)",
                         result.reasons[index])
        assert share and int(share.group(1)) < 15, result.reasons[index]
    assert result.rejected == [0, 2] and [frame.reason for frame in result.rejected] == result.reasons[::2]


def test_an_exposure_far_from_its_ev_is_rejected_with_the_measured_ratio():
    """The frames are 2 stops apart but are said to be 1 stop apart: the merge would get wrong radiance."""
    scene = synthesize_scene(0, 0, size=SIZE, ev_sets=[(-2.0, 0.0, 2.0)], motion=True)
    result = align_exposures(scene.images, [-1.0, 0.0, 1.0])
    assert result.failed == [True, False, True]
    for index in (0, 2):
        ratio = re.search(r"exposure ratio ([\d.]+) where 2 was expected", result.reasons[index])
        assert ratio and 3.5 < float(ratio.group(1)) < 4.5, result.reasons[index]


def test_a_correct_match_with_a_slightly_wrong_ev_keeps_its_confidence():
    """A real camera's exposures differ from the EXIF values by a few percent: the photometric check compares the
    frames at their measured exposure, so a correct match keeps its confidence (before, 0.4 stops cost 59 and 86 %
    of the mean confidence here)."""
    scene = synthesize_scene(0, 0, size=SIZE, ev_sets=[(-2.0, 0.0, 2.0)], motion=True)
    exact = align_exposures(scene.images, scene.exposures)
    off = align_exposures(scene.images, [-1.6, 0.0, 1.6])  # 0.4 stops from the truth, each way
    assert off.failed == [False, False, False] and off.reasons == [None, None, None]
    for index in (0, 2):
        assert off.confidence[index].mean() > 0.75 * exact.confidence[index].mean()


@pytest.mark.parametrize("size", [(37, 53), (8, 8), (9, 31)])
def test_odd_and_tiny_sizes(size):
    scene = synthesize_scene(4, 0, size=(max(size[0], 16), max(size[1], 16)), ev_sets=[(-2.0, 0.0, 2.0)])
    images = [cv2.resize(image, size[::-1], interpolation=cv2.INTER_AREA) for image in scene.images]
    result = align_exposures(images, scene.exposures)
    for index in (0, 2):
        assert result.flows[index].shape == size + (2,)
        assert result.images[index].shape == size + (3,)
        assert np.all(np.isfinite(result.radiance[index]))


def test_flow_at_reduced_resolution_is_upsampled():
    scene = _static(size=(120, 180))
    matrix = np.float64([[1, 0, 6.0], [0, 1, 2.0]])
    images = _transform(_transform(scene.images, 0, matrix), 2, matrix)
    result = align_exposures(images, scene.exposures, flow_max_side=90, homography=False)
    assert result.settings["flow_size"] == [60, 90]
    trusted = result.confidence[2] > 0.5
    trusted[:12], trusted[-12:], trusted[:, :12], trusted[:, -12:] = False, False, False, False
    assert np.median(np.abs(result.flows[2][..., 0] - 6.0)[trusted]) < 0.5
    assert np.median(np.abs(result.flows[2][..., 1] - 2.0)[trusted]) < 0.5
    flow = np.ones((4, 6, 2), np.float32)
    assert np.allclose(resize_flow(flow, 8, 12), 2.0)


def test_any_count_and_reference_index():
    scene = synthesize_scene(6, 0, size=(48, 64), ev_sets=[(0.0, 1.0, 2.0, 3.0, 4.0)], motion=True)
    for reference_index in (0, 4):
        result = align_exposures(scene.images, scene.exposures, reference_index=reference_index)
        assert result.reference_index == reference_index and len(result.flows) == 5
        assert result.flows[reference_index] is None
    pair = align_exposures(scene.images[1:3], scene.exposures[1:3])
    assert pair.reference_index == 1 and pair.flows[0] is not None


def test_bad_arguments_raise_input_error():
    scene = _static(size=(32, 32))
    with pytest.raises(InputError):
        align_exposures(scene.images[:1], scene.exposures[:1])
    with pytest.raises(InputError):
        align_exposures(scene.images, scene.exposures[:2])
    with pytest.raises(InputError):
        align_exposures([scene.images[0], scene.images[1][:16]], scene.exposures[:2])
    with pytest.raises(InputError):
        align_exposures(scene.images, scene.exposures, reference_index=3)
    with pytest.raises(InputError):
        align_exposures(scene.images, scene.exposures, flow_preset="slow")
    with pytest.raises(InputError):
        align_exposures([image[:4, :4] for image in scene.images], scene.exposures)


def _plain_homography_flow(homography, height, width, residual):
    """The unbanded formula: float32 grid plus residual, projected in float64."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    points = np.stack([xs + residual[..., 0], ys + residual[..., 1]], axis=-1).reshape(-1, 1, 2).astype(np.float64)
    mapped = cv2.perspectiveTransform(points, homography).reshape(height, width, 2)
    return np.stack([mapped[..., 0] - xs, mapped[..., 1] - ys], axis=-1).astype(np.float32)


def _plain_warp(image, flow, interpolation=cv2.INTER_LINEAR):
    ys, xs = np.mgrid[0:flow.shape[0], 0:flow.shape[1]].astype(np.float32)
    return cv2.remap(image, xs + flow[..., 0], ys + flow[..., 1], interpolation, borderMode=cv2.BORDER_REPLICATE)


@pytest.mark.parametrize("threads", ["1", "3"])
def test_banded_full_resolution_stages_equal_the_plain_formulas(monkeypatch, threads):
    from diffhdr_diffusers import bands
    from diffhdr_diffusers.alignment import flow as flow_module
    from diffhdr_diffusers.alignment import linearized

    monkeypatch.setattr(bands, "BAND_PIXELS", 1500)  # many bands of 16 rows on a small image
    monkeypatch.setenv("DIFFHDR_BAND_THREADS", threads)
    rng = np.random.default_rng(1)
    height, width = 150, 90
    homography = np.float64([[1.02, 0.03, 4.5], [-0.02, 0.98, -6.2], [2e-5, -1e-5, 1.0]])
    residual = (rng.standard_normal((height, width, 2)) * 2).astype(np.float32)
    expected = _plain_homography_flow(homography, height, width, residual)
    np.testing.assert_array_equal(flow_module.homography_flow(homography, height, width, residual), expected)
    in_place = residual.copy()
    assert flow_module.homography_flow(homography, height, width, in_place, out=in_place) is in_place
    np.testing.assert_array_equal(in_place, expected)

    image = rng.random((height, width, 3), dtype=np.float32)
    # large motion (sources cut to the rows a band reads), moves off the image (border replicated), and tiny flows
    for flow in (expected * 8, np.full((height, width, 2), -400, np.float32), residual * 0.01):
        np.testing.assert_array_equal(warp(image, flow), _plain_warp(image, flow))
        np.testing.assert_array_equal(warp(image[..., 0], flow), _plain_warp(image[..., 0], flow))
        # Cubic and Lanczos kernels are evaluated in float32 by OpenCV with size-dependent vector paths: a band
        # and the whole image can round 1 ulp apart (seen in a full-suite run), so those compare to 1e-6.
        np.testing.assert_array_equal(warp(image, flow, cv2.INTER_NEAREST), _plain_warp(image, flow, cv2.INTER_NEAREST))
        for interpolation in (cv2.INTER_CUBIC, cv2.INTER_LANCZOS4):
            np.testing.assert_allclose(warp(image, flow, interpolation), _plain_warp(image, flow, interpolation),
                                       rtol=0, atol=1e-6)
        warped = np.empty_like(image)
        source = flow_module.RowSource(image, lambda rows: linearized(rows, 2.0))
        flow_module.warp_into([source], flow, [warped])
        np.testing.assert_array_equal(warped, _plain_warp(linearize(image, 2.0), flow))
    np.testing.assert_array_equal(linearized(image, 1.5), linearize(image, 1.5))
    np.testing.assert_array_equal(linearized(image, 1.5, np.float64(2.2)), linearize(image, 1.5, np.float64(2.2)))
