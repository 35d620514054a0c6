"""flow-merge: reference-weighted merge of an aligned bracket, scored on synthetic ground truth."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from diffhdr_diffusers.alignment import align_exposures
from diffhdr_diffusers.alignment.exposure import WHITE_LEVEL
from diffhdr_diffusers.data.synth import find_radiance_maps, synthesize_scene
from diffhdr_diffusers.methods.classical import reference_merge
from diffhdr_diffusers.hdr_domain import linearize, to_model_units
from diffhdr_diffusers.merging import FlowMergeResult, flow_merge, flow_merge_radiance
from diffhdr_diffusers.metrics import compute_metrics

SIZE = (96, 144)
REAL_HDR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real_hdr"
if not REAL_HDR.is_dir():
    REAL_HDR = Path("/work/shared/data/real_hdr")


def _psnr_mu(radiance, scene) -> float:
    prediction = to_model_units(radiance, scene.exposures)
    target = to_model_units(scene.radiance, scene.exposures)
    return compute_metrics(prediction, target, perceptual=False)["psnr_mu"]


def test_static_bracket_merges_close_to_ground_truth():
    scene = synthesize_scene(4, 0, size=SIZE, ev_sets=[(0.0, 2.0, 4.0)], motion=False)
    merged = flow_merge(scene.images, scene.exposures)
    assert isinstance(merged, FlowMergeResult)
    assert merged.radiance.shape == SIZE + (3,) and merged.radiance.dtype == np.float32
    assert merged.confidence.shape == SIZE and 0 <= merged.confidence.min() <= merged.confidence.max() <= 1
    reference = _psnr_mu(reference_merge(scene.images, scene.exposures), scene)
    score = _psnr_mu(merged.radiance, scene)
    assert score > 38.0 and score > reference + 5.0, (score, reference)


def test_moving_scenes_beat_the_reference_frame():
    gains = []
    for index in range(3):
        scene = synthesize_scene(7, index, size=SIZE, ev_sets=[(0.0, 2.0, 4.0), (-2.0, 0.0, 2.0)], motion=True)
        reference = _psnr_mu(reference_merge(scene.images, scene.exposures), scene)
        gains.append(_psnr_mu(flow_merge_radiance(scene.images, scene.exposures), scene) - reference)
    assert min(gains) > 1.0 and np.mean(gains) > 3.0, gains


def test_moving_scene_on_a_real_radiance_map():
    if not REAL_HDR.is_dir():
        pytest.skip(f"{REAL_HDR} is absent")
    maps = [str(path) for path in find_radiance_maps(REAL_HDR)]
    scene = synthesize_scene(7, 1, size=SIZE, ev_sets=[(0.0, 2.0, 4.0)], radiance_maps=maps, procedural_fraction=0.0)
    reference = _psnr_mu(reference_merge(scene.images, scene.exposures), scene)
    assert _psnr_mu(flow_merge_radiance(scene.images, scene.exposures), scene) > reference + 2.0


def test_ev_shift_scales_output_exactly():
    scene = synthesize_scene(1, 3, size=SIZE, ev_sets=[(0.0, 2.0, 4.0)], motion=True)
    base = flow_merge(scene.images, scene.exposures)
    for shift in (-2.0, 3.0):
        shifted = flow_merge(scene.images, [ev + shift for ev in scene.exposures])
        np.testing.assert_allclose(shifted.radiance, base.radiance * 2.0**-shift, rtol=1e-6, atol=0)
        np.testing.assert_array_equal(shifted.confidence, base.confidence)


@pytest.mark.parametrize("reference_index", [0, 2, 4])
def test_any_count_and_reference_index(reference_index):
    scene = synthesize_scene(2, 0, size=(48, 72), ev_sets=[(0.0, 1.0, 2.0, 3.0, 4.0)], motion=False)
    merged = flow_merge(scene.images, scene.exposures, reference_index=reference_index)
    assert merged.alignment.reference_index == reference_index
    assert np.all(np.isfinite(merged.radiance)) and merged.radiance.min() >= 0
    # the static bracket's merge is close to linear radiance whichever frame leads
    truth = scene.radiance
    well = (truth.max(axis=2) > 1e-3) & (truth.max(axis=2) < 2.0 ** -scene.exposures[0] * 0.8)
    ratio = np.median(merged.radiance[well] / np.maximum(truth[well], 1e-9))
    assert abs(ratio - 1.0) < 0.05
    pair = flow_merge(scene.images[1:4:2], scene.exposures[1:4:2])
    assert pair.radiance.shape == (48, 72, 3)


def test_odd_size():
    scene = synthesize_scene(3, 1, size=(37, 53), ev_sets=[(-2.0, 0.0, 2.0)])
    merged = flow_merge(scene.images, scene.exposures)
    assert merged.radiance.shape == (37, 53, 3) and np.all(np.isfinite(merged.radiance))


def test_different_scenes_degrade_to_the_reference():
    scene = synthesize_scene(2, 0, size=SIZE, ev_sets=[(0.0, 2.0, 4.0)])
    other = synthesize_scene(2, 9, size=SIZE, ev_sets=[(0.0, 2.0, 4.0)])
    merged = flow_merge([other.images[0], scene.images[1], other.images[2]], scene.exposures)
    assert merged.alignment.failed == [True, False, True]
    assert merged.confidence.max() < 0.05
    np.testing.assert_allclose(merged.radiance, linearize(scene.images[1], 2.0), rtol=1e-3, atol=1e-6)


def _saturated_window_case():
    """A bright textured window saturates the reference; a dark object crosses it in the short frame only."""
    height, width = SIZE
    rng = np.random.default_rng(0)
    radiance = np.full((height, width, 3), 0.02, np.float32)
    radiance += cv2.GaussianBlur(rng.random((height, width, 1)).astype(np.float32), (0, 0), 2)[..., None] * 0.02
    texture = 0.5 + 0.4 * cv2.GaussianBlur(rng.random((height, width)).astype(np.float32), (0, 0), 3)
    window = (slice(20, 76), slice(40, 110))
    radiance[window] = (texture[window] * 0.9)[..., None]  # model units: the short frame (EV 0) is well exposed
    short = radiance.copy()
    short[35:60, 60:85] = 0.003  # the dark object, where the reference sees the window
    exposures = [0.0, 2.0, 4.0]
    frames = [np.clip(image * 2.0**ev, 0, 1) ** (1 / 2.2) for image, ev in zip([short, radiance, radiance], exposures)]
    return [frame.astype(np.float32) for frame in frames], exposures, radiance, window


def test_saturated_reference_gets_no_dark_speckles():
    images, exposures, radiance, window = _saturated_window_case()
    saturated = images[1] >= WHITE_LEVEL
    assert saturated[window].all()
    lower_bound = WHITE_LEVEL**2.2 / 2.0**exposures[1]
    merged = flow_merge(images, exposures)
    assert merged.radiance[saturated].min() >= lower_bound * (1 - 1e-6)
    # outside the object, the window's detail comes from the short frame
    clean = np.zeros(SIZE, bool)
    clean[window] = True
    clean[30:65, 55:90] = False
    np.testing.assert_allclose(merged.radiance[clean], radiance[clean], rtol=0.05)
    # the rule is what prevents the dark blob: without it, the object leaks into the window
    naive = flow_merge(images, exposures, alignment=merged.alignment, saturation_rule=False)
    assert naive.radiance[saturated].min() < 0.5 * lower_bound


def test_black_reference_is_bounded_from_above():
    height, width = SIZE
    radiance = np.full((height, width, 3), 0.2, np.float32)
    radiance[30:60, 40:100] = 1e-5  # deep shadow: black in the reference, visible in the long frame
    long_radiance = radiance.copy()
    long_radiance[35:55, 50:80] = 0.05  # a bright object that sits in the shadow only in the long frame
    exposures = [-2.0, 0.0, 2.0]
    frames = [np.clip(image * 2.0**ev, 0, 1) ** (1 / 2.2) for image, ev in
              zip([radiance, radiance, long_radiance], exposures)]
    merged = flow_merge([frame.astype(np.float32) for frame in frames], exposures)
    black = frames[1] <= 0.02
    assert black[35:55, 50:80].all()
    assert merged.radiance[black].max() <= 0.05**2.2 * (1 + 1e-6)


def test_black_reference_yields_to_the_long_frame_it_cannot_check():
    """Where the reference is black, the long frame's shadow detail is used even with no confidence (there is
    nothing to check it against): the reference's quantised black would otherwise outweigh it."""
    height, width = SIZE
    radiance = np.full((height, width, 3), 0.2, np.float32)
    shadow = (slice(30, 60), slice(40, 100))
    radiance[shadow] = np.linspace(6e-5, 1.7e-4, 60, dtype=np.float32)[None, :, None]  # a gradient, black at EV 0
    exposures = [-2.0, 0.0, 2.0]
    frames = [(np.clip(radiance * 2.0**ev, 0, 1) ** (1 / 2.2)).astype(np.float32) for ev in exposures]
    frames = [np.round(frame * 255) / 255 for frame in frames]  # 8-bit codes: the reference shows the shadow in 3 codes
    assert (frames[1][shadow] <= 0.02).all() and (frames[2][shadow] > 0.02).all()
    merged = flow_merge(frames, exposures)
    merged.alignment.confidence[2][:] = 0.0  # the long frame is not trusted anywhere
    merged = flow_merge(frames, exposures, alignment=merged.alignment)
    inner = (slice(35, 55), slice(45, 95))
    np.testing.assert_allclose(merged.radiance[inner], radiance[inner], rtol=0.25)
    columns = merged.radiance[inner].mean(axis=(0, 2))
    assert (np.diff(columns) >= 0).mean() > 0.9  # the gradient, not the reference's few codes


