"""CycleGAN: two generators, two discriminators and the original training step.

Naming as in the original: G_A maps A -> B, G_B maps B -> A; D_A judges domain B, D_B judges A.
"""
from __future__ import annotations

import contextlib
import copy
import itertools
from typing import Any, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from cyclegan_convert.errors import UsageError
from cyclegan_convert.networks import MultiScaleDiscriminator, NLayerDiscriminator, ResnetGenerator, init_weights

from .config import TrainConfig
from .pool import ImagePool

LOSS_NAMES = ("G_A", "G_B", "cycle_A", "cycle_B", "idt_A", "idt_B", "D_A", "D_B")
# Logged only by runs that use them (the original's log has the eight above).
OPTIONAL_LOSS_NAMES = ("color_A", "color_B")


Prediction = Union[torch.Tensor, list[torch.Tensor]]  # a discriminator's map, or one per scale


def gan_loss(pred: Prediction, real: bool) -> torch.Tensor:
    """LSGAN: mean squared distance to 1 (real) or 0 (fake); no sigmoid. Several scales: their mean."""
    if isinstance(pred, list):
        return sum(gan_loss(p, real) for p in pred) / len(pred)
    return F.mse_loss(pred, torch.ones_like(pred) if real else torch.zeros_like(pred))


def split_batch(pred: Prediction, n: int) -> tuple[Prediction, Prediction]:
    """The predictions for the first ``n`` images of a batch and for the rest, per scale."""
    if isinstance(pred, list):
        firsts, rests = zip(*(p.split(n) for p in pred))
        return list(firsts), list(rests)
    first, rest = pred.split(n)
    return first, rest


def discriminator(c: TrainConfig) -> nn.Module:
    """The original's PatchGAN, or one per scale with ``d_scales`` above 1."""
    if c.d_scales == 1:
        return NLayerDiscriminator(ndf=c.ndf)
    coarsest = c.crop_size >> (c.d_scales - 1)
    if coarsest < 32:  # a 70x70 PatchGAN's last layers need a map of at least 2x2
        raise UsageError(f"--d-scales {c.d_scales}: the coarsest discriminator would judge {coarsest} px images, "
                         f"it needs 32 (use --crop-size {32 << (c.d_scales - 1)} or more, or fewer scales)")
    return MultiScaleDiscriminator(ndf=c.ndf, scales=c.d_scales)


