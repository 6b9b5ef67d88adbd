"""The CUDA training settings against plain fp32: channels_last, cuDNN autotuning and AMP each change
results only within their expected precision. Skipped without a GPU, except channels_last, which
also runs on the CPU; benchmarks/gpu_check.sh runs this file on the lent GPU before training."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan_convert.train.config import TrainConfig
from cyclegan_convert.train.model import LOSS_NAMES, CycleGAN

from conftest import PAINTINGS, PHOTOS

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU (benchmarks/gpu_check.sh runs it on the lent GPU)")
DEVICES = ["cpu", pytest.param("cuda", marks=needs_cuda)]

# Small networks and real images; only the first step is compared (see _assert_close).
CONFIG = TrainConfig(ngf=16, ndf=16, n_blocks=3, pool_size=0, seed=0)
SIZE = 64


def _images(paths, n):
    arrays = [np.array(Image.open(p).convert("RGB").resize((SIZE, SIZE), Image.BICUBIC)) for p in paths[:n]]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 127.5 - 1


@pytest.fixture
def cudnn_flags():
    """TF32 off for exact fp32 comparisons; every flag restored afterwards."""
    saved = (torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _first_step(device: str, *, amp: bool = False, channels_last: bool = False, benchmark: bool = False):
    """One step from the same init on the same real batch: its losses and the gradients it applied
    (per network, flattened, fp32, unscaled)."""
    torch.backends.cudnn.benchmark = benchmark
    a, b = _images(PAINTINGS, 2), _images(PHOTOS, 2)
    model = CycleGAN(CONFIG, device, amp=amp, channels_last=channels_last)
    assert model.amp == amp
    if amp:
        # GradScaler starts at 2**16, where early steps often overflow and are skipped by design;
        # a lower start makes this step one that is applied, as most steps of a run are.
        model.scaler = torch.amp.GradScaler("cuda", init_scale=2.0 ** 10)
    losses = model.train_step(a, b)
    if amp:
        assert model.scaler.get_scale() == 2.0 ** 10, "the step overflowed and was skipped"
    grads = {name: torch.cat([p.grad.float().flatten().cpu() for p in net.parameters()])
             for name, net in model.nets.items()}
    return losses, grads


def _assert_close(got, want, rtol: float, min_cosine: float):
    """Losses and discriminator gradients within rtol (in norm: ||g - g_ref|| / ||g_ref||); generator
    gradients pointing the same way (cosine similarity).

    The generators' gradients are compared more loosely on purpose: the cycle term runs G_B's
    InstanceNorm on G_A's output, which at random init has almost no contrast, so the normalisation
    magnifies rounding: two fp32 runs on the CPU that differ only in memory layout give generator
    gradients 0.1-0.4% apart (discriminators: 3e-6). Only the first step is compared: Adam's first
    update is lr * sign(grad), so later steps differ by about 1% between such fp32 runs."""
    (losses, grads), (ref_losses, ref_grads) = got, want
    for name in LOSS_NAMES:
        assert losses[name] == pytest.approx(ref_losses[name], rel=rtol, abs=rtol * 1e-2), (name, losses[name], ref_losses[name])
    for name, g in grads.items():
        ref = ref_grads[name]
        if name.startswith("D"):
            err = float((g - ref).norm() / ref.norm())
            assert err < rtol, (name, err)
        else:
            cosine = float(torch.nn.functional.cosine_similarity(g, ref, dim=0))
            assert cosine > min_cosine, (name, cosine)


def _run(device: str, steps: int, **settings) -> torch.Tensor:
    """steps x 8 losses of a short run from the same init on the fixture images in turn (pool on, as in a run)."""
    torch.backends.cudnn.benchmark = settings.pop("benchmark", False)
    model = CycleGAN(CONFIG.with_(pool_size=50), device, **settings)
    n = min(len(PAINTINGS), len(PHOTOS))
    batches = [(_images(PAINTINGS[i:], 1), _images(PHOTOS[i:], 1)) for i in range(n)]
    losses = [model.train_step(*batches[i % n]) for i in range(steps)]
    return torch.tensor([[step[k] for k in LOSS_NAMES] for step in losses])


@pytest.mark.parametrize("device", DEVICES)
def test_channels_last_keeps_the_results(device, cudnn_flags):
    _assert_close(_first_step(device, channels_last=True), _first_step(device, channels_last=False), 1e-4, 0.9999)


@needs_cuda
def test_cudnn_autotuning_keeps_the_results(cudnn_flags):
    _assert_close(_first_step("cuda", channels_last=True, benchmark=True),
                  _first_step("cuda", channels_last=True, benchmark=False), 1e-4, 0.9999)


@needs_cuda
def test_cuda_fp32_matches_the_cpu(cudnn_flags):
    _assert_close(_first_step("cuda", channels_last=True, benchmark=True), _first_step("cpu"), 1e-3, 0.999)


@needs_cuda
def test_amp_step_stays_within_half_precision_of_fp32(cudnn_flags):
    """fp16 autocast with a GradScaler, as `ccv train` runs on CUDA by default: one step's losses
    and gradients within what fp16 activations (11-bit mantissa, fp32 accumulation) allow."""
    _assert_close(_first_step("cuda", amp=True, channels_last=True, benchmark=True),
                  _first_step("cuda", channels_last=True, benchmark=True), 2e-2, 0.99)


@needs_cuda
def test_amp_run_learns_like_the_fp32_run(cudnn_flags):
    """40 steps with AMP and 40 in fp32 from the same init: nothing overflows into the losses, and
    AMP learns: the cycle and identity losses fall as fp32's do. Only coarse agreement is asked:
    GAN training is chaotic, and two fp32 runs on the CPU that differ only in memory layout end
    these 40 steps with reconstruction losses 8% apart (single terms up to 27%), down to 0.60-0.64
    of the first step's."""
    amp = _run("cuda", 40, amp=True, benchmark=True)
    ref = _run("cuda", 40, amp=False, benchmark=True)
    assert torch.isfinite(amp).all()
    rec, ref_rec = amp[:, 2:6].sum(1), ref[:, 2:6].sum(1)  # cycle_A, cycle_B, idt_A, idt_B
    assert rec[0] == pytest.approx(float(ref_rec[0]), rel=2e-2)  # the same start
    assert rec[-10:].mean() < 0.8 * rec[0] and ref_rec[-10:].mean() < 0.8 * ref_rec[0]
    assert 0.67 < rec[-10:].mean() / ref_rec[-10:].mean() < 1.5
