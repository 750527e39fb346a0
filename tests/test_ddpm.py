"""The per-class DDPM of notebook 05 (document 001, Table 3): UNet layout, one step, resume, sampling."""

from __future__ import annotations

import pytest
import torch

from course_lib.models import ddpm
from course_lib.models.ddpm import (TABLE3_CHANNELS, UNET_PRESETS, generate, load_unet, make_unet, param_count,
                                    throughput, train_ddpm, train_ddpm_per_class)
from course_lib.train import TrainingDiverged

TINY = dict(block_out_channels=(8, 16), layers_per_block=1)


def images(n: int = 6, size: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_full_size_unet_matches_table3():
    unet = make_unet()                                             # Table 3: 64x64x3, 2 layers a block
    cfg = unet.config
    assert cfg.sample_size == 64 and cfg.in_channels == cfg.out_channels == 3 and cfg.layers_per_block == 2
    assert tuple(cfg.block_out_channels) == TABLE3_CHANNELS == (64, 64, 128, 128, 256, 256)
    assert [type(b).__name__ for b in unet.down_blocks] == ["DownBlock2D"] * 4 + ["AttnDownBlock2D", "DownBlock2D"]
    assert [type(b).__name__ for b in unet.up_blocks] == ["UpBlock2D", "AttnUpBlock2D"] + ["UpBlock2D"] * 4
    assert [b.resnets[-1].out_channels for b in unet.down_blocks] == list(TABLE3_CHANNELS)
    assert [b.resnets[-1].out_channels for b in unet.up_blocks] == list(TABLE3_CHANNELS[::-1])
    assert all(len(b.resnets) == 2 for b in unet.down_blocks)
    n = param_count(unet)
    # Table 3 prints no count; the parameters of a conv net grow with the square of its width, so
    # halving every channel count must leave about a quarter of them
    half = param_count(make_unet(block_out_channels=tuple(c // 2 for c in TABLE3_CHANNELS)))
    assert 0.2 < half / n < 0.3
    assert 20e6 < n < 40e6                                         # 28.4 M with diffusers 0.42
    with torch.no_grad():
        out = unet(torch.randn(1, 3, 64, 64), 10).sample
    assert out.shape == (1, 3, 64, 64)


@pytest.mark.parametrize("name", ["class", "smoke"])
def test_scaled_presets_build_and_run(name):
    preset = dict(UNET_PRESETS[name])
    size = preset.pop("size")
    unet = make_unet(size, **preset)
    kinds = [type(b).__name__ for b in unet.down_blocks]
    assert kinds.count("AttnDownBlock2D") == 1 and kinds[-2] == "AttnDownBlock2D"
    assert [type(b).__name__ for b in unet.up_blocks][1] == "AttnUpBlock2D"
    with torch.no_grad():
        assert unet(torch.randn(2, 3, size, size), torch.tensor([1, 500])).sample.shape == (2, 3, size, size)


def test_bad_inputs_get_clear_errors():
    with pytest.raises(ValueError, match="multiple of 2\\*\\*5"):
        make_unet(size=40)
    with pytest.raises(ValueError, match="at least two"):
        make_unet(16, block_out_channels=(8,))
    bad = images()
    bad[1, 2, 3, 4] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        train_ddpm(bad, epochs=1, progress=False, **TINY)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        train_ddpm(images() * 2 - 1, epochs=1, progress=False, **TINY)
    with pytest.raises(ValueError, match="sampler"):
        generate(make_unet(16, **TINY), 2, sampler="euler")


def test_one_step_lowers_the_loss_on_a_fixed_batch():
    from diffusers import DDPMScheduler

    torch.manual_seed(0)
    unet = make_unet(16, **TINY)
    g = torch.Generator().manual_seed(0)
    x0 = images(8) * 2 - 1
    noise, t = torch.randn(x0.shape, generator=g), torch.randint(0, 1000, (8,), generator=g)
    xt = DDPMScheduler(num_train_timesteps=1000).add_noise(x0, noise, t)
    opt = torch.optim.AdamW(unet.parameters(), lr=1e-3)
    before = torch.nn.functional.mse_loss(unet(xt, t).sample, noise)
    before.backward()
    opt.step()
    with torch.no_grad():
        after = torch.nn.functional.mse_loss(unet(xt, t).sample, noise)
    assert float(after) < float(before.detach())


def test_interrupted_training_resumes_exactly(tmp_path, monkeypatch):
    x = images(6)
    kw = dict(epochs=3, batch_size=4, warmup_steps=2, progress=False, **TINY)
    full = train_ddpm(x, **kw)
    assert full.mixed_precision == ("fp16" if torch.cuda.is_available() else "no")
    assert full.column("lr")[-1] == pytest.approx(0.0)          # the cosine ends at zero after all steps
    path = tmp_path / "ddpm.pt"
    real_mse, calls = torch.nn.functional.mse_loss, {"n": 0}

    def interrupt_in_epoch_3(*a, **k):
        calls["n"] += 1
        if calls["n"] > 4:                                         # two batches an epoch: stop in the third
            raise KeyboardInterrupt
        return real_mse(*a, **k)

    monkeypatch.setattr(ddpm.F, "mse_loss", interrupt_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        train_ddpm(x, checkpoint=path, checkpoint_every=1, **kw)
    monkeypatch.setattr(ddpm.F, "mse_loss", real_mse)
    resumed = train_ddpm(x, checkpoint=path, **kw)
    assert resumed.resumed_from == 2 and len(resumed.epochs) == 3
    assert resumed.column("loss") == pytest.approx(full.column("loss"))
    for a, b in zip(full.unet.parameters(), resumed.unet.parameters()):
        assert torch.allclose(a, b)
    loaded = load_unet(path)                                        # weights_only round trip of the UNet
    for a, b in zip(full.unet.parameters(), loaded.parameters()):
        assert torch.allclose(a, b)
    assert train_ddpm(x, checkpoint=path, **kw).resumed_from == 3


def test_nan_loss_stops_training(monkeypatch):
    monkeypatch.setattr(ddpm.F, "mse_loss", lambda a, b: (a - b).sum() * float("nan"))
    with pytest.raises(TrainingDiverged, match="NaN"):
        train_ddpm(images(4), epochs=2, batch_size=4, warmup_steps=1, progress=False, **TINY)


def test_one_ddpm_per_class_cached_and_generated(cache):
    data = {"a": images(5, seed=1), "b": images(4, seed=2)}
    kw = dict(batch_size=4, warmup_steps=1, progress=False, **TINY)
    runs = train_ddpm_per_class(data, 2, **kw)
    assert set(runs) == {"a", "b"} and all(len(r.epochs) == 2 for r in runs.values())
    assert len(list((cache / "checkpoints").glob("ddpm-*.pt"))) == 2
    again = train_ddpm_per_class(data, 2, **kw)
    assert all(r.resumed_from == 2 for r in again.values())
    unet = again["a"].unet
    for sampler in ("ddim", "ddpm"):
        out = generate(unet, 5, steps=3, sampler=sampler, seed=7, batch_size=2)
        assert out.shape == (5, 3, 16, 16) and out.dtype == torch.float32
        assert 0 <= float(out.min()) and float(out.max()) <= 1
    assert torch.equal(generate(unet, 3, steps=3, seed=1), generate(unet, 3, steps=3, seed=1))
    report = throughput(unet, n=2, steps=2)
    assert report["sampler"] == "ddim" and report["steps"] == 2 and report["images_per_second"] > 0