def lattice_energy(x: torch.Tensor, periods: tuple[int, ...] = (2, 4)) -> torch.Tensor:
    """Energy of the pattern that repeats every 2 and 4 pixels on the generator's own pixel grid:
    the mean p x p tile of the image (its lattice-periodic part) minus that tile's mean, squared.
    Natural images and paintings have next to none; a grid-locked grain is exactly this."""
    total = x.new_zeros((), dtype=torch.float32)
    n, c, h, w = x.shape
    for p in periods:
        hh, ww = h - h % p, w - w % p
        tile = x[..., :hh, :ww].float().reshape(n, c, hh // p, p, ww // p, p).mean(dim=(2, 4))
        total = total + (tile - tile.mean(dim=(2, 3), keepdim=True)).pow(2).mean()
    return total


# ITU-R BT.601 luma weights: chroma is what is left of each of B and R after luma.
_LUMA = (0.299, 0.587, 0.114)


def low_chroma(x: torch.Tensor, cell: int) -> torch.Tensor:
    """N x 3 x H x W in [-1, 1] -> N x 2 x H/cell x W/cell: the blue and red difference chroma
    (YCbCr's Cb and Cr, unscaled) averaged over cell x cell squares. Texture, strokes and luminance
    leave it alone; a hue swap (orange sand turned blue-grey) or a colour blob changes it."""
    x = x.float()
    y = _LUMA[0] * x[:, 0:1] + _LUMA[1] * x[:, 1:2] + _LUMA[2] * x[:, 2:3]
    chroma = torch.cat([x[:, 2:3] - y, x[:, 0:1] - y], dim=1)
    return F.avg_pool2d(chroma, cell, ceil_mode=True)


def color_loss(fake: torch.Tensor, real: torch.Tensor, cell: int) -> torch.Tensor:
    """L1 between the input's and the translation's low-frequency chroma (after Ignatov et al. 2017,
    DPED, who compare blurred images; here chroma only, so the luminance, where the painting's light
    and strokes live, stays free)."""
    return F.l1_loss(low_chroma(fake, cell), low_chroma(real, cell))


class CycleGAN:
    """The four networks, both optimizers, both image pools and one ``train_step``.

    ``amp`` is fp16 autocast with a GradScaler on CUDA and bf16 autocast on the CPU (bf16 has fp32's
    range: no scaler); with it off the autocast context and the scaler are no-ops, so there is one
    code path. ``channels_last`` defaults to on for CUDA
    (tensor cores want NHWC) and off on the CPU (measured slower there before InstanceNorm took
    group_norm's channels_last kernel for inference; not re-measured for training); tests set it to
    compare both.
    ``distributed`` wraps the networks in DistributedDataParallel (the process group must exist).
    With ``g_average`` the generators' moving averages (``averages``) follow each generator step and
    are what ``saved_nets`` gives to be saved.
    """

    def __init__(self, config: TrainConfig, device: Union[str, torch.device] = "cpu", amp: bool = False,
                 distributed: bool = False, rank: int = 0, channels_last: Optional[bool] = None):
        self.config = c = config
        self.device = torch.device(device)
        cuda = self.device.type == "cuda"
        self.amp = amp
        self.amp_dtype = torch.float16 if cuda else torch.bfloat16
        nhwc = cuda if channels_last is None else channels_last
        self.memory_format = torch.channels_last if nhwc else torch.contiguous_format

        torch.manual_seed(c.seed)  # same seed, same initial weights on every rank
        notch = c.generator_notch
        self.G_A = init_weights(ResnetGenerator(ngf=c.ngf, n_blocks=c.n_blocks, upsample=c.upsample, notch=notch),
                                c.init_gain)
        self.G_B = init_weights(ResnetGenerator(ngf=c.ngf, n_blocks=c.n_blocks, upsample=c.upsample, notch=notch),
                                c.init_gain)
        self.D_A = init_weights(discriminator(c), c.init_gain)
        self.D_B = init_weights(discriminator(c), c.init_gain)
        for net in self.nets.values():
            net.to(self.device, memory_format=self.memory_format).train()
        self.start_averages()

        # Fused Adam is one kernel per step on CUDA; the update is the same Adam.
        extra: dict[str, Any] = {"fused": True} if cuda else {}
        self.opt_G = torch.optim.Adam(itertools.chain(self.G_A.parameters(), self.G_B.parameters()),
                                      lr=c.lr, betas=(c.beta1, c.beta2), **extra)
        self.opt_D = torch.optim.Adam(itertools.chain(self.D_A.parameters(), self.D_B.parameters()),
                                      lr=c.lr, betas=(c.beta1, c.beta2), **extra)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp and cuda)
        self.pool_fake_A = ImagePool(c.pool_size, seed=c.seed * 2 + 1 + 1000 * rank)  # for D_B
        self.pool_fake_B = ImagePool(c.pool_size, seed=c.seed * 2 + 2 + 1000 * rank)  # for D_A

        # What the step calls: DDP wrappers when distributed, where gradients are averaged across
        # ranks. In the generator step the discriminators are frozen and called unwrapped: a DDP
        # module run forward without its parameters getting gradients would wait for them forever.
        self._G_A, self._G_B, self._D_A, self._D_B = self.G_A, self.G_B, self.D_A, self.D_B
        if distributed:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if cuda else None
            self._G_A, self._G_B, self._D_A, self._D_B = (
                DDP(n, device_ids=ids) for n in (self.G_A, self.G_B, self.D_A, self.D_B))

    @property
    def nets(self) -> dict[str, nn.Module]:
        """The four networks being trained."""
        return {"G_A": self.G_A, "G_B": self.G_B, "D_A": self.D_A, "D_B": self.D_B}

    @property
    def saved_nets(self) -> dict[str, nn.Module]:
        """What the run saves as its networks (latest_net_*, samples, the model store): the trained
        ones, with the generators' moving averages in their place when ``g_average`` is on."""
        return {**self.nets, **self.averages}

    def start_averages(self) -> None:
        """(Re)start the generators' weight averages at their current weights (after --init-from too).

        Why average: GAN generators oscillate around a good solution, and one save can differ from
        the next by glowing blobs and grain (measured: the texture distance of saves 300 steps apart
        moved 0.71-1.29); the average of the recent weights keeps what they agree on (Yazici et al.
        2019, "The unusual effectiveness of averaging in GAN training"; Karras et al.'s G_ema)."""
        self.averages: dict[str, nn.Module] = {}
        if self.config.g_average > 0:
            for name in ("G_A", "G_B"):
                self.averages[name] = copy.deepcopy(self.nets[name]).requires_grad_(False)

    @torch.no_grad()
    def _update_averages(self) -> None:
        weight = 1.0 - self.config.g_average
        for name, avg in self.averages.items():
            params = list(self.nets[name].parameters())
            torch._foreach_lerp_(list(avg.parameters()), params, weight)

    def autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp)

    def set_lr(self, lr: float) -> None:
        for opt in (self.opt_G, self.opt_D):
            for group in opt.param_groups:
                group["lr"] = lr

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)

    def train_step(self, real_A: torch.Tensor, real_B: torch.Tensor) -> dict[str, float]:
        """One iteration of the original: generators first with both discriminators frozen, then
        the discriminators on pool-queried, detached fakes. real_A, real_B: N x 3 x H x W in [-1, 1].

        A network applied to several inputs runs once on their concatenation: InstanceNorm and
        convolutions treat each image on its own, so the results are those of separate calls, in
        fewer, larger kernel launches.
        """
        c = self.config
        real_A, real_B = self._to_device(real_A), self._to_device(real_B)
        n = real_A.shape[0]
        lambda_idt = c.lambda_identity

        # Generators. D_A and D_B are frozen: their gradients are not needed here.
        self.D_A.requires_grad_(False)
        self.D_B.requires_grad_(False)
        with self.autocast():
            if lambda_idt > 0:
                fake_B, idt_A = self._G_A(torch.cat([real_A, real_B])).split(n)   # G_A(A), G_A(B)
                fake_A, idt_B, rec_A = self._G_B(torch.cat([real_B, real_A, self._noisy(fake_B)])).split(n)  # G_B(B), G_B(A), G_B(G_A(A))
            else:
                fake_B = self._G_A(real_A)
                fake_A, rec_A = self._G_B(torch.cat([real_B, self._noisy(fake_B)])).split(n)
            rec_B = self._G_A(self._noisy(fake_A))  # G_A(G_B(B))
            loss_G_A = gan_loss(self.D_A(fake_B), True)
            loss_G_B = gan_loss(self.D_B(fake_A), True)
            loss_cycle_A = F.l1_loss(rec_A, real_A) * c.lambda_a
            loss_cycle_B = F.l1_loss(rec_B, real_B) * c.lambda_b
            if lambda_idt > 0:
                loss_idt_A = F.l1_loss(idt_A, real_B) * c.lambda_b * lambda_idt
                loss_idt_B = F.l1_loss(idt_B, real_A) * c.lambda_a * lambda_idt
            else:
                loss_idt_A = loss_idt_B = torch.zeros((), device=self.device)
            loss_G = loss_G_A + loss_G_B + loss_cycle_A + loss_cycle_B + loss_idt_A + loss_idt_B
            if c.grid_penalty > 0:
                loss_G = loss_G + c.grid_penalty * (lattice_energy(fake_B) + lattice_energy(fake_A))
            if c.color_loss > 0:
                loss_color_A = color_loss(fake_B, real_A, c.color_scale) * c.color_loss
                loss_color_B = color_loss(fake_A, real_B, c.color_scale) * c.color_loss
                loss_G = loss_G + loss_color_A + loss_color_B
        self.opt_G.zero_grad(set_to_none=True)
        self.scaler.scale(loss_G).backward()
        self.scaler.step(self.opt_G)
        self._update_averages()

        # Discriminators: real images against generated ones, some from earlier steps (the pools).
        self.D_A.requires_grad_(True)
        self.D_B.requires_grad_(True)
        pooled_B = self.pool_fake_B.query(fake_B)  # detached
        pooled_A = self.pool_fake_A.query(fake_A)
        with self.autocast():
            pred_real, pred_fake = split_batch(self._D_A(torch.cat([real_B, pooled_B])), n)
            loss_D_A = (gan_loss(pred_real, True) + gan_loss(pred_fake, False)) * 0.5
            pred_real, pred_fake = split_batch(self._D_B(torch.cat([real_A, pooled_A])), n)
            loss_D_B = (gan_loss(pred_real, True) + gan_loss(pred_fake, False)) * 0.5
        self.opt_D.zero_grad(set_to_none=True)
        # One backward for both: their parameters are disjoint, so the gradients are those of two.
        self.scaler.scale(loss_D_A + loss_D_B).backward()
        self.scaler.step(self.opt_D)
        self.scaler.update()  # once per iteration, after both optimizers stepped

        logged = [loss_G_A, loss_G_B, loss_cycle_A, loss_cycle_B, loss_idt_A, loss_idt_B, loss_D_A, loss_D_B]
        names = LOSS_NAMES
        if c.color_loss > 0:
            logged, names = logged + [loss_color_A, loss_color_B], names + OPTIONAL_LOSS_NAMES
        losses = torch.stack([v.float() for v in logged]).detach()
        return dict(zip(names, losses.tolist()))  # the step's one CPU-GPU sync

    def _noisy(self, fake: torch.Tensor) -> torch.Tensor:
        """The fake as the reconstruction sees it: with ``cycle_noise`` > 0, plus Gaussian noise, so
        that a faint high-frequency code hidden in the fake to pass the cycle loss ("CycleGAN, a
        Master of Steganography", Chu et al. 2017) drowns and stops paying; 0 is the original."""
        sigma = self.config.cycle_noise
        return fake if sigma <= 0 else fake + sigma * torch.randn_like(fake)

    @torch.no_grad()
    def translate(self, real_A: torch.Tensor, real_B: torch.Tensor) -> dict[str, torch.Tensor]:
        """fake and reconstructed images both ways, for sample grids (N x 3 x H x W, CPU, fp32)."""
        real_A, real_B = self._to_device(real_A), self._to_device(real_B)
        G_A, G_B = self.saved_nets["G_A"], self.saved_nets["G_B"]
        with self.autocast():
            fake_B = G_A(real_A)
            rec_A = G_B(fake_B)
            fake_A = G_B(real_B)
            rec_B = G_A(fake_A)
        out = {"real_A": real_A, "fake_B": fake_B, "rec_A": rec_A, "real_B": real_B, "fake_A": fake_A, "rec_B": rec_B}
        return {k: v.float().cpu().contiguous() for k, v in out.items()}

    # Full state for an exact resume (see checkpoint.py).
    def state_dict(self) -> dict[str, Any]:
        return {
            "nets": {k: net.state_dict() for k, net in self.nets.items()},
            "opt_G": self.opt_G.state_dict(),
            "opt_D": self.opt_D.state_dict(),
            "scaler": self.scaler.state_dict(),
            "averages": {k: net.state_dict() for k, net in self.averages.items()},
            **self.pool_state(),
        }

    def pool_state(self) -> dict[str, Any]:
        return {"pool_fake_A": self.pool_fake_A.state_dict(), "pool_fake_B": self.pool_fake_B.state_dict()}

    def load_pool_state(self, pools: dict[str, Any]) -> None:
        self.pool_fake_A.load_state_dict(pools["pool_fake_A"], self.device)
        self.pool_fake_B.load_state_dict(pools["pool_fake_B"], self.device)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, net in self.nets.items():
            net.load_state_dict(state["nets"][k], strict=True)
        self.opt_G.load_state_dict(state["opt_G"])
        self.opt_D.load_state_dict(state["opt_D"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        for k, net in self.averages.items():
            net.load_state_dict(state["averages"][k], strict=True)
        self.load_pool_state(state)