def test_a_channel_black_in_the_reference_comes_from_the_long_frame():
    """A dark, coloured region whose blue the reference shows as black: blue comes from the long frame, not
    from the reference's zero (which would tint the region yellow)."""
    height, width = SIZE
    radiance = np.full((height, width, 3), 0.2, np.float32)
    patch = (slice(30, 60), slice(40, 100))
    radiance[patch] = (0.01, 0.008, 1.5e-4)  # red-brown, little blue
    exposures = [-2.0, 0.0, 2.0]
    frames = [(np.round(np.clip(radiance * 2.0**ev, 0, 1) ** (1 / 2.2) * 255) / 255).astype(np.float32)
              for ev in exposures]
    frames[1][frames[1] <= 0.02] = 0.0  # a camera that crushes its shadows (as horse's does)
    assert (frames[1][patch][..., 2] == 0).all() and (frames[2][patch][..., 2] > 0.02).all()
    assert (frames[1][patch][..., :2] > 0.1).all()  # the pixel itself is not black
    merged = flow_merge(frames, exposures).radiance
    inner = (slice(35, 55), slice(45, 95))
    long_blue = frames[2][inner][..., 2] ** 2.2 / 2.0**exposures[2]  # 8-bit: 6 % above the truth
    np.testing.assert_allclose(merged[inner][..., 2], long_blue, rtol=1e-3)  # before: 14 % below it (a yellow tint)
    np.testing.assert_allclose(merged[inner][..., 2], radiance[inner][..., 2], rtol=0.1)
    np.testing.assert_allclose(merged[inner][..., :2], radiance[inner][..., :2], rtol=0.05)


