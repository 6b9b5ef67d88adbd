"""Training speed: our CycleGAN step against a plain step of the original, in the same run.

    python benchmarks/train_speed.py                      # CPU, small default size (a minute or two)
    python benchmarks/train_speed.py --size 256 --ngf 64 --ndf 64 --blocks 9 --device cuda   # the real recipe

Prints iterations/s and the ratio to the reference. On CUDA it also runs our step with AMP (fp16
autocast + GradScaler) against FP32. Steps of the variants are interleaved and the median is taken,
so a machine shared with other work slows every variant alike.
"""
from __future__ import annotations

import argparse
import itertools
import random
import statistics
import time

import torch
import torch.nn.functional as F

from cyclegan_convert.networks import NLayerDiscriminator, ResnetGenerator, init_weights
from cyclegan_convert.train.config import TrainConfig
from cyclegan_convert.train.model import CycleGAN


class OriginalStep:
    """The original's optimize_parameters written plainly: one call per network application, two D
    backward passes, the ImagePool drawing from Python's global random, no AMP, no channels_last."""

    def __init__(self, ngf: int, ndf: int, blocks: int, device: torch.device, pool_size: int = 50):
        torch.manual_seed(0)
        self.G_A = init_weights(ResnetGenerator(ngf=ngf, n_blocks=blocks)).to(device)
        self.G_B = init_weights(ResnetGenerator(ngf=ngf, n_blocks=blocks)).to(device)
        self.D_A = init_weights(NLayerDiscriminator(ndf=ndf)).to(device)
        self.D_B = init_weights(NLayerDiscriminator(ndf=ndf)).to(device)
        self.opt_G = torch.optim.Adam(itertools.chain(self.G_A.parameters(), self.G_B.parameters()), 2e-4, (0.5, 0.999))
        self.opt_D = torch.optim.Adam(itertools.chain(self.D_A.parameters(), self.D_B.parameters()), 2e-4, (0.5, 0.999))
        self.pools = {"A": [], "B": []}
        self.pool_size = pool_size

    def query(self, which: str, images: torch.Tensor) -> torch.Tensor:
        pool, out = self.pools[which], []
        for image in images:
            image = torch.unsqueeze(image.data, 0)
            if len(pool) < self.pool_size:
                pool.append(image)
                out.append(image)
            elif random.uniform(0, 1) > 0.5:
                i = random.randint(0, self.pool_size - 1)
                out.append(pool[i].clone())
                pool[i] = image
            else:
                out.append(image)
        return torch.cat(out, 0)

    @staticmethod
    def gan(pred: torch.Tensor, real: bool) -> torch.Tensor:
        return F.mse_loss(pred, torch.full_like(pred, 1.0 if real else 0.0))

    def step(self, real_A: torch.Tensor, real_B: torch.Tensor) -> None:
        fake_B = self.G_A(real_A)
        rec_A = self.G_B(fake_B)
        fake_A = self.G_B(real_B)
        rec_B = self.G_A(fake_A)
        for p in itertools.chain(self.D_A.parameters(), self.D_B.parameters()):
            p.requires_grad = False
        self.opt_G.zero_grad()
        loss_idt_A = F.l1_loss(self.G_A(real_B), real_B) * 10 * 0.5
        loss_idt_B = F.l1_loss(self.G_B(real_A), real_A) * 10 * 0.5
        loss_G = (self.gan(self.D_A(fake_B), True) + self.gan(self.D_B(fake_A), True)
                  + F.l1_loss(rec_A, real_A) * 10 + F.l1_loss(rec_B, real_B) * 10 + loss_idt_A + loss_idt_B)
        loss_G.backward()
        self.opt_G.step()
        for p in itertools.chain(self.D_A.parameters(), self.D_B.parameters()):
            p.requires_grad = True
        self.opt_D.zero_grad()
        for D, real, fake in ((self.D_A, real_B, self.query("B", fake_B)), (self.D_B, real_A, self.query("A", fake_A))):
            loss_D = (self.gan(D(real), True) + self.gan(D(fake.detach()), False)) * 0.5
            loss_D.backward()
        self.opt_D.step()
        # the original reads its losses once per print_freq steps: no per-step sync to count here


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64, help="crop size in pixels")
    ap.add_argument("--ngf", type=int, default=16)
    ap.add_argument("--blocks", type=int, default=3)
    ap.add_argument("--ndf", type=int, default=32)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--steps", type=int, default=10, help="timed steps per variant")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True

    config = TrainConfig(ngf=args.ngf, ndf=args.ndf, n_blocks=args.blocks, batch_size=args.batch)
    variants: dict[str, callable] = {"original step (reference), fp32": OriginalStep(args.ngf, args.ndf, args.blocks, device).step}
    ours = CycleGAN(config, device, amp=False)
    variants["ccv train_step, fp32" + (" + channels_last" if cuda else "")] = ours.train_step
    if cuda:
        variants["ccv train_step, AMP fp16 + channels_last"] = CycleGAN(config, device, amp=True).train_step

    g = torch.Generator().manual_seed(0)
    batches = [(torch.rand(args.batch, 3, args.size, args.size, generator=g) * 2 - 1,
                torch.rand(args.batch, 3, args.size, args.size, generator=g) * 2 - 1) for _ in range(4)]
    dev_batches = [(a.to(device), b.to(device)) for a, b in batches]

    def timed(fn, i: int) -> float:
        a, b = dev_batches[i % len(dev_batches)]
        if cuda:
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn(a, b)
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - t

    for i in range(args.warmup):
        for fn in variants.values():
            timed(fn, i)
    times: dict[str, list[float]] = {k: [] for k in variants}
    for i in range(args.steps):  # interleaved: load from other processes hits every variant alike
        for name, fn in variants.items():
            times[name].append(timed(fn, i))

    where = torch.cuda.get_device_name(device) if cuda else f"CPU, {torch.get_num_threads()} threads"
    print(f"train step, {args.size}x{args.size}, batch {args.batch}, ngf {args.ngf}, {args.blocks} blocks, "
          f"ndf {args.ndf}; {where}; torch {torch.__version__}; median of {args.steps} steps")
    ref = statistics.median(next(iter(times.values())))
    print(f"{'variant':45} {'s/step':>8} {'it/s':>8} {'ratio':>7}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:45} {med:8.3f} {1 / med:8.2f} {ref / med:6.2f}x")


if __name__ == "__main__":
    main()
