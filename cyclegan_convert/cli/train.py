"""`ccv train`: options in, `cyclegan_convert.train.loop.train` called, progress drawn."""
from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..errors import EXIT_INTERRUPTED, UsageError
from .app import DeviceOpt, command, console, err_console

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*([smhd]?)\s*$")


def parse_duration(text: Optional[str]) -> Optional[float]:
    """'90', '90s', '45m', '2.5h', '1d' -> seconds."""
    if text is None:
        return None
    m = _DURATION.match(text)
    if not m:
        raise UsageError(f"--max-time {text!r}: give seconds or a number with s, m, h or d (e.g. 45m, 2h)")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def _opt(help_: str, *names: str, **kw: Any) -> Any:
    return typer.Option(*names, help=help_, show_default=False, **kw)


@command()
def train(
    data: Annotated[Optional[list[Path]], typer.Argument(
        help="DATAROOT with trainA/ and trainB/, or two folders A B. Optional with --resume.",
        show_default=False)] = None,
    name: Annotated[Optional[str], _opt("Run name: checkpoints go to CHECKPOINTS_DIR/NAME/. "
                                        "(default: the DATAROOT folder name)", "--name")] = None,
    a_name: Annotated[Optional[str], _opt("Name of domain A. (default: X of a DATAROOT named X2Y, "
                                          "else the A folder's name)", "--a-name")] = None,
    b_name: Annotated[Optional[str], _opt("Name of domain B (G_A is registered as --to B_NAME).", "--b-name")] = None,
    epochs: Annotated[Optional[int], _opt("Epochs at the full learning rate. (default: 100)", "--epochs", min=0)] = None,
    epochs_decay: Annotated[Optional[int], _opt("Epochs of linear decay after them. (default: 100)",
                                                "--epochs-decay", min=0)] = None,
    batch_size: Annotated[Optional[int], _opt("Images per step (per GPU). (default: 1)", "--batch-size", "-b",
                                              min=1)] = None,
    load_size: Annotated[Optional[int], _opt("Resize to this square first. (default: 286)", "--load-size",
                                             min=8)] = None,
    crop_size: Annotated[Optional[int], _opt("Then crop this square at random. (default: 256)", "--crop-size",
                                             min=8)] = None,
    no_flip: Annotated[bool, _opt("No random horizontal flips.", "--no-flip")] = False,
    zoom_b: Annotated[Optional[float], _opt("Enlarge each B image by a random factor from 1 to this (log-uniform) "
                                            "before its crop, e.g. 4: the B->A generator learns the smooth detail "
                                            "of photos converted at full size (a blurred background, a large sky), "
                                            "not only of small whole scenes, while A's discriminator judges its "
                                            "output at the paintings' scale; ccv's, 1 is the original. "
                                            "(default: 1)", "--zoom-b", min=1.0, max=16.0)] = None,
    lr: Annotated[Optional[float], _opt("Adam learning rate. (default: 0.0002)", "--lr", min=0.0)] = None,
    lambda_a: Annotated[Optional[float], _opt("Weight of the A->B->A cycle loss. (default: 10)", "--lambda-a",
                                              min=0.0)] = None,
    lambda_b: Annotated[Optional[float], _opt("Weight of the B->A->B cycle loss. (default: 10)", "--lambda-b",
                                              min=0.0)] = None,
    lambda_identity: Annotated[Optional[float], _opt("Identity loss as a fraction of the cycle weights; 0 "
                                                     "disables it. (default: 0.5)", "--lambda-identity",
                                                     min=0.0)] = None,
    cycle_noise: Annotated[Optional[float], _opt("Gaussian noise (std, images in [-1, 1]) added to the fakes before "
                                                 "they are translated back for the cycle loss, so the generators "
                                                 "cannot pass it by hiding a faint pixel-level code in their output "
                                                 "(seen as a fine grain); ccv's, 0 is the original. (default: 0)",
                                                 "--cycle-noise", min=0.0)] = None,
    grid_penalty: Annotated[Optional[float], _opt("Weight of a penalty on the fakes' pattern that repeats every 2 and "
                                                  "4 pixels (a grain locked to the generator's pixel grid); ccv's, "
                                                  "0 is the original. (default: 0)", "--grid-penalty", min=0.0)] = None,
    color_loss: Annotated[Optional[float], _opt("Weight of an L1 loss between each input's and its translation's "
                                                "chroma averaged over COLOR_SCALE px cells: keeps the colour layout "
                                                "(orange stays orange) and leaves texture and light free; ccv's, 0 "
                                                "is the original. (default: 0)", "--color-loss", min=0.0)] = None,
    color_scale: Annotated[Optional[int], _opt("Cell size in pixels of --color-loss. (default: 16)", "--color-scale",
                                               min=1)] = None,
    g_average: Annotated[Optional[float], _opt("Save the generators as an exponential moving average of their "
                                               "weights with this decay, e.g. 0.999 (about the last 1,000 steps): "
                                               "fewer of the blobs and grain that come and go from one step to the "
                                               "next; ccv's, 0 is the original. (default: 0)", "--g-average",
                                               min=0.0, max=0.99999)] = None,
    pool_size: Annotated[Optional[int], _opt("Generated images kept for the discriminators; 0 disables the "
                                             "pool. (default: 50)", "--pool-size", min=0)] = None,
    ngf: Annotated[Optional[int], _opt("Generator width. (default: 64)", "--ngf", min=1)] = None,
    ndf: Annotated[Optional[int], _opt("Discriminator width. (default: 64)", "--ndf", min=1)] = None,
    d_scales: Annotated[Optional[int], _opt("Discriminators per domain, each a 70x70 PatchGAN, judging the image "
                                            "at full, half, quarter ... size (pix2pixHD): the coarser ones see "
                                            "strokes and masses instead of grain; ccv's, 1 is the original. "
                                            "(default: 1)", "--d-scales", min=1, max=4)] = None,
    blocks: Annotated[Optional[int], _opt("Residual blocks of the generator: 9 or 6. (default: 9)", "--blocks",
                                          min=1)] = None,
    upsample: Annotated[Optional[str], _opt("Generator upsampling: transpose (the original's transposed "
                                            "convolutions), resize (nearest x2 + conv) or bilinear (bilinear "
                                            "x2 + conv: no checkerboard, no 2-px grain; ccv's own models). "
                                            "(default: transpose)", "--upsample")] = None,
    notch: Annotated[Optional[float], _opt("Put a lattice notch (a fixed filter that removes what is locked to the "
                                           "4-pixel grid; no learned weights) after the generators' tanh, with "
                                           "this sigma in pixels, e.g. 32; ccv's, 0 is the original. The saved "
                                           "generators carry it. (default: 0)", "--notch", min=0.0,
                                           max=256.0)] = None,
    init_from: Annotated[Optional[Path], _opt("Start the networks from this run folder's latest_net_*.pth "
                                              "(ccv's or the original's) and fine-tune; a resize run may start "
                                              "a bilinear one.", "--init-from")] = None,
    seed: Annotated[Optional[int], _opt("Seed of weights, data order, crops and pool. (default: 0)",
                                        "--seed")] = None,
    device: DeviceOpt = "auto",
    amp: Annotated[Optional[bool], typer.Option("--amp/--no-amp", show_default=False, help=(
        "Mixed precision: fp16 on CUDA, bf16 on the CPU (about 2x faster where the CPU has native bf16, "
        "AVX512-BF16 or AMX). (default: on for CUDA, off for the CPU)"))] = None,
    max_steps: Annotated[Optional[int], _opt("Stop after this many steps in all (resumed ones count).",
                                             "--max-steps", min=1)] = None,
    max_time: Annotated[Optional[str], _opt("Stop after this long, e.g. 45m, 2h (this invocation).",
                                            "--max-time")] = None,
    workers: Annotated[int, typer.Option("--workers", "-j", min=0, help="Data loading processes.")] = 2,
    save_every: Annotated[int, typer.Option("--save-every", min=1, help="Steps between saves of latest_*, the "
                                            "full state, a sample grid and the models in the store.")] = 1000,
    save_epoch_every: Annotated[int, typer.Option("--save-epoch-every", min=1,
                                                  help="Epochs between <epoch>_net_*.pth files.")] = 5,
    sample_every: Annotated[Optional[int], _opt("Steps between extra sample grids. (default: only at saves)",
                                                "--sample-every", min=1)] = None,
    checkpoints_dir: Annotated[Path, typer.Option("--checkpoints-dir", help="Where run folders go.")
                               ] = Path("checkpoints"),
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run NAME exactly where it was saved.")
                      ] = False,
    no_register: Annotated[bool, _opt("Do not put the generators in the model store.", "--no-register")] = False,
    log_format: Annotated[Optional[str], _opt("Loss log: jsonl (loss_log.jsonl) or csv (loss_log.csv, for "
                                              "spreadsheets). (default: jsonl; a resumed run keeps its own)",
                                              "--log-format")] = None,
) -> None:
    """Train a CycleGAN on two folders of images. Example: ccv train datasets/monet2photo --max-time 8h

    The recipe is the original CycleGAN's: resnet_9blocks, LSGAN, cycle 10, identity 0.5, pool 50, Adam 2e-4, 100 + 100 epochs at 286 -> 256 px.

    At each save both generators enter the model store: for monet2photo, `ccv convert --to monet` uses G_B and `--to photo` uses G_A.

    Ctrl-C saves and stops; `--resume` continues exactly where the last save left off.
    """
    from ..train.config import RunOptions, TrainConfig
    from ..train.data import resolve_source
    from ..train.checkpoint import load_state
    from ..train.loop import train as run_training

    max_time_s = parse_duration(max_time)  # usage errors before anything is read
    if upsample not in (None, "transpose", "resize", "bilinear"):
        raise UsageError(f"--upsample {upsample!r}: use transpose, resize or bilinear")
    if init_from is not None and not init_from.is_dir():
        raise UsageError(f"--init-from {init_from}: not a folder (give a training run's folder)")
    if log_format not in (None, "jsonl", "csv"):
        raise UsageError(f"--log-format {log_format!r}: use jsonl or csv")
    given: dict[str, Any] = {
        "n_epochs": epochs, "n_epochs_decay": epochs_decay, "batch_size": batch_size, "load_size": load_size,
        "crop_size": crop_size, "flip": False if no_flip else None, "zoom_b": zoom_b, "lr": lr, "lambda_a": lambda_a,
        "lambda_b": lambda_b, "lambda_identity": lambda_identity, "pool_size": pool_size, "cycle_noise": cycle_noise,
        "grid_penalty": grid_penalty, "color_loss": color_loss, "color_scale": color_scale,
        "g_average": g_average, "ngf": ngf, "ndf": ndf, "d_scales": d_scales,
        "n_blocks": blocks, "upsample": upsample, "notch": notch, "seed": seed, "a_name": a_name, "b_name": b_name,
        "init_from": str(init_from.resolve()) if init_from is not None else None,
    }
    given = {k: v for k, v in given.items() if v is not None}
    source = resolve_source(data) if data else None
    if name is None:
        if source is None:
            raise UsageError("give DATAROOT (or two folders), or --name of a run to --resume")
        name = source.default_run_name
    if source is not None:
        given["dir_a"], given["dir_b"] = str(source.dir_a.resolve()), str(source.dir_b.resolve())

    if resume:
        state = load_state(checkpoints_dir / name)
        config = TrainConfig.from_dict(state["config"]).with_(**given)
    else:
        if source is None:
            raise UsageError("give DATAROOT with trainA/ and trainB/, or two folders A B")
        if "a_name" not in given or "b_name" not in given:
            if source.a_name is None or source.b_name is None:
                raise UsageError(f"cannot tell the domain names from {data[0]}: pass --a-name and --b-name "
                                 "(they name the models: ccv convert --to B_NAME)")
            given.setdefault("a_name", source.a_name)
            given.setdefault("b_name", source.b_name)
        config = TrainConfig(**given)

    options = RunOptions(name=name, checkpoints_dir=str(checkpoints_dir), device=device, amp=amp, workers=workers,
                         max_steps=max_steps, max_time=max_time_s, save_every=save_every,
                         save_epoch_every=save_epoch_every, sample_every=sample_every, register=not no_register,
                         log_format=log_format)
    result = _run_with_progress(run_training, config, options, resume)
    if os.environ.get("RANK", "0") != "0":  # under torchrun rank 0 reports
        if result.interrupted:
            raise typer.Exit(EXIT_INTERRUPTED)
        return

    where = result.folder
    # one line each, never wrapped (a log file or a pipe gets 80 columns), never read as markup
    line = dict(highlight=False, markup=False, soft_wrap=True)
    console.print(f"{result.stopped.replace('_', ' ')} at step {result.step} (epoch {result.epoch:.2f}); "
                  f"checkpoints in {where}/", **line)
    if result.registered:
        from ..store import ModelStore
        from .models import to_args

        store = ModelStore()
        console.print(f"models: ccv convert {to_args(store, config.b_name, config.a_name)} (G_A, from "
                      f"{config.a_name}); ccv convert {to_args(store, config.a_name, config.b_name)} (G_B, from "
                      f"{config.b_name})", **line)
    if result.stopped != "finished":
        console.print(f"continue with: {resume_command(options)}", **line)
    if result.interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)


