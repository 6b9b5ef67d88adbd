"""The original's learning-rate schedule, as a pure function of the epoch."""
from __future__ import annotations


def lr_at(epoch: int, base_lr: float, n_epochs: int, n_epochs_decay: int) -> float:
    """Learning rate during 1-based ``epoch``: constant for ``n_epochs``, then linear decay.

    The original's ``lambda_rule``: 1 - max(0, k - n_epochs) / (n_epochs_decay + 1), so the last
    epoch still trains at base_lr / (n_epochs_decay + 1), never at zero.
    """
    if epoch < 1:
        raise ValueError(f"epochs count from 1, got {epoch}")
    return base_lr * (1.0 - max(0, epoch - n_epochs) / float(n_epochs_decay + 1))