def _frames(radiance, exposures):
    return [(np.round(np.clip(radiance * 2.0**ev, 0, 1) ** (1 / 2.2) * 255) / 255).astype(np.float32) for ev in exposures]


def test_a_light_every_frame_clips_stays_the_brightest_thing_there():
    """A sun clipped in every frame, in a sky the short frame resolves: at least the short frame's clip level,
    not a dark hole at the reference's (before: 0.23 inside a sky of 0.4)."""
    height, width = SIZE
    radiance = np.full((height, width, 3), 0.4, np.float32)  # sky: clipped in the reference, resolved in the short frame
    radiance[:, :20] = 0.1
    sun = (slice(30, 60), slice(60, 100))
    radiance[sun] = 20.0
    exposures = [-2.0, 0.0, 2.0]
    frames = _frames(radiance, exposures)
    assert (frames[1][..., 20:] == 1.0).all() and (frames[0][sun] == 1.0).all()
    merged = flow_merge(frames, exposures).radiance
    np.testing.assert_allclose(merged[:, 30:][~np.isin(np.arange(height), range(25, 65))], 0.4, rtol=0.02)
    assert (merged[sun] >= 0.97**2.2 / 2.0**exposures[0] * 0.999).all()  # the short frame's clip level: 3.7


def test_a_sample_just_under_the_clip_level_is_not_a_ghost():
    """A bright sky whose red the reference shows just at the clip level, with a little noise: the short frame's
    samples a little below that level are noise, not a ghost, so the sky comes from the short frame (before:
    83 % of it fell back to the reference's clip level, a trail of grey specks across a blue sky)."""
    rng = np.random.default_rng(0)
    radiance = np.full(SIZE + (3,), (0.96**2.2, 1.2, 1.6), np.float32)
    radiance *= (1 + 0.02 * rng.standard_normal(SIZE))[..., None].astype(np.float32)
    exposures = [-2.0, 0.0, 2.0]
    frames = _frames(radiance, exposures)
    frames[1][..., 0] = np.float32(0.975)  # the reference's red: at the clip level
    merged = flow_merge(frames, exposures).radiance
    error = np.abs(merged / radiance - 1).max(axis=2)
    assert (error > 0.1).mean() < 0.01


