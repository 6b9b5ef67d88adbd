"""Loading generator weights: ours or the original implementation's, checked before use.

Files are plain state_dicts loaded with ``weights_only=True``: pickled code is never executed.
"""
from __future__ import annotations

import hashlib
import pickle
import re
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping, Optional, Union

import torch

from .errors import NotAGeneratorError
from .networks import ResnetGenerator

_LEGACY_NORM_KEYS = ("running_mean", "running_var", "num_batches_tracked")
_UNSUPPORTED_GLOBAL = re.compile(r"\bGLOBAL ([\w.]+)")
_BLOCK_KEY = re.compile(r"^model\.(\d+)\.conv_block\.(\d+)\.weight$")


@dataclass(frozen=True)
class GeneratorArch:
    """What a generator state_dict says about its architecture."""

    input_nc: int
    output_nc: int
    ngf: int
    n_blocks: int
    use_dropout: bool
    upsample: str = "transpose"
    notch: Optional[tuple[int, float]] = None  # networks.LatticeNotch's (period, sigma)

    @property
    def name(self) -> str:
        return (f"resnet_{self.n_blocks}blocks" + ("" if self.upsample == "transpose" else f"_{self.upsample}")
                + ("" if self.notch is None else "_notch"))

    def build(self) -> ResnetGenerator:
        return ResnetGenerator(self.input_nc, self.output_nc, self.ngf, self.n_blocks, self.use_dropout,
                               self.upsample, self.notch)


