"""What defines a training run (saved in every checkpoint) and what only steers one invocation.

``TrainConfig`` holds the recipe: change any of it and the run is a different run, so a resumed
run takes it from the checkpoint. ``RunOptions`` may change between invocations of the same run.
Defaults are the original implementation's CycleGAN settings.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Optional


@dataclass(frozen=True)
class TrainConfig:
    # data
    dir_a: str = ""               # folder of domain A images (read recursively)
    dir_b: str = ""               # folder of domain B images
    a_name: str = "A"             # domain names: G_A is registered as `--to b_name`, G_B as `--to a_name`
    b_name: str = "B"
    load_size: int = 286          # resize both sides to this (bicubic), as the original's resize_and_crop
    crop_size: int = 256          # then a random crop of this size
    flip: bool = True             # random horizontal flip
    zoom_b: float = 1.0           # B images enlarged by up to this (log-uniform) before the crop (ccv's; 1: none)
    # networks
    ngf: int = 64                 # generator width
    ndf: int = 64                 # discriminator width
    n_blocks: int = 9             # residual blocks: 9 (resnet_9blocks) or 6
    upsample: str = "transpose"   # generator upsampling: transpose (the original), resize or bilinear (ccv's)
    notch: float = 0.0            # sigma (px) of a LatticeNotch after the generators' tanh (ccv's; 0: none)
    d_scales: int = 1             # discriminators per domain, at 1, 1/2, 1/4 ... of the image (ccv's; 1: the original)
    init_gain: float = 0.02       # weights N(0, gain), biases 0
    # optimisation
    batch_size: int = 1           # per process
    lr: float = 2e-4              # Adam, one optimizer for both Gs and one for both Ds
    beta1: float = 0.5
    beta2: float = 0.999
    n_epochs: int = 100           # epochs at the full learning rate
    n_epochs_decay: int = 100     # epochs of linear decay towards zero
    # losses
    lambda_a: float = 10.0        # cycle A -> B -> A
    lambda_b: float = 10.0        # cycle B -> A -> B
    lambda_identity: float = 0.5  # identity loss, as a fraction of lambda_a / lambda_b (0 disables it)
    pool_size: int = 50           # ImagePool of generated images for the discriminators (0 disables it)
    cycle_noise: float = 0.0      # std of Gaussian noise on fakes before the reconstruction (ccv's; 0: the original)
    grid_penalty: float = 0.0     # weight of the fakes' 2/4-pixel lattice energy in the generator loss (ccv's)
    color_loss: float = 0.0       # weight of an L1 loss between input and fake chroma blurred to color_scale (ccv's)
    color_scale: int = 16         # the cell (px) the colour loss averages over: colour layout, not texture
    g_average: float = 0.0        # decay of an exponential moving average of the generators' weights, which
                                  # is what the run saves as its generators (ccv's; 0: none, the original)
    seed: int = 0                 # weights init, data order, augmentation and pool choices
    init_from: str = ""           # a run folder whose latest_net_*.pth start the networks (fine-tuning)

    @property
    def total_epochs(self) -> int:
        return self.n_epochs + self.n_epochs_decay

    @property
    def generator_notch(self) -> Optional[tuple[int, float]]:
        """The generators' ``LatticeNotch`` (period, sigma), or None."""
        return (4, self.notch) if self.notch else None

    @property
    def arch(self) -> str:
        from cyclegan_convert.weights import GeneratorArch  # the one naming of architectures

        return GeneratorArch(3, 3, self.ngf, self.n_blocks, False, self.upsample, self.generator_notch).name

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def with_(self, **changes: Any) -> "TrainConfig":
        return replace(self, **changes)


@dataclass(frozen=True)
class RunOptions:
    name: str = "cyclegan"                 # checkpoints go to <checkpoints_dir>/<name>/
    checkpoints_dir: str = "checkpoints"
    device: str = "auto"                   # auto, cpu, cuda (cuda without a GPU is an error)
    amp: Optional[bool] = None             # mixed precision: fp16 + GradScaler on CUDA, bf16 on the CPU;
                                           # None: on for CUDA, off for the CPU
    workers: int = 2                       # data loading processes (0: in the main process)
    max_steps: Optional[int] = None        # stop after this many steps in total (resumed runs included)
    max_time: Optional[float] = None       # stop after this many seconds of this invocation
    save_every: int = 1000                 # steps between saves of latest_* and the full state
    save_epoch_every: int = 5              # epochs between <epoch>_net_*.pth saves (the last epoch always)
    sample_every: Optional[int] = None     # steps between sample grids; default: at each save
    register: bool = True                  # put both generators in the model store at each save
    log_format: Optional[str] = None       # the loss log: jsonl or csv; None: jsonl, or the resumed run's
