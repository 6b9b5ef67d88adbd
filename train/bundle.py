"""Maintainers' step: a generator saved by a ``ccv train`` run becomes a model bundled with ccv.

    python -m cyclegan_convert.train.bundle G_B_step_11000.pth --run runs/monet_compact \\
        --step 11000 --source photo --target monet --quality quality.md --note "..."

The weights are stored as fp16 (half the size; the networks load them into fp32, and the output
differs from the fp32 weights' by far less than 8-bit rounding: the PSNR is measured and recorded).
The card gathers what a user needs to judge the model: data, recipe, steps, wall time, CPU, the
losses around the chosen step and the quality table of benchmarks/model_quality.py.
"""
from __future__ import annotations

import argparse
import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from cyclegan_convert.backends.select import cpu_name
from cyclegan_convert.look import Look
from cyclegan_convert.store import BUNDLED_ROOT, ModelEntry, ModelStore
from cyclegan_convert.weights import clean_state_dict, infer_arch, load_generator, notched, read_state_dict, sha256_file

from .losslog import read_log
from .model import LOSS_NAMES, OPTIONAL_LOSS_NAMES


def wall_time(rows: list[dict[str, Any]]) -> float:
    """Training seconds up to the last row: the log's ``time`` counts from the start of each
    invocation, so a resumed run's time is the sum of its segments."""
    total, prev = 0.0, 0.0
    for r in rows:
        if r["time"] < prev:  # a --resume started counting again
            total += prev
        prev = r["time"]
    return round(total + prev, 1)


def losses_near(log: Path, step: int, window: int = 100) -> dict[str, Any]:
    """Mean losses over the ``window`` steps up to ``step`` and the wall time at it, from loss_log.jsonl."""
    upto = [r for r in read_log(log) if r["step"] <= step]
    rows = [r for r in upto if step - window < r["step"]]
    if not rows:
        raise SystemExit(f"{log}: no losses logged up to step {step}")
    names = [*LOSS_NAMES, *(k for k in OPTIONAL_LOSS_NAMES if all(k in r for r in rows))]
    means = {k: round(sum(r[k] for r in rows) / len(rows), 4) for k in names}
    return {"losses_mean": means, "window_steps": len(rows), "lr": rows[-1]["lr"],
            "wall_time_s": wall_time(upto), "epoch": rows[-1]["epoch"]}


LOCAL_PATHS = ("dir_a", "dir_b", "init_from")  # where things were on the maintainer's machine: not for the card


def lineage(config: dict[str, Any], step: int, wall_time_s: float) -> dict[str, Any]:
    """For a run that started from another one's weights (``ccv train --init-from``): that run's
    steps, wall time and recipe at its last save (its state.pth: exact across resumes; the latest
    weights, which --init-from takes, are that save's), followed back through the runs it started
    from in turn, and the totals, so the card counts all the training behind the model. A folder
    without ccv's state (the original implementation's) is named with its steps unknown."""
    init = config.get("init_from")
    if not init:
        return {"steps_total": step, "wall_time_total_s": wall_time_s}
    prior: dict[str, Any] = {"run": Path(init).name}
    try:
        state = torch.load(Path(init) / "state.pth", map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, KeyError):
        return {"fine_tuned_from": {**prior, "steps": None}, "steps_total": None, "wall_time_total_s": None}
    before = lineage(state["config"], state["step"], round(state["wall_time"], 1))
    prior.update(steps=state["step"], wall_time_s=round(state["wall_time"], 1),
                 config={k: v for k, v in state["config"].items() if k not in LOCAL_PATHS},
                 **({"fine_tuned_from": before["fine_tuned_from"]} if "fine_tuned_from" in before else {}))
    known = before["steps_total"] is not None
    return {"fine_tuned_from": prior, "steps_total": before["steps_total"] + step if known else None,
            "wall_time_total_s": round(before["wall_time_total_s"] + wall_time_s, 1) if known else None}


