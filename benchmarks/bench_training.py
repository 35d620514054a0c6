#!/usr/bin/env python
"""Training throughput: our training step against a faithful re-implementation of the original's.

Both steps run in the same process on the same models, data and device, alternating, so the machine's
load affects both alike. "ours" is the step of ``training/train_diffhdr.py`` without accelerate's
wrappers: condition encoder and UNet forward, antithetic timesteps and noise from per-step generators,
``diffhdr_loss`` (per-element MSE + weighted L1), backward, gradient clipping, Adam, and a constant-decay
``EMAModel`` over both networks. "original" repeats ``models/ddm.py`` of DiffHDR-pytorch: betas cumprod
indexed per step, global-RNG noise and timesteps, sum-over-pixels MSE + L1, Adam, and its ``EMAHelper``
(a Python loop over the UNet's named parameters).

    python benchmarks/bench_training.py --configs small paper --steps 5
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
import torch.nn.functional as F
from diffusers.training_utils import EMAModel

from diffhdr_diffusers.model_configs import build_models
from diffhdr_diffusers.schedulers import original_ddim_scheduler
from diffhdr_diffusers.training_utils import antithetic_timesteps, diffhdr_loss, step_generator

DEFAULT_CROPS = {"paper": 128, "small": 64, "tiny": 32}


class OriginalEMAHelper:
    """The original's EMA: a shadow dict updated parameter by parameter."""

    def __init__(self, module: torch.nn.Module, mu: float):
        self.mu = mu
        self.shadow = {name: p.data.clone() for name, p in module.named_parameters() if p.requires_grad}

    def update(self, module: torch.nn.Module) -> None:
        for name, param in module.named_parameters():
            if param.requires_grad:
                self.shadow[name].data = (1.0 - self.mu) * param.data + self.mu * self.shadow[name].data


class OriginalStep:
    """``DenoisingDiffusion.train``'s inner step, DataParallel removed, maths unchanged."""

    def __init__(self, unet, encoder, lr: float, device):
        self.unet, self.encoder = unet, encoder
        self.optimizer = torch.optim.Adam(list(unet.parameters()) + list(encoder.parameters()), lr=lr,
                                          weight_decay=0.0, betas=(0.9, 0.999), amsgrad=False, eps=1e-8)
        self.ema = OriginalEMAHelper(unet, 0.999)
        self.betas = torch.tensor(original_ddim_scheduler().betas.numpy(), device=device)
        self.num_timesteps = self.betas.shape[0]

    def __call__(self, x: torch.Tensor, step: int) -> float:
        n = x.size(0)
        feature = self.encoder(x[:, :18])
        e = torch.randn_like(x[:, 18:])
        t = torch.randint(low=0, high=self.num_timesteps, size=(n // 2 + 1,)).to(x.device)
        t = torch.cat([t, self.num_timesteps - t - 1], dim=0)[:n]
        a = (1 - self.betas).cumprod(dim=0).index_select(0, t).view(-1, 1, 1, 1)
        noisy = x[:, 18:] * a.sqrt() + e * (1.0 - a).sqrt()
        output = self.unet(noisy, t.float(), feature).sample
        x0_t = (noisy - output * (1 - a).sqrt()) / a.sqrt()
        loss = (e - output).square().sum(dim=(1, 2, 3)).mean(dim=0) + F.l1_loss(x0_t, x[:, 18:])
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.ema.update(self.unet)
        return float(loss.detach())


class OurStep:
    """The step of ``training/train_diffhdr.py`` (single process, no accelerate wrappers)."""

    def __init__(self, unet, encoder, lr: float, device, max_grad_norm: float = 1.0):
        self.unet, self.encoder, self.device = unet, encoder, device
        self.params = list(unet.parameters()) + list(encoder.parameters())
        self.optimizer = torch.optim.Adam(self.params, lr=lr, betas=(0.9, 0.999), weight_decay=0.0, eps=1e-8)
        self.emas = [EMAModel(m.parameters(), decay=0.999, min_decay=0.999, foreach=True) for m in (unet, encoder)]
        self.scheduler = original_ddim_scheduler()
        self.alphas_cumprod = self.scheduler.alphas_cumprod.to(device)
        self.max_grad_norm = max_grad_norm

    def __call__(self, x: torch.Tensor, step: int) -> float:
        conditioning, target = x[:, :18], x[:, 18:]
        generator = step_generator(0, step, 0, 0)
        timesteps = antithetic_timesteps(target.shape[0], 1000, generator).to(self.device)
        noise = torch.randn(target.shape, generator=generator).to(self.device)
        noisy = self.scheduler.add_noise(target, noise, timesteps)
        noise_pred = self.unet(noisy, timesteps.float(), self.encoder(conditioning)).sample
        terms = diffhdr_loss(noise_pred, noise, noisy, target, self.alphas_cumprod[timesteps])
        terms.loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, self.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        for ema, model in zip(self.emas, (self.unet, self.encoder)):
            ema.step(model.parameters())
        return float(terms.loss.detach())


def measure(config: str, crop: int, batch: int, steps: int, warmup: int, device: str) -> dict:
    torch.manual_seed(0)
    runners = {}
    for name, step_class in (("ours", OurStep), ("original", OriginalStep)):
        torch.manual_seed(0)
        unet, encoder = build_models(config)
        unet.to(device).train()
        encoder.to(device).train()
        runners[name] = step_class(unet, encoder, 2e-5, device)
    data = torch.rand(batch, 21, crop, crop, device=device)
    times = {name: [] for name in runners}
    for index in range(warmup + steps):
        for name, runner in runners.items():  # alternate, so load changes hit both alike
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            runner(data, index)
            if device == "cuda":
                torch.cuda.synchronize()
            if index >= warmup:
                times[name].append(time.perf_counter() - start)
    result = {"config": config, "crop": crop, "batch": batch}
    for name, values in times.items():
        median = sorted(values)[len(values) // 2]
        result[f"{name}_samples_per_s"] = batch / median
    result["ratio"] = result["ours_samples_per_s"] / result["original_samples_per_s"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=["small", "paper"])
    parser.add_argument("--batch", type=int, default=8, help="Crops per step (the paper: 8).")
    parser.add_argument("--crop", type=int, default=None, help="Crop size (default: 128 paper, 64 small, 32 tiny).")
    parser.add_argument("--steps", type=int, default=5, help="Timed steps per implementation (median reported).")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU).")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"device {args.device} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads), "
          f"torch {torch.__version__}, batch {args.batch}, median of {args.steps} steps after {args.warmup} warm-up")
    print("| config | crop | ours samples/s | original samples/s | ours / original |")
    print("|---|---|---|---|---|")
    for config in args.configs:
        crop = args.crop or DEFAULT_CROPS.get(config, 128)
        row = measure(config, crop, args.batch, args.steps, args.warmup, args.device)
        print(f"| {config} | {crop} | {row['ours_samples_per_s']:.2f} | {row['original_samples_per_s']:.2f} | "
              f"{row['ratio']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
