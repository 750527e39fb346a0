"""Benchmark: images per second of notebook 05's generators on this CPU, against one-image-at-a-time loops.

Speed does not depend on the weights, so untrained models are timed: the VAE of Table 1 and the DCGAN of
Table 2 at 64x64 at full width and at the `class` profile's width, and the `class` profile's DDPM UNet
with DDIM (its sampling steps) and with the full 1000-step DDPM chain. Each batched rate is compared with
the same model generating one image per call, measured in the same run: that ratio is what batching buys.
Target (issue 7): at least 50 images/s for the VAE and the DCGAN at 64x64.

    python benchmarks/bench_generation.py [--n 200] [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import torch

from course_lib import sign_generators as sg
from course_lib.models import conv_vae, ddpm, sign_dcgan

TARGET = 50.0


def per_image(generate_one, n: int) -> float:
    """Images per second when every image is its own call (the baseline)."""
    generate_one(0)                                          # warm-up
    t0 = time.perf_counter()
    for i in range(n):
        generate_one(i)
    return n / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="images per timed batch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    vae_s, gan_s, ddpm_s = (sg.SETTINGS[k]["class"] for k in sg.KINDS)

    rows = []
    for label, width in (("Table 1, full width", 1.0), (f"class profile, width x{vae_s.width}", vae_s.width)):
        model = conv_vae.ConvVAE(64, 3, width, 512 if width == 1.0 else vae_s.latent).eval()
        batched = conv_vae.throughput(model, n=args.n, repeats=args.repeats)
        single = per_image(lambda i: conv_vae.sample(model, 1, seed=i), max(20, args.n // 10))
        rows.append(("VAE", label, batched, single))
    for label, width in (("Table 2, FEATURES 64", 64), (f"class profile, FEATURES {gan_s.width}", gan_s.width)):
        G = sign_dcgan.SignGenerator(256, 64, 3, width).eval()
        batched = sign_dcgan.throughput(G, n=args.n, repeats=args.repeats)
        single = per_image(lambda i: sign_dcgan.generate(G, 1, seed=i), max(20, args.n // 10))
        rows.append(("DCGAN", label, batched, single))

    print(f"{'model':6s} {'configuration':34s} {'batched img/s':>14s} {'1 per call':>11s} {'ratio':>6s}  target")
    for model, label, batched, single in rows:
        verdict = "ok" if batched >= TARGET else "MISSED"
        print(f"{model:6s} {label:34s} {batched:14.1f} {single:11.1f} {batched / single:6.1f}x  >= {TARGET:.0f} img/s: {verdict}")

    unet = ddpm.make_unet(ddpm_s.size, ddpm_s.block_out_channels, ddpm_s.layers_per_block).eval()
    fast = ddpm.throughput(unet, n=8, steps=ddpm_s.sample_steps, sampler="ddim")
    slow = ddpm.throughput(unet, n=2, steps=ddpm.TIMESTEPS, sampler="ddpm")
    print(f"\nDDPM UNet of the class profile ({ddpm_s.size}x{ddpm_s.size}, channels {ddpm_s.block_out_channels}):")
    print(f"  DDIM, {fast['steps']} steps: {fast['images_per_second']:.2f} img/s; "
          f"DDPM, {slow['steps']} steps: {slow['images_per_second']:.3f} img/s; "
          f"DDIM / DDPM = {fast['images_per_second'] / slow['images_per_second']:.0f}x (no target: reported)")


if __name__ == "__main__":
    main()
