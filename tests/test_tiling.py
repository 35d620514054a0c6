import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from diffhdr_diffusers.pipelines import WindowGrid, window_starts
from diffhdr_diffusers.pipelines.window_features import WindowFeatures, encode_in_bands
from diffhdr_diffusers.model_configs import build_models


def test_grid_equals_original_when_sizes_divide():
    # The original: range(0, size - p + 1, r) on each axis (1024x1536, p 512, r 64 -> 9 x 17 = 153 windows).
    grid = WindowGrid.build(1024, 1536, 512, 64)
    assert len(grid) == 153
    assert [y for y, _ in grid.origins[::17]] == list(range(0, 513, 64))
    assert [x for _, x in grid.origins[:17]] == list(range(0, 1025, 64))


@settings(max_examples=200, deadline=None)
@given(size=st.integers(8, 300), patch=st.integers(8, 128), stride=st.integers(1, 128), offset=st.integers(0, 127))
def test_windows_cover_every_pixel_and_stay_inside(size, patch, stride, offset):
    stride = min(stride, patch)
    starts = window_starts(size, min(patch, size), stride, offset)
    covered = torch.zeros(size, dtype=torch.bool)
    for start in starts:
        assert 0 <= start and start + min(patch, size) <= size
        covered[start:start + min(patch, size)] = True
    assert covered.all()


def test_coverage_counts_and_accumulate_roundtrip():
    grid = WindowGrid.build(45, 70, 32, 16)
    coverage = grid.coverage()
    assert coverage.min() >= 1 and coverage.shape == (45, 70)
    image = torch.randn(2, 3, 45, 70)
    total = torch.zeros_like(image)
    indices = list(range(len(grid)))
    grid.accumulate(total, grid.crop(image, indices), indices)
    torch.testing.assert_close(total / coverage, image)


def test_image_smaller_than_patch_is_one_window():
    grid = WindowGrid.build(24, 40, 64, 32)
    assert grid.origins == ((0, 0),) and (grid.patch_height, grid.patch_width) == (24, 40)


@pytest.mark.parametrize("patch,stride", [(32, 16), (48, 40), (16, 16)])
def test_per_window_features_equal_encoder_on_each_crop(patch, stride):
    torch.manual_seed(0)
    _, encoder = build_models("tiny")
    conditioning = torch.rand(2, 18, 64, 80)
    grid = WindowGrid.build(64, 80, patch, stride)
    cached = WindowFeatures(encoder, conditioning, grid, per_window=True, batch_size=3)
    whole = WindowFeatures(encoder, conditioning, grid, per_window=False)
    indices = list(range(len(grid)))
    direct = encoder(grid.crop(conditioning, indices))
    torch.testing.assert_close(cached.crop(indices), direct, atol=1e-5, rtol=0)
    # Whole-image features differ from per-window ones near interior window edges only.
    assert (whole.crop(indices) - direct).abs().max() > 1e-3


def test_per_window_features_follow_a_shifted_grid():
    torch.manual_seed(0)
    _, encoder = build_models("tiny")
    conditioning = torch.rand(1, 18, 64, 80)
    cached = WindowFeatures(encoder, conditioning, WindowGrid.build(64, 80, 32, 32), per_window=True)
    shifted = WindowGrid.build(64, 80, 32, 32, offset=(7, 13))
    cached.set_grid(shifted)
    indices = list(range(len(shifted)))
    torch.testing.assert_close(cached.crop(indices), encoder(shifted.crop(conditioning, indices)), atol=1e-5, rtol=0)


@pytest.mark.parametrize("band_pixels", [80, 7 * 80, 10**6])  # bands of 1 row, 7 rows, the whole image
def test_banded_encoding_equals_one_whole_image_pass(band_pixels):
    torch.manual_seed(0)
    _, encoder = build_models("tiny")
    conditioning = torch.rand(2, 18, 45, 80)
    # The same values up to float32 summation order, which CPU kernels pick by input shape: the feature level 1e-5.
    torch.testing.assert_close(encode_in_bands(encoder, conditioning, band_pixels), encoder(conditioning),
                               atol=1e-5, rtol=0)