def test_no_frame_is_smeared_beyond_its_edge_as_streaks():
    """Camera shake leaves the reference's left 8 columns outside the short frame, and the reference is clipped
    there. The warp repeats the frame's edge into them; repeated pixel by pixel, the edge's texture became
    horizontal streaks (each row its own value). The edge is averaged along itself first, so the strip varies
    from row to row far less than the texture, while the sky beside it still comes from the short frame."""
    height, width = SIZE
    sky = cv2.GaussianBlur(np.random.default_rng(1).uniform(0.5, 2.0, (height, width + 16)).astype(np.float32), (0, 0), 1)
    radiance = np.repeat(sky[..., None], 3, axis=2) * np.float32([0.8, 1.0, 1.2])
    radiance[60:] *= 0.2  # ground, exposed in the reference
    exposures = [-2.0, 0.0, 2.0]
    frames = _frames(radiance, exposures)
    frames = [frames[0][:, 12:12 + width], frames[1][:, 4:4 + width], frames[2][:, 4:4 + width]]
    merged = flow_merge(frames, exposures)
    assert not any(merged.alignment.failed)
    strip, texture = merged.radiance[5:50, :6, 1], radiance[5:50, 12, 1]
    streaks = np.abs(np.diff(strip, axis=0)).mean() / np.abs(np.diff(texture)).mean()
    assert streaks < 0.4  # 0.99 when the edge was repeated as it is (0.23 now)
    np.testing.assert_allclose(merged.radiance[2:50, 10:], radiance[2:50, 14:4 + width], rtol=0.05)
    np.testing.assert_array_equal(flow_merge_radiance(frames, exposures), merged.radiance)


def test_precomputed_alignment_is_reused():
    scene = synthesize_scene(5, 0, size=(48, 72), ev_sets=[(0.0, 2.0, 4.0)])
    alignment = align_exposures(scene.images, scene.exposures, homography=False)
    merged = flow_merge(scene.images, scene.exposures, alignment=alignment)
    assert merged.alignment is alignment
    np.testing.assert_array_equal(merged.radiance, flow_merge(scene.images, scene.exposures, homography=False).radiance)


