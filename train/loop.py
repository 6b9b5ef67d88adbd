"""The training loop behind `ccv train`. ``train`` reads top to bottom in phases (setup, data, model,
resume, outputs, loop, finish); the helpers below it come in the same order.

Progress goes to callbacks (``on_progress`` per step, ``on_message`` for one-off notes); nothing
here draws on the terminal. Under ``torchrun`` every process trains its share of each epoch through
DistributedDataParallel and rank 0 alone logs, saves and registers (the other ranks save only their
own image pools and RNG states, for an exact resume).
"""
from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import torch

from cyclegan_convert.atomic import ensure_writable_folder
from cyclegan_convert.backends.device import DeviceSpec
from cyclegan_convert.errors import BackendUnavailableError, UsageError, first_line

from . import checkpoint
from .config import RunOptions, TrainConfig
from .data import UnpairedDataset, make_loader, rank_positions, scan_domain
from .losslog import LossLog, log_path
from .model import LOSS_NAMES, CycleGAN
from .publish import check_domain_names, check_store_free, register_generators
from .samples import save_grid
from .schedule import lr_at

@dataclass(frozen=True)
class Progress:
    step: int            # steps done, resumed ones included
    total_steps: int     # where this invocation will stop at the latest (--max-steps or the last epoch)
    epoch: int           # 1-based
    total_epochs: int
    lr: float
    losses: dict[str, float]
    elapsed: float       # seconds in this invocation's loop


@dataclass
class TrainResult:
    folder: Path
    step: int
    epoch: float         # epochs done, fractional
    stopped: str         # finished, max_steps, max_time, interrupted
    losses: dict[str, float]
    registered: list[str] = field(default_factory=list)
    wall_time: float = 0.0

    @property
    def interrupted(self) -> bool:
        return self.stopped == "interrupted"


def train(config: Optional[TrainConfig], options: RunOptions, *, resume: bool = False,
          on_progress: Optional[Callable[[Progress], None]] = None,
          on_message: Optional[Callable[[str], None]] = None) -> TrainResult:
    """Trains (or resumes) the run ``options.name``; returns where it stopped and why.

    ``config`` may be None with ``resume``: the checkpoint's is used.
    """
    # -- setup: processes, device, the recipe, and every check that needs no data
    dist = _dist_from_env()
    device = pick_device(options.device, dist)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick the fastest kernels
    if dist.enabled and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    folder = Path(options.checkpoints_dir) / options.name
    state_stamp = _stamp(folder / checkpoint.STATE_FILE)  # what was resumed from (see _RunLock)
    state = checkpoint.load_state(folder) if resume else None
    config = _checked_recipe(config, state, options, folder, dist)
    run = _Run(config, options, folder, dist, device, say=(on_message or _silent) if dist.main else _silent)

    # -- data: everything that can be wrong with it is found before the model is built
    data = _Data.scan(run, resumed=state is not None)

    # -- model and optimizers
    amp = options.amp if options.amp is not None else device.type == "cuda"
    model = CycleGAN(config, device, amp=amp, distributed=dist.enabled, rank=dist.rank)

    # -- resume: the networks, optimizers, pools, RNG states and position all come from the checkpoint
    at, wall_before = _resume(run, state, model, data) if state is not None else (_Position(), 0.0)
    if state is None and config.init_from:
        checkpoint.load_init_nets(Path(config.init_from), model.nets)
        model.start_averages()
        run.say(f"networks start from {config.init_from} (fine-tuning: optimizers and schedule start fresh)")
    run.say(_device_line(device, model.amp))
    _make_run_folder(folder)  # only now: a refused --init-from leaves nothing behind

    # -- outputs: from here on this process writes into the run folder (rank 0 under the run lock)
    out = _Outputs(run, model, data, at, resumed=state is not None, state_stamp=state_stamp,
                   wall_before=wall_before, on_progress=on_progress)

    # -- loop: a step per batch, saves on the way, until the last epoch ends or a stop reason comes
    stopped = "max_steps" if options.max_steps is not None and at.step >= options.max_steps else "finished"
    if state is not None and at.epoch > config.total_epochs:
        run.say(f"this run already finished all {config.total_epochs} epochs at step {at.step}: nothing to train "
                "(for more epochs, start a new run with another --name)")
    elif state is not None and stopped == "max_steps":
        run.say(f"this run is already at step {at.step}, --max-steps {options.max_steps}: nothing to train (raise "
                "--max-steps to continue)")
    try:
        with _deferred_interrupt() as interrupt:
            while at.epoch <= config.total_epochs and stopped == "finished":
                lr = lr_at(at.epoch, config.lr, config.n_epochs, config.n_epochs_decay)
                model.set_lr(lr)
                try:
                    for real_A, real_B, bad in data.loader(at, options.workers, pin_memory=device.type == "cuda"):
                        out.report_skipped(bad)
                        losses = model.train_step(real_A, real_B)
                        at.advance()
                        elapsed = out.elapsed()
                        out.record(at, lr, losses, elapsed)
                        if at.epoch_step == data.steps_per_epoch and (at.epoch % options.save_epoch_every == 0
                                                                      or at.epoch == config.total_epochs):
                            out.save(at, epoch_label=at.epoch)
                        if at.step % options.save_every == 0:
                            out.save(at)
                        elif options.sample_every and at.step % options.sample_every == 0:
                            out.sample(at.step)
                        stopped = _stop_reason(at.step, options, elapsed, interrupt, dist, device)
                        if stopped != "finished":
                            break
                except (RuntimeError, ConnectionError, EOFError) as e:
                    # a loading worker ended by a signal (a kill of the process group at a session's
                    # end reaches the workers too): the networks are whole at the last step, so save
                    # them there instead of losing everything since the last save
                    if not _loading_worker_lost(e):
                        raise
                    run.say(f"a data loading worker was stopped ({first_line(e)}): saving at step {at.step}")
                    stopped = "interrupted"
                    break
                at.epoch, at.epoch_step = at.continues_at(data.steps_per_epoch)
            out.save(at)  # latest_* and the state where we stopped (nothing new if this step was saved)
    finally:
        out.close()
        if dist.enabled:
            torch.distributed.barrier()
            torch.distributed.destroy_process_group()

    # -- finish: where it stopped and why
    return TrainResult(folder, at.step, at.epochs_done(data.steps_per_epoch), stopped, out.mean_losses(),
                       out.registered, out.wall())


