"""Checkpoints under ``checkpoints/NAME/``, every file written atomically.

- ``latest_net_{G_A,G_B,D_A,D_B}.pth`` and ``<epoch>_net_*.pth``: plain CPU state_dicts, as the
  original saves them (its test script loads them; so does ``cyclegan_convert.weights``).
- ``state.pth``: everything an exact resume needs in one file: the four networks, both optimizers,
  the grad scaler, both image pools with their random state, the position in the schedule and the
  data (epoch, step), the global RNG states and the config as plain data. It is written first and
  is self-contained, so a kill at any moment leaves a usable checkpoint behind.
- ``state_rank<r>.pth`` (multi-process runs): what is particular to rank r > 0, its image pools
  and RNG states, so that a resumed DDP run continues exactly too. It counts only when its step
  and world size match ``state.pth``.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from cyclegan_convert.atomic import atomic_torch_save
from cyclegan_convert.errors import UsageError, first_line

STATE_FILE = "state.pth"
STATE_VERSION = 1
NET_NAMES = ("G_A", "G_B", "D_A", "D_B")


def plain_state_dict(net: nn.Module) -> dict[str, torch.Tensor]:
    """CPU, contiguous (not channels_last), detached copies: what any loader expects."""
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in net.state_dict().items()}


def net_path(folder: Path, label: str, net: str) -> Path:
    return Path(folder) / f"{label}_net_{net}.pth"


def save_nets(folder: Path, nets: dict[str, nn.Module], label: str) -> dict[str, Path]:
    """``<label>_net_<name>.pth`` for each network; label is ``latest`` or an epoch number."""
    out = {}
    for name in NET_NAMES:
        path = net_path(folder, label, name)
        atomic_torch_save(plain_state_dict(nets[name]), path)
        out[name] = path
    return out


def rng_states() -> dict[str, Any]:
    states: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    py = states["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    cuda = states.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def save_state(folder: Path, model_state: dict[str, Any], config: dict[str, Any], *, epoch: int,
               epoch_step: int, step: int, wall_time: float, extra: Optional[dict[str, Any]] = None) -> Path:
    """``epoch`` (1-based) and ``epoch_step`` say where training continues; ``step`` counts all steps."""
    state = {
        "version": STATE_VERSION,
        "config": config,
        "model": model_state,
        "epoch": epoch,
        "epoch_step": epoch_step,
        "step": step,
        "wall_time": wall_time,
        "rng": rng_states(),
        "extra": extra or {},
    }
    path = Path(folder) / STATE_FILE
    atomic_torch_save(state, path)
    return path


def rank_file(folder: Path, rank: int) -> Path:
    return Path(folder) / f"state_rank{rank}.pth"


def save_rank_state(folder: Path, rank: int, world: int, step: int, pools: dict[str, Any]) -> Path:
    path = rank_file(folder, rank)
    atomic_torch_save({"version": STATE_VERSION, "step": step, "world": world, "pools": pools,
                       "rng": rng_states()}, path)
    return path


def load_rank_state(folder: Path, rank: int, world: int, step: int) -> Optional[dict[str, Any]]:
    """Rank ``rank``'s own state saved at ``step`` with ``world`` processes, or None (missing, torn,
    from another save or another world size)."""
    try:
        state = torch.load(rank_file(folder, rank), map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001  (missing or torn: the caller falls back and says so)
        return None
    if (not isinstance(state, dict) or state.get("version") != STATE_VERSION or state.get("step") != step
            or state.get("world") != world):
        return None
    return state


def load_state(folder: Path) -> dict[str, Any]:
    """The full state of a run; a clear error when there is none or it is unreadable."""
    path = Path(folder) / STATE_FILE
    if not path.is_file():
        raise UsageError(f"{path}: no checkpoint to resume from (train without --resume to start)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated or foreign file
        first = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise UsageError(f"{path}: unreadable checkpoint ({first}); resume from another copy") from None
    version = state.get("version") if isinstance(state, dict) else None
    if version != STATE_VERSION:
        raise UsageError(f"{path}: not a ccv training checkpoint of this version ({version})")
    return state


def init_net_paths(folder: Path) -> dict[str, Path]:
    """The four ``latest_net_*.pth`` that ``--init-from`` starts from; a clear error when one is missing."""
    paths = {name: net_path(folder, "latest", name) for name in NET_NAMES}
    for path in paths.values():
        if not path.is_file():
            raise UsageError(f"--init-from {folder}: no {path.name} there (give a training run's folder)")
    return paths


def load_init_nets(folder: Path, nets: dict[str, nn.Module]) -> None:
    """Start the four networks from another run's ``latest_net_*.pth`` (a ccv run folder or the
    original implementation's): fine-tuning. Only the weights come over; optimizers, schedule and
    pools start fresh. A generator trained with nearest resize-convolutions may start a bilinear one
    (and back): the convolutions are the same shapes, only their names say which resize they follow."""
    from cyclegan_convert.networks import ResizeConv
    from cyclegan_convert.weights import with_notch_of

    for name, path in init_net_paths(folder).items():
        try:
            sd = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # truncated or foreign file
            raise UsageError(f"{path}: unreadable ({first_line(e)})") from None
        net = nets[name]
        if name.startswith("G"):
            from cyclegan_convert.weights import infer_arch

            src, this = infer_arch(sd, str(path)).upsample, net.upsample
            if src != this and {src, this} != {"resize", "bilinear"}:
                raise UsageError(f"--init-from {path}: a {src} generator cannot start a --upsample {this} run "
                                 f"(use --upsample {src}; resize and bilinear may start each other)")
        if name.startswith("D"):
            sd = _fit_scales(sd, net)
        sd = with_notch_of(sd, net)  # this run's notch (or none), whatever the other run had
        for prefix, module in net.named_modules():
            if isinstance(module, ResizeConv):  # take the other resize's convolution under this one's name
                for other in ResizeConv.CONV_NAMES.values():
                    for p in ("weight", "bias"):
                        if f"{prefix}.{other}.{p}" in sd and other != module.conv_name:
                            sd[f"{prefix}.{module.conv_name}.{p}"] = sd.pop(f"{prefix}.{other}.{p}")
        try:
            net.load_state_dict(sd)
        except RuntimeError as e:  # its first line only says "Error(s) in loading state_dict"
            detail = (str(e).splitlines()[1:2] or [str(e)])[0].strip()[:200]
            raise UsageError(f"--init-from {path}: does not fit this run's {name} ({detail}); "
                             "give the same --ngf/--ndf/--blocks as that run") from None


def _fit_scales(sd: dict[str, torch.Tensor], net: nn.Module) -> dict[str, torch.Tensor]:
    """A discriminator's weights fitted to this run's number of scales (``--d-scales``): a single
    PatchGAN (the original's, or a run with one scale) starts scale 0 of a multi-scale one, whose
    coarser scales keep their fresh weights; scale 0 of a multi-scale run starts a single one."""
    from cyclegan_convert.networks import MultiScaleDiscriminator

    multi = any(k.startswith("scales.") for k in sd)
    if isinstance(net, MultiScaleDiscriminator):
        if not multi:
            sd = {f"scales.0.{k}": v for k, v in sd.items()}
        own = net.state_dict()
        return {**own, **{k: v for k, v in sd.items() if k in own}}
    if multi:
        return {k[len("scales.0."):]: v for k, v in sd.items() if k.startswith("scales.0.")}
    return sd