def _plain_merge(frames, evs, alignment, gamma=2.2):
    """flow-merge's formulas written out on whole images, without bands or in-place operations."""
    from diffhdr_diffusers import merging as m

    ramp = lambda v, a, b: np.clip((v - np.float32(a)) / np.float32(b - a), 0.0, 1.0).astype(np.float32)  # noqa: E731
    ref = alignment.reference_index
    reference, reference_ev = frames[ref], evs[ref]
    brightness = reference.max(axis=2)
    bright, dark = ramp(brightness, m.BRIGHT_START, WHITE_LEVEL), ramp(brightness, m.DARK_START, 0.0)
    saturated = ramp(brightness, WHITE_LEVEL - 0.05, WHITE_LEVEL)
    black_level = m.black_bound_level(reference)
    black = ramp(brightness, black_level, 0.5 * black_level)
    channel_weight = ramp(reference, 0.5 * black_level, black_level)  # 0 where a channel is black
    reference_weight = np.maximum(np.minimum(1.0 - np.maximum(bright, dark)[..., None], channel_weight), m.REFERENCE_FLOOR)
    total, merged = reference_weight.copy(), reference_weight * alignment.radiance[ref]
    upper = reference >= np.float32(WHITE_LEVEL)
    lower = reference <= np.float32(max(m.BLACK_RULE_LEVEL, 0.5 * black_level))
    lower_bound = np.float32(WHITE_LEVEL**gamma / 2.0**reference_ev)
    upper_bound = np.float32(black_level**gamma / 2.0**reference_ev)
    ratio, reference_radiance = np.float32(m.MISMATCH_RATIO), alignment.radiance[ref]
    shown = (upper.any(axis=2) & ~upper.all(axis=2))[..., None] & ~upper & (reference >= np.float32(m.MISMATCH_FLOOR))
    refuted = np.zeros(reference.shape[:2], bool)
    for index, ev in enumerate(evs):
        if index == ref:
            continue
        warped, radiance = alignment.images[index], alignment.radiance[index]
        failed, confidence = alignment.failed[index], alignment.confidence[index]
        shorter = ev < reference_ev
        own = ramp(warped.max(axis=2), 1.0, WHITE_LEVEL - 0.1) + np.float32(m.REJECTED)
        trust = np.zeros_like(confidence) if failed else confidence
        if not failed:
            trust = trust + np.float32(m.FALLBACK_TRUST) * (saturated if shorter else black)
        weight = (bright if shorter else dark) * own * trust
        broken = (upper & (radiance < m.RULE_SLACK * lower_bound)).any(axis=2) | (lower & (radiance > upper_bound)).any(axis=2)
        if shorter:  # a partly clipped reference's shown channels refute a sample far from them
            mismatch = (shown & ((radiance > ratio * reference_radiance) | (radiance * ratio < reference_radiance))).any(axis=2)
            broken, refuted = broken | mismatch, refuted | mismatch
        weight = np.where(broken, weight * np.float32(m.REJECTED), weight)
        merged += weight[..., None] * radiance
        total += weight[..., None]
    kept = shown & refuted[..., None]
    merged, total = np.where(kept, merged + reference_radiance, merged), np.where(kept, total + 1, total)
    merged /= total
    merged = np.where(upper, np.maximum(merged, lower_bound), merged)
    for index, ev in enumerate(evs):  # a shorter frame that clips too: at least its clip level
        if ev < reference_ev and not alignment.failed[index]:
            clipped = upper & (alignment.images[index] >= np.float32(WHITE_LEVEL))
            merged = np.where(clipped, np.maximum(merged, np.float32(WHITE_LEVEL**gamma / 2.0**ev)), merged)
    merged = np.where(lower, np.minimum(merged, upper_bound), merged)
    return np.maximum(merged, 0.0).astype(np.float32)


@pytest.mark.parametrize("threads", ["1", "2"])
def test_banded_merge_and_the_bounded_memory_path_give_identical_radiance(monkeypatch, threads):
    from diffhdr_diffusers import bands
    from diffhdr_diffusers.merging import FlowMergeRadiance

    scene = synthesize_scene(11, 0, size=(120, 160), ev_sets=[(-2.0, 0.0, 2.0)])
    images = list(scene.images)
    images[0] = np.ascontiguousarray(images[0][::-1])  # another scene for frame 0: its alignment fails
    whole = flow_merge(images, scene.exposures)
    assert whole.alignment.failed == [True, False, False]
    np.testing.assert_array_equal(whole.radiance, _plain_merge(images, scene.exposures, whole.alignment))

    monkeypatch.setattr(bands, "BAND_PIXELS", 2000)  # bands of 16 rows
    monkeypatch.setenv("DIFFHDR_BAND_THREADS", threads)
    banded = flow_merge(images, scene.exposures)
    np.testing.assert_array_equal(banded.radiance, whole.radiance)
    np.testing.assert_array_equal(banded.confidence, whole.confidence)
    lean = flow_merge_radiance(images, scene.exposures, details=True)
    assert isinstance(lean, FlowMergeRadiance) and lean.failed == whole.alignment.failed
    np.testing.assert_array_equal(lean.radiance, whole.radiance)
    assert lean.settings == whole.alignment.settings
    np.testing.assert_array_equal(flow_merge_radiance(images, scene.exposures, reference_index=2, homography=False),
                                  flow_merge(images, scene.exposures, reference_index=2, homography=False).radiance)


