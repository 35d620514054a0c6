import pytest
import torch

from diffhdr_diffusers import ConditionEncoder, DiffHDRUNet
from diffhdr_diffusers.model_configs import MODEL_CONFIGS, build_models


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    return build_models("tiny")


def test_paper_config_parameter_counts():
    # FACTS: about 75 M in the UNet with its DFA layer, about 0.56 M in the condition network.
    unet = DiffHDRUNet(**MODEL_CONFIGS["paper"]["unet"])
    encoder = ConditionEncoder(**MODEL_CONFIGS["paper"]["condition_encoder"])
    assert 74.5e6 < sum(p.numel() for p in unet.parameters()) < 75.5e6
    assert sum(p.numel() for p in encoder.parameters()) == 556_928
    assert unet.SFT_layer.SFT_scale_conv1.out_channels == 128


@pytest.mark.parametrize("timestep", [7, 7.5, torch.tensor(7.0), torch.tensor([7.0, 7.0])])
def test_unet_accepts_any_timestep_form(tiny, timestep):
    unet, encoder = tiny
    sample, condition = torch.randn(2, 3, 32, 48), encoder(torch.rand(2, 18, 32, 48))
    out = unet(sample, timestep, condition).sample
    reference = unet(sample, torch.tensor([7.0, 7.0]) if not isinstance(timestep, float) else torch.tensor([7.5, 7.5]),
                     condition).sample
    assert out.shape == (2, 3, 32, 48)
    torch.testing.assert_close(out, reference)


def test_unet_uses_timestep_and_condition(tiny):
    unet, encoder = tiny
    sample = torch.randn(1, 3, 32, 32)
    condition = encoder(torch.rand(1, 18, 32, 32))
    base = unet(sample, 10, condition).sample
    assert not torch.allclose(base, unet(sample, 900, condition).sample)
    assert not torch.allclose(base, unet(sample, 10, condition + 1).sample)
    assert unet(sample, 10, condition, return_dict=False)[0].shape == base.shape


def test_dfa_branch_widths_follow_config():
    unet = DiffHDRUNet(sample_size=32, ch=64, ch_mult=(1, 2), condition_channels=8, dfa_hidden_channels=16)
    assert unet.SFT_layer.SFT_scale_conv0.in_channels == 8
    assert unet.SFT_layer.SFT_scale_conv0.out_channels == 16
    assert unet.SFT_layer.SFT_shift_conv1.out_channels == 64


def test_condition_encoder_receptive_radius_is_exact(tiny):
    _, encoder = tiny
    radius = encoder.receptive_radius
    assert radius == 4
    base = torch.rand(1, 18, 40, 40)
    changed = base.clone()
    changed[..., 20, 20] += 1.0
    diff = (encoder(changed) - encoder(base)).abs().sum(dim=1)[0]
    rows, cols = torch.nonzero(diff > 0, as_tuple=True)
    assert rows.min() == 20 - radius and rows.max() == 20 + radius
    assert cols.min() == 20 - radius and cols.max() == 20 + radius


def test_condition_encoder_gates_non_reference_exposures(tiny):
    _, encoder = tiny
    assert len(encoder.attention) == 2
    with pytest.raises(ValueError, match="channels"):
        encoder(torch.rand(1, 12, 16, 16))


def test_gradient_checkpointing_gives_same_gradients(tiny):
    unet, encoder = tiny
    sample, condition = torch.randn(2, 3, 32, 32), torch.rand(2, 16, 32, 32)

    def grads():
        unet.zero_grad()
        unet(sample, torch.tensor([3, 400]), condition).sample.square().mean().backward()
        return [p.grad.clone() for p in unet.parameters()]

    plain = grads()
    unet.enable_gradient_checkpointing()
    assert unet.is_gradient_checkpointing
    for a, b in zip(plain, grads()):
        torch.testing.assert_close(a, b)


def test_save_load_roundtrip_is_bit_exact(tiny, tmp_path):
    unet, encoder = tiny
    unet.save_pretrained(tmp_path / "unet")
    encoder.save_pretrained(tmp_path / "enc")
    for original, loaded in ((unet, DiffHDRUNet.from_pretrained(tmp_path / "unet")),
                             (encoder, ConditionEncoder.from_pretrained(tmp_path / "enc"))):
        normalise = lambda c: {k: list(v) if isinstance(v, tuple) else v for k, v in c.items() if not k.startswith("_")}  # noqa: E731
        assert normalise(loaded.config) == normalise(original.config)
        for (name, a), (_, b) in zip(original.state_dict().items(), loaded.state_dict().items()):
            assert torch.equal(a, b), name