def _loading_worker_lost(e: BaseException) -> bool:
    """Whether ``e`` says a data loading worker is gone: PyTorch's "DataLoader worker ... killed"
    (raised wherever the main process is when it notices), or a worker killed while it handed over
    a batch (the main process's receive of the batch's shared memory fails: "Connection reset by
    peer", seen under load)."""
    if isinstance(e, RuntimeError):
        return "DataLoader worker" in str(e)
    return any(f"torch{os.sep}utils{os.sep}data" in frame.filename or f"torch{os.sep}multiprocessing" in frame.filename
               for frame in traceback.extract_tb(e.__traceback__))


# ---- setup

@dataclass(frozen=True)
class _Dist:
    rank: int = 0
    local_rank: int = 0
    world: int = 1

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def _dist_from_env() -> _Dist:
    """torchrun sets WORLD_SIZE, RANK and LOCAL_RANK."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return _Dist(int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0")), world)


def pick_device(name: str, dist: _Dist) -> torch.device:
    name = str(DeviceSpec.parse(name))  # the one parser of --device (convert, video and export use it too)
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        if name == "auto":
            return torch.device("cpu")
        raise BackendUnavailableError(f"--device {name}: no CUDA GPU is usable here (torch {torch.__version__}); "
                                      "use --device cpu or install a CUDA build of PyTorch")
    if name.startswith("cuda:"):
        return torch.device(name)
    return torch.device("cuda", dist.local_rank if dist.enabled else torch.cuda.current_device())


def _silent(_: str) -> None:
    """``say`` of the ranks other than 0: one process reports."""


@dataclass(frozen=True)
class _Run:
    """What this invocation trains and where: the same from setup to finish."""
    config: TrainConfig
    options: RunOptions
    folder: Path
    dist: _Dist
    device: torch.device
    say: Callable[[str], None]  # one-off notes for the user (silent on ranks other than 0)


def _checked_recipe(given: Optional[TrainConfig], state: Optional[dict[str, Any]], options: RunOptions,
                    folder: Path, dist: _Dist) -> TrainConfig:
    """The recipe to train (on resume the checkpoint's, which ``given`` may only move to other data
    folders), refused here if it cannot train or its saves would overwrite what they must not."""
    if state is None and (folder / checkpoint.STATE_FILE).exists():
        raise UsageError(f"{folder} already holds a run: add --resume to continue it, or choose another --name")
    config = given
    if state is not None:
        saved = TrainConfig.from_dict(state["config"])
        if config is None:
            config = saved
        check_resume_config(saved, config)
    if config is None:
        raise UsageError("nothing to train: give the data folders")
    check_domain_names(config)
    check_sizes(config)
    if state is None and config.init_from:
        checkpoint.init_net_paths(Path(config.init_from))  # all four there, before any data is read
    if config.total_epochs < 1:  # else step 0 would be saved and its random generators put in the store
        raise UsageError("--epochs 0 and --epochs-decay 0: nothing to train")
    if options.register and dist.main:
        check_store_free(config, folder)
    if options.save_every < 1 or options.save_epoch_every < 1:
        raise UsageError("--save-every and --save-epoch-every must be at least 1")
    return config


# Fields of the recipe that a resumed run may change: where the data lives now.
RESUME_MAY_CHANGE = ("dir_a", "dir_b")
# The `ccv train` option of each recipe field, to name in messages (fields without one keep their name).
OPTION_OF = {"n_epochs": "--epochs", "n_epochs_decay": "--epochs-decay", "n_blocks": "--blocks",
             "upsample": "--upsample", "init_from": "--init-from", "notch": "--notch",
             "flip": "--no-flip", **{k: "--" + k.replace("_", "-") for k in (
                 "a_name", "b_name", "load_size", "crop_size", "ngf", "ndf", "batch_size", "lr", "lambda_a",
                 "lambda_b", "lambda_identity", "pool_size", "seed", "cycle_noise", "grid_penalty", "color_loss",
                 "color_scale", "g_average", "d_scales", "zoom_b")}}


def check_resume_config(saved: TrainConfig, given: TrainConfig) -> None:
    """An exact resume continues the same recipe: refuse a different one instead of mixing them."""
    def value(k: str, v: object) -> str:
        return ("flips" if v else "no flip") if k == "flip" else str(v)

    def show(k: str, v: object) -> str:
        if k == "flip":
            return "--no-flip" if not v else "without --no-flip"
        return f"{OPTION_OF.get(k, k)} {value(k, v)}"

    diff = [f"{show(k, getattr(given, k))} (checkpoint: {value(k, getattr(saved, k))})"
            for k in saved.to_dict() if k not in RESUME_MAY_CHANGE and getattr(saved, k) != getattr(given, k)]
    if diff:
        raise UsageError("--resume continues the checkpoint's settings; these differ: " + "; ".join(diff)
                         + ". Drop those options, or start a new run with another --name")


# The smallest crop the networks take: the PatchGAN shrinks 8x and then by 2 px twice, and each
# InstanceNorm needs more than one value per channel (24 -> 12 -> 6 -> 3 -> 2 -> 1).
MIN_CROP = 24


def check_sizes(config: TrainConfig) -> None:
    """Before anything is read: sizes the generator and the discriminators can train on."""
    c = config.crop_size
    if c > config.load_size:
        raise UsageError(f"--crop-size {c} is larger than --load-size {config.load_size}")
    if c % 4:
        raise UsageError(f"--crop-size {c}: the generator needs a multiple of 4 (e.g. {c // 4 * 4 or 4} or "
                         f"{c // 4 * 4 + 4})")
    if c < MIN_CROP:
        raise UsageError(f"--crop-size {c}: the discriminators need at least {MIN_CROP} px")


# ---- data

@dataclass(frozen=True)
class _Data:
    """Both domains' files, the dataset over them, and this process's share of every epoch."""
    files_a: list[Path]
    files_b: list[Path]
    dataset: UnpairedDataset
    positions: list[int]  # this process's positions in the dataset, the same in every epoch
    batch_size: int
    steps_per_epoch: int

    @classmethod
    def scan(cls, run: _Run, resumed: bool) -> "_Data":
        config = run.config
        if resumed:
            for d in (config.dir_a, config.dir_b):
                if not Path(d).is_dir():
                    raise UsageError(f"{d}: the data this run was trained on is not there any more; if it moved, "
                                     f"give it again: ccv train DATAROOT (or A B) --name {run.options.name} --resume")
        files_a = scan_domain(Path(config.dir_a), config.a_name, run.say)
        files_b = scan_domain(Path(config.dir_b), config.b_name, run.say)
        dataset = UnpairedDataset(files_a, files_b, config.load_size, config.crop_size, config.flip, config.seed,
                                 config.zoom_b)
        positions = rank_positions(len(dataset), run.dist.rank, run.dist.world)
        data = cls(files_a, files_b, dataset, positions, config.batch_size,
                   math.ceil(len(positions) / config.batch_size))
        run.say(f"data: {len(files_a)} images of {config.a_name} ({config.dir_a}), {len(files_b)} of {config.b_name} "
                f"({config.dir_b}); {data.steps_per_epoch} steps per epoch"
                + (f" per process, {run.dist.world} processes" if run.dist.enabled else ""))
        return data

    @property
    def counts(self) -> list[int]:
        return [len(self.files_a), len(self.files_b)]

    def loader(self, at: _Position, workers: int, pin_memory: bool) -> torch.utils.data.DataLoader:
        """The batches of epoch ``at.epoch`` from step ``at.epoch_step`` on (a resumed epoch starts mid-way)."""
        keys = [(at.epoch, p) for p in self.positions[at.epoch_step * self.batch_size:]]
        return make_loader(self.dataset, keys, self.batch_size, workers, pin_memory=pin_memory)


def _make_run_folder(folder: Path) -> None:
    try:
        ensure_writable_folder(folder)
    except OSError as e:
        raise UsageError(f"{folder}: cannot create the run folder ({e.strerror or e}): choose another "
                         "--checkpoints-dir") from None


# ---- resume

@dataclass
class _Position:
    """Where training is: ``epoch`` (1-based), the steps done in it, and all steps done (resumed ones included)."""
    epoch: int = 1
    epoch_step: int = 0
    step: int = 0

    def advance(self) -> None:
        self.step += 1
        self.epoch_step += 1

    def continues_at(self, steps_per_epoch: int) -> tuple[int, int]:
        """The epoch and the step in it where training continues: past a finished epoch, the next one."""
        return (self.epoch + 1, 0) if self.epoch_step >= steps_per_epoch else (self.epoch, self.epoch_step)

    def epochs_done(self, steps_per_epoch: int) -> float:
        return (self.epoch - 1) + self.epoch_step / steps_per_epoch


def _resume(run: _Run, state: dict[str, Any], model: CycleGAN, data: _Data) -> tuple[_Position, float]:
    """Loads the checkpoint into the model and the RNGs; returns the position and the wall time so far.
    Says where the run continues, and when the resume is not exact (the data or the processes changed)."""
    config, dist, say = run.config, run.dist, run.say
    model.load_state_dict(state["model"])
    checkpoint.restore_rng_states(state["rng"])
    at = _Position(int(state["epoch"]), int(state["epoch_step"]), int(state["step"]))
    say(f"resumed {run.folder} at step {at.step} (epoch {at.epoch}, step {at.epoch_step} of it)")
    saved_images = state.get("extra", {}).get("images")
    if saved_images is not None and list(saved_images) != data.counts:
        say(f"the run was saved with {saved_images[0]} images of {config.a_name} and {saved_images[1]} of "
            f"{config.b_name}, and now has {len(data.files_a)} and {len(data.files_b)}: the data changed, so epochs "
            "and the data order differ from here on (this resume is not exact)")
    saved_world = int(state.get("extra", {}).get("world", 1))
    if saved_world != dist.world:
        say(f"the run was saved with {saved_world} process(es) and resumes with {dist.world}: the rest of this "
            "epoch is split anew (some images may come twice or not at all) and the image pools differ, "
            "so this resume is close but not exact")
    elif dist.enabled:  # the other ranks' own pools and RNG states
        own = None if dist.main else checkpoint.load_rank_state(run.folder, dist.rank, dist.world, at.step)
        if own is not None:
            model.load_pool_state(own["pools"])
            checkpoint.restore_rng_states(own["rng"])
        missing = [r for r in range(1, dist.world)
                   if checkpoint.load_rank_state(run.folder, r, dist.world, at.step) is None] if dist.main else []
        if missing:
            say(f"no state saved at step {at.step} for rank(s) {', '.join(map(str, missing))}: they start from "
                "rank 0's pools and RNG states, so this resume is close but not exact")
    return at, float(state.get("wall_time", 0.0))


def _device_line(device: torch.device, amp: bool) -> str:
    if device.type == "cuda":
        return f"device: {torch.cuda.get_device_name(device)}" + (", AMP fp16" if amp else ", fp32")
    return ("device: CPU" + (", AMP bf16" if amp else ", fp32")
            + " (seconds per step at 256 px, months for the full recipe: real training needs a GPU)")


# ---- outputs

class _RunLock:
    """An exclusive lock on the run folder for as long as a run writes into it. Two `ccv train` of
    one run (a resume started twice, in two terminals or by a job that relaunches) would overwrite
    each other's checkpoints and loss log silently. flock on the folder itself: no file is left
    behind, and the lock goes with the process however it ends. Without fcntl (Windows): no lock."""

    def __init__(self, folder: Path, fresh: bool, resumed_stamp: Optional[tuple[int, int]] = None):
        self.fd: Optional[int] = None
        try:
            import fcntl
        except ImportError:
            return
        self.fd = os.open(folder, os.O_RDONLY)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.release()
            raise UsageError(f"{folder}: another `ccv train` is running this run; let it finish or stop it "
                             "(Ctrl-C saves) before starting it again") from None
        if fresh and (folder / checkpoint.STATE_FILE).exists():  # it started and saved while this one set up
            self.release()
            raise UsageError(f"{folder} already holds a run: add --resume to continue it, or choose another --name")
        if not fresh and _stamp(folder / checkpoint.STATE_FILE) != resumed_stamp:
            # another run of it saved after this one read state.pth: resuming would go back in time
            self.release()
            raise UsageError(f"{folder}: the run saved again while this one was starting (another `ccv train` "
                             "of it?); start the resume again")

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor releases the lock
            self.fd = None


def _stamp(path: Path) -> Optional[tuple[int, int]]:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


class _Outputs:
    """What the run writes and reports. Rank 0 holds the run lock, appends the loss log, reports
    progress and saves the checkpoints, sample grids and models; each other rank saves only its own
    image pools and RNG states. Also the clock of this invocation."""

    def __init__(self, run: _Run, model: CycleGAN, data: _Data, at: _Position, *, resumed: bool,
                 state_stamp: Optional[tuple[int, int]], wall_before: float,
                 on_progress: Optional[Callable[[Progress], None]]):
        self.run, self.model, self.data = run, model, data
        self.sample_pair = tuple(t.unsqueeze(0) for t in data.dataset.fixed_pair())
        main = run.dist.main
        log_file = log_path(run.folder, run.options.log_format, resume=resumed) if main else None
        # One process (group) at a time writes into the run folder.
        self.lock = _RunLock(run.folder, fresh=not resumed, resumed_stamp=state_stamp) if main else None
        try:
            self.log = LossLog(log_file, resume_step=at.step if resumed else None) if log_file is not None else None
        except BaseException:
            if self.lock is not None:
                self.lock.release()
            raise
        self.on_progress = on_progress if main else None
        self.last_step = data.steps_per_epoch * run.config.total_epochs  # where this invocation stops at the latest
        if run.options.max_steps is not None:
            self.last_step = min(self.last_step, run.options.max_steps)
        self.recent: deque[dict[str, float]] = deque(maxlen=100)  # the losses of the last 100 steps
        self.bad_seen: set[str] = set()
        self.last_saved = at.step if resumed else -1  # -1: nothing saved yet
        self.registered: list[str] = []
        self.wall_before = wall_before
        self.started = time.monotonic()

    def elapsed(self) -> float:
        """Seconds in this invocation."""
        return time.monotonic() - self.started

    def wall(self) -> float:
        """Seconds of training in all, resumed invocations included."""
        return self.wall_before + time.monotonic() - self.started

    def mean_losses(self) -> dict[str, float]:
        return {k: sum(r[k] for r in self.recent) / len(self.recent) for k in self.recent[-1]} if self.recent else {}

    def report_skipped(self, bad: list[str]) -> None:
        """Files the data workers could not decode, each reported once (the next file took its place)."""
        for line in (m for item in bad for m in item.split("\n") if m):
            if line not in self.bad_seen:
                self.bad_seen.add(line)
                self.run.say(f"skipped {line}")

    def record(self, at: _Position, lr: float, losses: dict[str, float], elapsed: float) -> None:
        """One step's line in the loss log, and its progress."""
        self.recent.append(losses)
        if self.log is not None:
            self.log.write({"step": at.step, "epoch": at.epoch, "lr": lr, "time": round(elapsed, 3), **losses})
        if self.on_progress is not None:
            self.on_progress(Progress(at.step, self.last_step, at.epoch, self.run.config.total_epochs, lr, losses,
                                      elapsed))

    def sample(self, step: int) -> None:
        if self.run.dist.main:
            save_grid(self.model.translate(*self.sample_pair), self.run.folder / "samples" / f"step_{step:07d}.png")

    def save(self, at: _Position, epoch_label: Optional[int] = None) -> None:
        """The one way the run saves. Rank 0, once per step however often asked: state.pth first (it
        alone resumes everything), then latest_net_*, a sample grid and the generators in the store;
        and <epoch_label>_net_* when given. Each other rank: its own pools and RNG states."""
        run, model = self.run, self.model
        try:
            if self.last_saved != at.step:
                if run.dist.main:
                    wall = self.wall()
                    epoch, epoch_step = at.continues_at(self.data.steps_per_epoch)
                    checkpoint.save_state(run.folder, model.state_dict(), run.config.to_dict(), epoch=epoch,
                                          epoch_step=epoch_step, step=at.step, wall_time=wall,
                                          extra={"world": run.dist.world, "images": self.data.counts})
                    weights = checkpoint.save_nets(run.folder, model.saved_nets, "latest")
                    self.sample(at.step)
                    if run.options.register:
                        card = _card(run, self.data, at.step, wall, model.amp, self.mean_losses())
                        self.registered = [e.id for e in register_generators(run.config, weights, card)]
                else:
                    checkpoint.save_rank_state(run.folder, run.dist.rank, run.dist.world, at.step, model.pool_state())
                self.last_saved = at.step
            if epoch_label is not None and run.dist.main:
                checkpoint.save_nets(run.folder, model.saved_nets, str(epoch_label))
        except OSError as e:
            # A full disk or a lost mount hours into a run: one line that says what is safe, not a traceback.
            safe = (f"the last save (step {self.last_saved}) is intact: --resume continues from it"
                    if self.last_saved >= 0 else "nothing was saved yet")
            raise UsageError(f"cannot write the checkpoint in {run.folder} at step {at.step} ({e.strerror or e}); "
                             f"{safe}") from None

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
        if self.lock is not None:
            self.lock.release()