def sha256_file(path: Union[str, Path]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_state_dict(path: Union[str, Path]) -> dict[str, torch.Tensor]:
    """Reads a weights file without executing pickled code; a clear error for anything else."""
    path = Path(path)
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols of files it then refuses
            warnings.simplefilter("ignore", UserWarning)
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise NotAGeneratorError(f"{path}: no such file") from None
    except pickle.UnpicklingError as e:
        # torch's message advises weights_only=False, the one thing never to do with a stranger's file
        # "[Unsupported] GLOBAL x.Y" names a pickled object; any other refusal (an unknown
        # opcode: a text file, numpy's .npy) is a file that is not a torch pickle at all.
        glob = _UNSUPPORTED_GLOBAL.search(str(e))
        reason = (f"it holds pickled Python objects ({glob.group(1)}), not only tensors; they are never loaded"
                  if glob else "not written by torch.save, or damaged")
        raise NotAGeneratorError(f"{path}: not a PyTorch weights file ({reason})") from None
    except Exception:  # truncated zip, not a torch file at all: torch's errors say little (KeyError: '101')
        raise NotAGeneratorError(f"{path}: not a PyTorch weights file (not written by torch.save, "
                                 "or damaged)") from None
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if isinstance(obj, Mapping) and {"model", "config", "step"} <= set(obj) and isinstance(obj["model"], Mapping):
        raise NotAGeneratorError(f"{path}: a `ccv train` state (all four networks and the optimizers), not a "
                                 f"generator: use latest_net_G_A.pth (A -> B) or latest_net_G_B.pth (B -> A) "
                                 f"next to it")
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise NotAGeneratorError(f"{path}: not a state_dict of tensors")
    return dict(obj)


def clean_state_dict(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drops legacy InstanceNorm buffers and DataParallel / torch.compile prefixes."""
    out = {}
    for k, v in sd.items():
        for prefix in ("module.", "_orig_mod."):
            if k.startswith(prefix):
                k = k[len(prefix):]
        if k.rsplit(".", 1)[-1] in _LEGACY_NORM_KEYS:
            continue
        out[k] = v
    return out


def infer_arch(sd: Mapping[str, torch.Tensor], where: str = "weights") -> GeneratorArch:
    """Reads the architecture off the keys and shapes; refuses discriminators, U-Nets and the like."""
    first = sd.get("model.1.weight")
    if first is None or first.ndim != 4 or tuple(first.shape[2:]) != (7, 7):
        hint = ""
        if "model.11.weight" in sd and "model.1.weight" not in sd:
            hint = " (it looks like a PatchGAN discriminator)"
        elif any(k.startswith("model.model.") for k in sd):
            hint = " (it looks like a pix2pix U-Net generator)"
        raise NotAGeneratorError(f"{where}: not a CycleGAN ResNet generator{hint}")
    ngf, input_nc = int(first.shape[0]), int(first.shape[1])
    blocks = sorted({int(m.group(1)) for k in sd if (m := _BLOCK_KEY.match(k))})
    dropout = any(int(m.group(2)) == 6 for k in sd if (m := _BLOCK_KEY.match(k)))
    n_blocks = len(blocks)
    if n_blocks == 0 or blocks != list(range(10, 10 + n_blocks)):
        raise NotAGeneratorError(f"{where}: not a CycleGAN ResNet generator (no residual blocks)")
    last = sd.get(f"model.{10 + n_blocks + 6 + 1}.weight")
    output_nc = int(last.shape[0]) if last is not None else 3
    up = f"model.{10 + n_blocks}"
    upsample = ("resize" if f"{up}.conv.weight" in sd else "bilinear" if f"{up}.bilinear_conv.weight" in sd
                else "transpose")
    cfg = sd.get(f"model.{10 + n_blocks + 6 + 3}.notch")
    notch = None
    if cfg is not None:
        period, sigma = (float(v) for v in cfg.float().flatten()) if cfg.numel() == 2 else (0.0, 0.0)
        if period not in (2.0, 4.0, 8.0) or not 0 < sigma <= 256:  # also NaN
            raise NotAGeneratorError(f"{where}: its lattice notch ({cfg.tolist()}) is not one ccv makes "
                                     "(period 2, 4 or 8; sigma above 0, at most 256 px)")
        notch = (int(period), sigma)
    return GeneratorArch(input_nc, output_nc, ngf, n_blocks, dropout, upsample, notch)


def with_notch_of(sd: Mapping[str, torch.Tensor], net: torch.nn.Module) -> dict[str, torch.Tensor]:
    """``sd`` with ``net``'s lattice notch buffer in place of its own (or with none, where ``net`` has
    none): the notch has no weights, so weights moving into a network keep that network's filter."""
    mine = net.state_dict()
    return {**{k: v for k, v in sd.items() if not k.endswith(".notch")},
            **{k: v for k, v in mine.items() if k.endswith(".notch")}}


def notched(sd: Mapping[str, torch.Tensor], sigma: float, where: str = "weights") -> dict[str, torch.Tensor]:
    """``sd`` as the state_dict of the same generator with a ``LatticeNotch`` (period 4, ``sigma``
    px) after its tanh, in place of any it had: how a training snapshot is bundled
    (``train.bundle --notch``) and measured as it would be (``benchmarks/model_quality.py --notch``).
    Legacy buffers and wrapper prefixes are dropped first, as ``load_generator`` drops them."""
    sd = clean_state_dict(sd)
    arch = replace(infer_arch(sd, where), notch=(4, float(sigma)))
    net = arch.build()
    net.load_state_dict(with_notch_of(sd, net))
    return net.state_dict()


def load_generator(source: Union[str, Path, Mapping[str, torch.Tensor]], device: Union[str, torch.device] = "cpu"
                   ) -> ResnetGenerator:
    """A generator from a file (ours or the original's) or a state_dict, in eval mode.

    Keys must match exactly once legacy buffers are dropped: a partial match is a wrong file.
    """
    where = str(source) if isinstance(source, (str, Path)) else "state_dict"
    sd = read_state_dict(source) if isinstance(source, (str, Path)) else dict(source)
    sd = clean_state_dict(sd)
    arch = infer_arch(sd, where)
    net = arch.build()
    try:
        net.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        raise NotAGeneratorError(f"{where}: generator keys or shapes do not match "
                                 f"({str(e).splitlines()[0][:160]})") from None
    return net.to(device).eval().requires_grad_(False)
