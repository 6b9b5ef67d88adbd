"""`ccv train --amp` on the CPU: bf16 autocast (no GradScaler: bf16 has fp32's range). It must
change a step only within bf16's precision and learn like fp32, as the CUDA AMP tests ask of fp16.
Runs on any CPU (bf16 is emulated, slowly, where there is no native support)."""
from __future__ import annotations

import pytest
import torch

from cyclegan_convert.train.model import LOSS_NAMES, CycleGAN

from conftest import PAINTINGS, PHOTOS
from test_train_cuda import CONFIG, _images, _run


def _first_step(amp: bool):
    model = CycleGAN(CONFIG, "cpu", amp=amp)
    assert model.amp == amp and not model.scaler.is_enabled()
    losses = model.train_step(_images(PAINTINGS, 2), _images(PHOTOS, 2))
    grads = {name: torch.cat([p.grad.flatten() for p in net.parameters()]) for name, net in model.nets.items()}
    return losses, grads


def test_bf16_step_stays_within_bf16_of_fp32():
    """bf16 keeps 8 bits of mantissa (fp16 11): measured here, losses within 0.5% of fp32 and the
    gradients' cosine 0.99+ for the discriminators, 0.95-0.97 for the generators (whose gradients
    go through InstanceNorm of a nearly flat random-init output, which magnifies rounding)."""
    (losses, grads), (ref_losses, ref_grads) = _first_step(True), _first_step(False)
    for name in LOSS_NAMES:
        assert losses[name] == pytest.approx(ref_losses[name], rel=2e-2, abs=1e-3), name
    for name, g in grads.items():
        assert g.dtype == torch.float32  # the weights and their gradients stay fp32
        cosine = float(torch.nn.functional.cosine_similarity(g, ref_grads[name], dim=0))
        assert cosine > (0.98 if name.startswith("D") else 0.9), (name, cosine)


def test_bf16_run_learns_like_the_fp32_run():
    """40 steps each from the same init (see test_train_cuda for why only coarse agreement is asked)."""
    amp, ref = _run("cpu", 40, amp=True), _run("cpu", 40, amp=False)
    assert torch.isfinite(amp).all()
    rec, ref_rec = amp[:, 2:6].sum(1), ref[:, 2:6].sum(1)  # cycle_A, cycle_B, idt_A, idt_B
    assert rec[0] == pytest.approx(float(ref_rec[0]), rel=3e-2)
    assert rec[-10:].mean() < 0.8 * rec[0] and ref_rec[-10:].mean() < 0.8 * ref_rec[0]
    assert 0.67 < rec[-10:].mean() / ref_rec[-10:].mean() < 1.5