def test_black_level_follows_a_crushed_toe():
    from diffhdr_diffusers.merging import BLACK_BOUND_LEVEL, black_bound_level

    smooth = np.linspace(0, 1, 4096, dtype=np.float32).reshape(64, 64, 1).repeat(3, axis=2)
    assert black_bound_level(smooth) == BLACK_BOUND_LEVEL  # fine codes near black: the fixed level
    crushed = np.where(smooth < 0.08, 0.0, smooth)  # a camera whose first code above black is 0.08 canonical
    assert black_bound_level(crushed) == pytest.approx(2 * crushed[crushed > 0].min())
    assert black_bound_level(np.zeros((8, 8, 3), np.float32)) == BLACK_BOUND_LEVEL


def test_an_overexposed_reference_cannot_reject_the_frames_that_show_the_scene():
    """The reference (+4 EV) shows 12 % of the image unclipped, mostly moving objects: too little to judge the
    shortest frame by, which alone shows the background. Rejecting it (as before) scored 31.0 dB; used, 38.7."""
    from diffhdr_diffusers.alignment.exposure import informative
    from diffhdr_diffusers.metrics import psnr_mu

    scene = synthesize_scene(8, 0, size=(96, 128), ev_sets=[(0.0, 2.0, 4.0, 6.0)])
    assert informative(scene.images[2]).mean() < 0.15
    merged = flow_merge(scene.images, scene.exposures, reference_index=2)
    assert merged.alignment.failed == [False] * 4
    truth = to_model_units(scene.radiance, scene.exposures)
    assert psnr_mu(to_model_units(merged.radiance, scene.exposures), truth) > 36.0



def test_a_blown_sky_follows_the_camera_not_a_moving_person_in_front_of_it():
    """A static view through a blown window (saturated in the reference, textured in the short frame) behind a
    person who moves, the camera shaken: the dense flow has nothing to match in the white sky and carries the
    person's motion across it. The person moves as the edge between them does, so the sky is the background and
    follows the global warp (found on pingpong's window)."""
    height, width, margin = 200, 300, 24
    rng = np.random.default_rng(3)

    def texture(sigma):
        noise = cv2.GaussianBlur(rng.random((height + 2 * margin, width + 2 * margin)).astype(np.float32), (0, 0), sigma)
        return (noise - noise.min()) / (noise.max() - noise.min())

    sky, clothes, wall = 1.5 + 1.5 * texture(2.0), 0.02 + 0.03 * texture(1.5), 0.03 + 0.3 * texture(1.5)
    rows, cols = np.mgrid[:height, :width]

    def radiance(step, shake):
        view = np.s_[margin + shake:margin + shake + height, margin + shake:margin + shake + width]
        image = sky[view].copy()
        image[130:] = wall[view][130:]  # the wall below the window, well exposed
        x = 110 + step
        person = ((rows >= 70) & (cols >= x) & (cols < x + 70)) | ((rows - 55) ** 2 + (cols - x - 35) ** 2 < 26**2)
        image[person] = clothes[margin:margin + height, margin - step:margin - step + width][person]
        return np.repeat(image[..., None], 3, axis=2)

    exposures = [-2.0, 0.0, 2.0]
    frames = [(np.clip(radiance(step, shake) * 2.0**ev, 0, 1) ** (1 / 2.2)).astype(np.float32)
              for ev, step, shake in zip(exposures, (-14, 0, 14), (4, 0, -4))]
    truth = radiance(0, 0)
    merged = flow_merge(frames, exposures, reference_index=1)
    assert merged.alignment.homographies[0] is not None
    person = truth[..., 0] < 0.1
    far_sky = cv2.distanceTransform((~person).astype(np.uint8), cv2.DIST_L2, 5) > 30
    far_sky[125:] = False
    assert (frames[1][far_sky] >= WHITE_LEVEL).all()  # the reference shows nothing there
    error = np.abs(np.log(merged.radiance[far_sky] + 1e-3) - np.log(truth[far_sky] + 1e-3)).mean()
    assert error < 0.045, error  # carried with the person: 0.071 (now 0.028)


