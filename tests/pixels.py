"""What "the same pixels" means in a test that runs a network, and the one PSNR the tests use.

Two runs of the same network on the same image agree to the bit only on the same CPU kernels and
thread count: oneDNN picks other kernels on AVX2, AVX-512, AVX512-BF16 and AMX, and PyTorch's
channels_last InstanceNorm splits its reductions by thread. What differs is rounding: a few pixels
one 8-bit step apart (measured 87 dB on an AMD EPYC against the reference of tests/test_end_to_end.py
in fp32). A real defect is far from that: padding on the wrong side, a wrong orientation, swapped
channels or a crop one pixel off cost 15-19 dB on the tests' tiny generator (``test_end_to_end.py`` shows each one fails
``assert_same_pixels``). So the bound: at least 60 dB, and no pixel more than 2 steps off.

Outputs that the design promises to be byte-equal (a rerun, a resumed run, the same process and
thread count) are compared for equality, not with this.
"""
from __future__ import annotations

import numpy as np

ROUNDING_MIN_DB = 60.0   # kernel rounding on any x86-64 CPU stays above this (measured 65-inf)
ROUNDING_MAX_STEPS = 2   # and moves no value further than this


def _array(x) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().cpu().numpy()
    return np.asarray(x).astype(np.float64)


def psnr(a, b) -> float:
    """PSNR in dB of two 8-bit images (numpy arrays or tensors of any shape holding 0..255); inf
    when identical."""
    a, b = _array(a), _array(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def rounding_apart(got, expected) -> bool:
    """True when ``got`` differs from ``expected`` by no more than kernel rounding."""
    g, e = _array(got), _array(expected)
    if g.shape != e.shape:
        return False
    return psnr(g, e) >= ROUNDING_MIN_DB and float(np.abs(g - e).max(initial=0)) <= ROUNDING_MAX_STEPS


def assert_same_pixels(got, expected, what: str = "") -> None:
    """``got`` is ``expected`` up to kernel rounding (see the module docstring)."""
    g, e = _array(got), _array(expected)
    assert g.shape == e.shape, (what, g.shape, e.shape)
    worst = float(np.abs(g - e).max(initial=0))
    assert rounding_apart(g, e), f"{what}: {psnr(g, e):.1f} dB, max {worst:.0f} steps off (rounding: " \
                                 f">= {ROUNDING_MIN_DB} dB, <= {ROUNDING_MAX_STEPS} steps)"