def half_precision_psnr(sd32: dict[str, torch.Tensor], sd16: dict[str, torch.Tensor]) -> float:
    """PSNR (8-bit) of the fp16-stored weights' output against the fp32 weights' on a real-looking image."""
    sample = sorted((BUNDLED_ROOT.parent / "samples").glob("*.jpg"))[0]
    x = torch.from_numpy(np.asarray(Image.open(sample).convert("RGB").resize((256, 256))).copy())
    x = x.permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        a, b = load_generator(sd32)(x), load_generator(sd16)(x)
    to8 = lambda t: ((t.clamp(-1, 1) + 1) * 127.5).round()  # noqa: E731
    mse = float(((to8(a) - to8(b)) ** 2).mean())
    return float("inf") if mse == 0 else round(10 * torch.log10(torch.tensor(255.0 ** 2 / mse)).item(), 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("weights", type=Path, help="the generator file (a snapshot of latest_net_G_?.pth)")
    p.add_argument("--run", type=Path, required=True, help="the ccv train run folder (loss_log.jsonl, state)")
    p.add_argument("--step", type=int, required=True, help="the step the weights were saved at")
    p.add_argument("--source", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--quality", type=Path, help="markdown table from benchmarks/model_quality.py")
    p.add_argument("--note", default="", help="the maintainers' honest verdict, by eye")
    p.add_argument("--notch", type=float, metavar="SIGMA",
                   help="append networks.LatticeNotch (period 4, this sigma in pixels) after the generator's tanh")
    p.add_argument("--colors", help="the recommended --colors (model, keep or a fraction), chosen by measuring")
    p.add_argument("--strength", type=float, help="the recommended --strength, chosen by measuring")
    p.add_argument("--strokes", type=float, help="the recommended --strokes, chosen by measuring (default 0)")
    p.add_argument("--highlights", type=float, help="the recommended --highlights, chosen by measuring (default 0)")
    p.add_argument("--edges", type=float, help="the recommended --edges, chosen by measuring (default 0)")
    p.add_argument("--root", type=Path, default=BUNDLED_ROOT.parent, help="where models/ is (default: the package)")
    args = p.parse_args()

    sd32 = clean_state_dict(read_state_dict(args.weights))
    arch = infer_arch(sd32, str(args.weights))
    if args.notch:
        sd32 = notched(sd32, args.notch, str(args.weights))  # the new layer's notch, whatever the file had
        arch = infer_arch(sd32, str(args.weights))
    sd16 = {k: v.half() for k, v in sd32.items()}
    log = losses_near(args.run / "loss_log.jsonl", args.step)
    state = torch.load(args.run / "state.pth", map_location="cpu", weights_only=True)
    config = state["config"]
    card = {
        "made_by": "ccv train (this project), bundled with cyclegan_convert.train.bundle",
        "network": f"G_B ({args.source} -> {args.target})" + (
            f", then networks.LatticeNotch (period {arch.notch[0]}, sigma {arch.notch[1]:g} px): a fixed filter "
            "that removes what is locked to the 4-pixel grid" if arch.notch else ""),
        "data": {"set": "monet2photo of the original CycleGAN project (paintings from Wikiart, public domain; "
                        "photos from Flickr, research use)",
                 "held_out": "every 10th file in name order of trainA (108 paintings) and trainB (300 photos) "
                             "was kept out of training for benchmarks/model_quality.py; of those photos, alternate "
                             "ones chose the checkpoint (--split val) and the others gave the figures (--split test)",
                 "trained_on": {"paintings": 964, "photos": 2700}},
        "config": {k: v for k, v in config.items() if k not in LOCAL_PATHS},
        "step": args.step, **log, **lineage(config, args.step, log["wall_time_s"]),
        "precision": "bf16 autocast on the CPU (ccv train --amp)",
        "cpu": f"{cpu_name()}, {os.cpu_count()} cores",
        "weights": f"stored as fp16; output vs the fp32 weights: {half_precision_psnr(sd32, sd16)} dB (8-bit PSNR)",
        "quality": args.quality.read_text() if args.quality else "",
        "verdict": args.note,
    }
    look = Look.of(args.colors, args.strength, strokes=args.strokes, highlights=args.highlights, edges=args.edges)
    entry = ModelEntry(target=args.target, source=args.source, origin="bundled", arch=arch.name, ngf=arch.ngf,
                       card=card, look=look.settings())
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "generator.pth"
        torch.save(sd16, f)
        entry = replace(entry, sha256=sha256_file(f))
        installed = ModelStore(root=args.root, bundled_root=None).add(entry, f)
    print(f"bundled {installed.id} in {installed.path} ({installed.weights.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