def test_a_blown_sky_that_only_something_in_front_was_seen_through_continues_the_sky():
    """The reference shows a blown sky where the short frame shows a dark ball passing in front of it: no frame
    shows that part of the sky, and the saturation rule refuses the ball. The merge fills it from the blown sky
    around it that the short frame did show, instead of leaving a flat patch at the reference's clip level
    (found on sculpture_garden's gravel, where a person walked past the white slab)."""
    from diffhdr_diffusers.alignment import FrameAlignment, warp_bracket

    height, width = 160, 240
    rows, cols = np.mgrid[:height, :width].astype(np.float32)

    def radiance(x):
        sky = 2.0 + 0.5 * cols / width + 0.2 * rows / height  # clipped at EV 0, seen at EV -2
        image = np.where((rows - 60) ** 2 + (cols - x) ** 2 < 18**2, 0.02, sky)
        return np.repeat(image[..., None], 3, axis=2).astype(np.float32)

    exposures = [-2.0, 0.0, 2.0]
    frames = [(np.clip(radiance(x) * 2.0**ev, 0, 1) ** (1 / 2.2)).astype(np.float32)
              for ev, x in zip(exposures, (80, 120, 160))]
    still = {index: FrameAlignment(np.zeros((height, width, 2), np.float32), np.ones((height, width), np.float32), False)
             for index in (0, 2)}  # a rigid alignment, as behind a moving neighbour
    alignment = warp_bracket(frames, exposures, 1, still)
    truth = radiance(120)
    only_the_ball = (rows - 60) ** 2 + (cols - 80) ** 2 < 14**2
    merged = flow_merge(frames, exposures, alignment=alignment).radiance
    error = np.abs(np.log(merged[only_the_ball]) - np.log(truth[only_the_ball])).mean()
    assert error < 0.05, error  # the clip level: 0.87


def test_many_holes_are_filled_from_the_pixels_around_them():
    """More hole pixels than OpenCV's remap takes in one row (32767), filled from a ring of filled blown pixels;
    never below what the merge put there."""
    from diffhdr_diffusers.merging import fill_holes

    holes = np.full((400, 400), 1, np.uint8)  # a blown square no frame shows
    holes[:20] = holes[-20:] = 2  # filled blown pixels above and below it
    radiance = np.full((400, 400, 3), 1.0, np.float32)
    radiance[holes == 2] = 3.0
    radiance[200, 200] = 5.0
    fill_holes(radiance, holes)
    assert (radiance[holes == 1] >= 1.0).all() and radiance[200, 200, 0] == 5.0
    assert radiance[25, 200, 0] > 2.5 and radiance[375, 200, 0] > 2.5  # next to the ring: its radiance


def test_a_partly_clipped_reference_keeps_what_its_other_channels_show(monkeypatch):
    """sculpture_garden's walkers: a red shirt whose red the reference clips, in front of a bright wall that the
    short frame shows there (the walker was elsewhere then). The shirt's green and blue, which the reference shows,
    refute the short frame's wall, so the shirt keeps them (before: the wall and its railing pasted across it)."""
    height, width = SIZE
    rng = np.random.default_rng(1)
    texture = cv2.GaussianBlur(rng.random((height, width)).astype(np.float32), (0, 0), 2)
    radiance = (0.05 + 0.2 * texture)[..., None] * np.ones(3, np.float32)  # textured, well exposed: aligns
    shirt = (slice(30, 60), slice(50, 90))
    radiance[shirt] = (3.0, 0.3, 0.25)  # red clipped in the reference (EV 0), green and blue shown
    short = radiance.copy()
    short[shirt] = (3.0, 2.6, 2.2)  # the bright wall the short frame sees there
    exposures = [-2.0, 0.0, 2.0]
    frames = [_frames(short, exposures)[0], *_frames(radiance, exposures)[1:]]
    assert (frames[1][shirt][..., 0] == 1.0).all() and (frames[1][shirt][..., 1:] < 0.7).all()
    merged = flow_merge(frames, exposures).radiance
    np.testing.assert_allclose(np.median(merged[shirt].reshape(-1, 3), axis=0)[1:], (0.3, 0.25), rtol=0.05)
    monkeypatch.setattr("diffhdr_diffusers.merging.MISMATCH_RATIO", 0.0)  # without the rule: the wall
    pasted = flow_merge(frames, exposures).radiance
    assert np.median(pasted[shirt][..., 1]) > 1.5