def _card(run: _Run, data: _Data, step: int, wall: float, amp: bool, losses: dict[str, float]) -> dict[str, Any]:
    """How the model was made, for `ccv models` and anyone who finds the file later."""
    config, (n_a, n_b) = run.config, data.counts
    return {
        "made_by": "ccv train",
        "run": run.options.name,
        "checkpoints": str(run.folder.resolve()),
        "data": {"A": {"name": config.a_name, "folder": str(Path(config.dir_a).resolve()), "images": n_a},
                 "B": {"name": config.b_name, "folder": str(Path(config.dir_b).resolve()), "images": n_b}},
        "steps": step,
        "epochs": round(step / data.steps_per_epoch, 3),
        "batch_size": config.batch_size,
        "processes": run.dist.world,
        "wall_time_s": round(wall, 1),
        "device": torch.cuda.get_device_name(run.device) if run.device.type == "cuda" else "cpu",
        "amp": amp,
        "losses_mean_last_100_steps": {k: round(v, 5) for k, v in losses.items()},
        "config": config.to_dict(),
    }


# ---- loop

@contextlib.contextmanager
def _deferred_interrupt() -> Iterator[threading.Event]:
    """The first Ctrl-C sets a flag that the loop checks after each step (it then saves and stops);
    a second one interrupts at once. SIGTERM (``kill``, ``docker stop``, a cluster's preemption) and
    SIGHUP (a closed terminal) count as Ctrl-C: the run saves instead of losing everything since the
    last save. Signals can only be handled in the main thread."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        if flag.is_set():
            raise KeyboardInterrupt
        flag.set()

    # an ignored SIGTERM or SIGHUP stays ignored (``nohup`` ignores SIGHUP so that the run goes on)
    signals = [signal.SIGINT] + [sig for sig in (signal.SIGTERM, signal.SIGHUP)
                                 if signal.getsignal(sig) is not signal.SIG_IGN]
    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield flag
    finally:
        for sig, handler_before in previous.items():
            signal.signal(sig, handler_before)


def _stop_reason(step: int, options: RunOptions, elapsed: float, interrupt: threading.Event, dist: _Dist,
                 device: torch.device) -> str:
    reason = 0  # one code so that all ranks can agree through one all-reduce
    if options.max_steps is not None and step >= options.max_steps:
        reason = 1
    elif options.max_time is not None and elapsed >= options.max_time:
        reason = 2
    if interrupt.is_set():
        reason = 3
    if dist.enabled:  # every rank must stop at the same step or DDP hangs
        t = torch.tensor([reason], device=device)  # NCCL reduces CUDA tensors, gloo CPU ones
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        reason = int(t.item())
    return ("finished", "max_steps", "max_time", "interrupted")[reason]