def resume_command(options) -> str:
    """The command that continues this run (``RunOptions``), ready to paste. What steers one
    invocation is not saved in the checkpoint, so the command carries what was given: without
    --no-register a resume would put the models in the store after all (or be refused because the
    store holds other models of these names), without --amp/--no-amp it could change precision (a bf16
    CPU run would go on in fp32 at half the speed), and without the save cadence and the workers it
    would save every 1000 steps where the run saved every 300, or load with another number of
    processes."""
    from ..train.config import RunOptions

    default = RunOptions()
    flags = [*(["--no-register"] if not options.register else []),
             *([] if options.amp is None else ["--amp" if options.amp else "--no-amp"])]
    for flag, field in (("--save-every", "save_every"), ("--save-epoch-every", "save_epoch_every"),
                        ("--sample-every", "sample_every"), ("--workers", "workers")):
        value = getattr(options, field)
        if value is not None and value != getattr(default, field):
            flags += [flag, str(value)]
    return " ".join(["ccv train --name", shlex.quote(options.name), "--checkpoints-dir",
                     shlex.quote(options.checkpoints_dir), "--resume", *flags])


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _run_with_progress(run_training, config, options, resume):
    """A bar with step, rate and ETA, and below it the eight losses of the last step."""
    from rich.console import Group
    from rich.live import Live
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
    from rich.text import Text

    progress = Progress(TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[rate]}  elapsed {task.fields[elapsed]}  ETA {task.fields[eta]}"),
                        console=err_console)
    losses = Text("")
    state: dict[str, Any] = {"task": None, "first": None}

    if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 draws
        return run_training(config, options, resume=resume)
    if not err_console.is_terminal:  # nohup, a batch job, a pipe: a live display would print nothing until the end
        return _run_with_log_lines(run_training, config, options, resume)
    with Live(Group(progress, losses), console=err_console, refresh_per_second=2, transient=False) as live:
        def on_message(text: str) -> None:
            live.console.print(text, highlight=False, markup=False, soft_wrap=True)

        def on_progress(p) -> None:
            if state["task"] is None:
                state["task"] = progress.add_task("train", total=p.total_steps, completed=p.step - 1,
                                                  epoch="", rate="", elapsed="", eta="")
                state["first"] = (p.step - 1, 0.0)
            s0, t0 = state["first"]
            rate = (p.step - s0) / (p.elapsed - t0) if p.elapsed > t0 else 0.0
            eta = (p.total_steps - p.step) / rate if rate > 0 else float("inf")
            if options.max_time is not None:
                eta = min(eta, max(0.0, options.max_time - p.elapsed))
            progress.update(state["task"], completed=p.step, total=p.total_steps,
                            epoch=f"{p.epoch}/{p.total_epochs}",
                            rate=f"{rate:.2f} it/s" if rate >= 1 else (f"{1 / rate:.1f} s/it" if rate > 0 else ""),
                            elapsed=_clock(p.elapsed), eta=_clock(eta) if eta != float("inf") else "?")
            losses.plain = "  ".join(f"{k} {v:.3f}" for k, v in p.losses.items()) + f"  lr {p.lr:.2e}"

        return run_training(config, options, resume=resume, on_progress=on_progress, on_message=on_message)


def _run_with_log_lines(run_training, config, options, resume, every_s: float = 60.0):
    """Without a terminal: one plain line per ``every_s`` seconds (and at the first and last step)."""
    last: dict[str, Any] = {"t": None, "line": ""}

    def on_message(text: str) -> None:
        err_console.print(text, highlight=False, markup=False, soft_wrap=True)

    def on_progress(p) -> None:
        last["line"] = (f"step {p.step}/{p.total_steps} epoch {p.epoch}/{p.total_epochs} elapsed {_clock(p.elapsed)}  "
                        + "  ".join(f"{k} {v:.3f}" for k, v in p.losses.items()) + f"  lr {p.lr:.2e}")
        if last["t"] is None or p.elapsed - last["t"] >= every_s:
            last["t"] = p.elapsed
            err_console.print(last["line"], highlight=False, markup=False, soft_wrap=True)
            last["line"] = ""

    result = run_training(config, options, resume=resume, on_progress=on_progress, on_message=on_message)
    if last["line"]:
        err_console.print(last["line"], highlight=False, markup=False, soft_wrap=True)
    return result
