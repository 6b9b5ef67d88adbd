"""The training loop: setup, data, model, resume, loop, save. Reads top to bottom.

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
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import torch

from cyclegan_convert.atomic import ensure_writable_folder
from cyclegan_convert.errors import BackendUnavailableError, UsageError

from . import checkpoint
from .config import RunOptions, TrainConfig
from .data import UnpairedDataset, make_loader, rank_positions, scan_domain
from .losslog import LossLog, log_path
from .model import LOSS_NAMES, CycleGAN
from .publish import check_domain_names, check_store_free, register_generators
from .samples import save_grid
from .schedule import lr_at

# Fields of the recipe that a resumed run may change: where the data lives now.
RESUME_MAY_CHANGE = ("dir_a", "dir_b")


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
    if name not in ("auto", "cpu", "cuda") and not name.startswith("cuda:"):
        raise UsageError(f"--device {name}: use auto, cpu or cuda")
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


# The `ccv train` option of each recipe field, to name in messages (fields without one keep their name).
OPTION_OF = {"n_epochs": "--epochs", "n_epochs_decay": "--epochs-decay", "n_blocks": "--blocks",
             "upsample": "--upsample",
             "flip": "--no-flip", **{k: "--" + k.replace("_", "-") for k in (
                 "a_name", "b_name", "load_size", "crop_size", "ngf", "ndf", "batch_size", "lr", "lambda_a",
                 "lambda_b", "lambda_identity", "pool_size", "seed")}}


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


def _make_run_folder(folder: Path) -> None:
    try:
        ensure_writable_folder(folder)
    except OSError as e:
        raise UsageError(f"{folder}: cannot create the run folder ({e.strerror or e}): choose another "
                         "--checkpoints-dir") from None


def train(config: Optional[TrainConfig], options: RunOptions, *, resume: bool = False,
          on_progress: Optional[Callable[[Progress], None]] = None,
          on_message: Optional[Callable[[str], None]] = None) -> TrainResult:
    """Trains (or resumes) the run ``options.name``; returns where it stopped and why.

    ``config`` may be None with ``resume``: the checkpoint's is used.
    """
    # -- setup: processes, device, output folder
    dist = _dist_from_env()
    device = pick_device(options.device, dist)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick the fastest kernels
    if dist.enabled and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    say = (on_message or (lambda _: None)) if dist.main else (lambda _: None)
    folder = Path(options.checkpoints_dir) / options.name
    state_stamp = _stamp(folder / checkpoint.STATE_FILE)  # what was resumed from (see _RunLock)
    state = checkpoint.load_state(folder) if resume else None
    if state is None and (folder / checkpoint.STATE_FILE).exists():
        raise UsageError(f"{folder} already holds a run: add --resume to continue it, or choose another --name")
    if state is not None:
        saved = TrainConfig.from_dict(state["config"])
        if config is None:
            config = saved
        check_resume_config(saved, config)
    if config is None:
        raise UsageError("nothing to train: give the data folders")
    check_domain_names(config)
    check_sizes(config)
    if config.total_epochs < 1:  # else step 0 would be saved and its random generators put in the store
        raise UsageError("--epochs 0 and --epochs-decay 0: nothing to train")
    if options.register and dist.main:
        check_store_free(config, folder)
    if options.save_every < 1 or options.save_epoch_every < 1:
        raise UsageError("--save-every and --save-epoch-every must be at least 1")

    # -- data: everything that can be wrong with it is found before the model is built
    if state is not None:
        for d in (config.dir_a, config.dir_b):
            if not Path(d).is_dir():
                raise UsageError(f"{d}: the data this run was trained on is not there any more; if it moved, give "
                                 f"it again: ccv train DATAROOT (or A B) --name {options.name} --resume")
    files_a = scan_domain(Path(config.dir_a), config.a_name, say)
    files_b = scan_domain(Path(config.dir_b), config.b_name, say)
    dataset = UnpairedDataset(files_a, files_b, config.load_size, config.crop_size, config.flip, config.seed)
    positions = rank_positions(len(dataset), dist.rank, dist.world)
    steps_per_epoch = math.ceil(len(positions) / config.batch_size)
    last_step = steps_per_epoch * config.total_epochs
    if options.max_steps is not None:
        last_step = min(last_step, options.max_steps)
    say(f"data: {len(files_a)} images of {config.a_name} ({config.dir_a}), {len(files_b)} of {config.b_name} "
        f"({config.dir_b}); {steps_per_epoch} steps per epoch" + (f" per process, {dist.world} processes"
                                                               if dist.enabled else ""))

    _make_run_folder(folder)

    # -- model and optimizers; on resume everything comes from the checkpoint
    amp = options.amp if options.amp is not None else device.type == "cuda"
    model = CycleGAN(config, device, amp=amp, distributed=dist.enabled, rank=dist.rank)
    epoch, epoch_step, step, wall_before = 1, 0, 0, 0.0
    if state is not None:
        model.load_state_dict(state["model"])
        checkpoint.restore_rng_states(state["rng"])
        epoch, epoch_step, step = int(state["epoch"]), int(state["epoch_step"]), int(state["step"])
        wall_before = float(state.get("wall_time", 0.0))
        say(f"resumed {folder} at step {step} (epoch {epoch}, step {epoch_step} of it)")
        saved_images = state.get("extra", {}).get("images")
        if saved_images is not None and list(saved_images) != [len(files_a), len(files_b)]:
            say(f"the run was saved with {saved_images[0]} images of {config.a_name} and {saved_images[1]} of "
                f"{config.b_name}, and now has {len(files_a)} and {len(files_b)}: the data changed, so epochs and the "
                "data order differ from here on (this resume is not exact)")
        saved_world = int(state.get("extra", {}).get("world", 1))
        if saved_world != dist.world:
            say(f"the run was saved with {saved_world} process(es) and resumes with {dist.world}: the rest of this "
                "epoch is split anew (some images may come twice or not at all) and the image pools differ, "
                "so this resume is close but not exact")
        elif dist.enabled:  # the other ranks' own pools and RNG states
            own = None if dist.main else checkpoint.load_rank_state(folder, dist.rank, dist.world, step)
            if own is not None:
                model.load_pool_state(own["pools"])
                checkpoint.restore_rng_states(own["rng"])
            missing = [r for r in range(1, dist.world)
                       if checkpoint.load_rank_state(folder, r, dist.world, step) is None] if dist.main else []
            if missing:
                say(f"no state saved at step {step} for rank(s) {', '.join(map(str, missing))}: they start from "
                    "rank 0's pools and RNG states, so this resume is close but not exact")
    if device.type == "cuda":
        say(f"device: {torch.cuda.get_device_name(device)}" + (", AMP fp16" if model.amp else ", fp32"))
    else:
        say("device: CPU" + (", AMP bf16" if model.amp else ", fp32")
            + " (seconds per step at 256 px, months for the full recipe: real training needs a GPU)")

    # -- outputs of rank 0: loss log, sample pair
    sample_pair = tuple(t.unsqueeze(0) for t in dataset.fixed_pair())
    log_file = log_path(folder, options.log_format, resume=state is not None) if dist.main else None
    # From here on this process writes into the run folder: one process (group) at a time.
    lock = _RunLock(folder, fresh=state is None, resumed_stamp=state_stamp) if dist.main else None
    try:
        log = LossLog(log_file, resume_step=step if state is not None else None) if log_file is not None else None
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    recent: deque[dict[str, float]] = deque(maxlen=100)
    last_saved = step if state is not None else -1
    started = time.monotonic()
    registered: list[str] = []
    bad_seen: set[str] = set()

    def mean_losses() -> dict[str, float]:
        return {k: sum(r[k] for r in recent) / len(recent) for k in LOSS_NAMES} if recent else {}

    def save(epoch_label: Optional[int] = None) -> None:
        # A full disk or a lost mount hours into a run: one line that says what is safe, not a traceback.
        try:
            _save(epoch_label)
        except OSError as e:
            safe = (f"the last save (step {last_saved}) is intact: --resume continues from it" if last_saved >= 0
                    else "nothing was saved yet")
            raise UsageError(f"cannot write the checkpoint in {folder} at step {step} ({e.strerror or e}); "
                             f"{safe}") from None

    def _save(epoch_label: Optional[int] = None) -> None:
        nonlocal last_saved, registered
        if not dist.main:  # rank 0 saves everything shared; each other rank its own pools and RNG
            if last_saved != step:
                checkpoint.save_rank_state(folder, dist.rank, dist.world, step, model.pool_state())
                last_saved = step
            return
        # Where training continues: past a finished epoch, the next one.
        next_epoch, next_step = (epoch + 1, 0) if epoch_step >= steps_per_epoch else (epoch, epoch_step)
        wall = wall_before + time.monotonic() - started
        if last_saved != step:
            checkpoint.save_state(folder, model.state_dict(), config.to_dict(), epoch=next_epoch,
                                  epoch_step=next_step, step=step, wall_time=wall, extra={"world": dist.world,
                                                                     "images": [len(files_a), len(files_b)]})
            weights = checkpoint.save_nets(folder, model.nets, "latest")
            save_grid(model.translate(*sample_pair), folder / "samples" / f"step_{step:07d}.png")
            if options.register:
                card = _card(config, options, folder, len(files_a), len(files_b), step, steps_per_epoch,
                             wall, device, model.amp, dist.world, mean_losses())
                registered = [e.id for e in register_generators(config, weights, card)]
            last_saved = step
        if epoch_label is not None:
            checkpoint.save_nets(folder, model.nets, str(epoch_label))

    # -- the loop
    stopped = "max_steps" if options.max_steps is not None and step >= options.max_steps else "finished"
    if state is not None and epoch > config.total_epochs:
        say(f"this run already finished all {config.total_epochs} epochs at step {step}: nothing to train (for more "
            "epochs, start a new run with another --name)")
    elif state is not None and stopped == "max_steps":
        say(f"this run is already at step {step}, --max-steps {options.max_steps}: nothing to train (raise "
            "--max-steps to continue)")
    try:
        with _deferred_interrupt() as interrupt:
            while epoch <= config.total_epochs and stopped == "finished":
                lr = lr_at(epoch, config.lr, config.n_epochs, config.n_epochs_decay)
                model.set_lr(lr)
                keys = [(epoch, p) for p in positions[epoch_step * config.batch_size:]]
                loader = make_loader(dataset, keys, config.batch_size, options.workers,
                                     pin_memory=device.type == "cuda")
                for real_A, real_B, bad in loader:
                    for line in (m for item in bad for m in item.split("\n") if m):
                        if line not in bad_seen:  # reported once; the item was replaced by the next file
                            bad_seen.add(line)
                            say(f"skipped {line}")
                    losses = model.train_step(real_A, real_B)
                    step += 1
                    epoch_step += 1
                    recent.append(losses)
                    elapsed = time.monotonic() - started
                    if log is not None:
                        log.write({"step": step, "epoch": epoch, "lr": lr, "time": round(elapsed, 3), **losses})
                    if on_progress is not None and dist.main:
                        on_progress(Progress(step, last_step, epoch, config.total_epochs, lr, losses, elapsed))
                    if epoch_step == steps_per_epoch and (epoch % options.save_epoch_every == 0
                                                          or epoch == config.total_epochs):
                        save(epoch_label=epoch)
                    if step % options.save_every == 0:
                        save()
                    elif options.sample_every and step % options.sample_every == 0 and dist.main:
                        save_grid(model.translate(*sample_pair), folder / "samples" / f"step_{step:07d}.png")
                    stopped = _stop_reason(step, options, elapsed, interrupt, dist, device)
                    if stopped != "finished":
                        break
                if epoch_step >= steps_per_epoch:
                    epoch, epoch_step = epoch + 1, 0
            save()  # latest_* and the state where we stopped (nothing new if this step was saved)
    finally:
        if log is not None:
            log.close()
        if lock is not None:
            lock.release()
        if dist.enabled:
            torch.distributed.barrier()
            torch.distributed.destroy_process_group()

    return TrainResult(folder, step, (epoch - 1) + epoch_step / steps_per_epoch, stopped, mean_losses(), registered,
                       wall_before + time.monotonic() - started)


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


def _card(config: TrainConfig, options: RunOptions, folder: Path, n_a: int, n_b: int, step: int,
          steps_per_epoch: int, wall: float, device: torch.device, amp: bool, world: int,
          losses: dict[str, float]) -> dict[str, Any]:
    """How the model was made, for `ccv models` and anyone who finds the file later."""
    return {
        "made_by": "ccv train",
        "run": options.name,
        "checkpoints": str(folder.resolve()),
        "data": {"A": {"name": config.a_name, "folder": str(Path(config.dir_a).resolve()), "images": n_a},
                 "B": {"name": config.b_name, "folder": str(Path(config.dir_b).resolve()), "images": n_b}},
        "steps": step,
        "epochs": round(step / steps_per_epoch, 3),
        "batch_size": config.batch_size,
        "processes": world,
        "wall_time_s": round(wall, 1),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "amp": amp,
        "losses_mean_last_100_steps": {k: round(v, 5) for k, v in losses.items()},
        "config": config.to_dict(),
    }
