"""Packing the GPU-trained photo -> Monet generator for the trip back, and unpacking it as the bundled model.

    # THERE, by benchmarks/gpu_check.sh after `ccv train` (RUN_DIR = CHECKPOINTS_DIR/monet2photo):
    python3 benchmarks/gpu_model.py pack RUN_DIR --home CCV_HOME --out $OUT --device cuda
    # HERE, on what came back:
    python benchmarks/gpu_model.py unpack FILES_AT [--dest cyclegan_convert/models/photo2monet]

``pack`` writes into OUT (every file under 16 MiB, plain names):

- ``G_B_fp16.part1.pth``, ``G_B_fp16.part2.pth``: G_B (photo -> Monet; domain A = Monet, B = photo) as an
  fp16 state_dict split by keys into two plain state_dicts (a full-size generator is ~22.8 MB in fp16)
- ``train_meta.json``: the store entry ``ccv train`` registered (with its card), the parts' sha256,
  steps, epochs, wall time, device, the mean of the last 100 losses recomputed from the log
- ``loss_log.csv``, ``sample_grid.png`` (the last training sample grid)
- ``contact_sheet.png``: the photos of cyclegan_convert/samples/ above the generator's outputs (the
  packed fp16 weights, run in fp32 at the photos' own size)

``unpack`` joins the parts, checks them against train_meta.json and with ``load_generator`` (strict keys),
and writes ``generator.pth`` (fp16 state_dict) and ``model.json`` (a ``ModelEntry``, origin bundled).
"""
from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import math
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
try:
    import cyclegan_convert  # noqa: F401
except ImportError:  # run from a checkout without an install (only modules inside cyclegan_convert/ are used)
    sys.path.insert(0, str(ROOT))

from cyclegan_convert.backends.base import pad_to_multiple  # noqa: E402
from cyclegan_convert.store import ModelEntry  # noqa: E402
from cyclegan_convert.weights import clean_state_dict, infer_arch, load_generator, read_state_dict, sha256_file  # noqa: E402

PART_PATTERN = "G_B_fp16.part{}.pth"
N_PARTS = 2
PART_LIMIT = 16 * 1024 * 1024
META = "train_meta.json"
MODEL_ID = "photo2monet"
SAMPLES = ROOT / "cyclegan_convert" / "samples"
DEFAULT_DEST = ROOT / "cyclegan_convert" / "models" / MODEL_ID

DATA_NOTE = ("Trained with `ccv train` on a subset of the CycleGAN monet2photo training set made by "
             "benchmarks/gpu_prepare.sh: Monet paintings (domain A) and landscape photos (domain B) spread "
             "evenly over the name order, without the photos of cyclegan_convert/samples/ and "
             "tests/fixtures/photo/ (kept unseen).")
LICENCE = ("Weights: trained by the cyclegan-convert project with its BSD-3-Clause code. Data: the Berkeley "
           "CycleGAN monet2photo set; paintings by Claude Monet from Wikiart (public domain), photos from "
           "Flickr (tags landscape / landscapephotography; research use).")


def _fp16(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in sd.items()}


def _split(sd: dict[str, torch.Tensor], n: int) -> list[dict[str, torch.Tensor]]:
    """Consecutive key ranges of about equal bytes (every part gets at least one key)."""
    keys = list(sd)
    total = sum(v.numel() * v.element_size() for v in sd.values())
    parts: list[dict[str, torch.Tensor]] = [{} for _ in range(n)]
    done, i = 0, 0
    for j, k in enumerate(keys):
        keys_left, parts_after = len(keys) - j, n - 1 - i
        if parts[i] and parts_after and (done >= total * (i + 1) / n or keys_left <= parts_after):
            i += 1
        parts[i][k] = sd[k]
        done += sd[k].numel() * sd[k].element_size()
    if any(not p for p in parts):
        raise SystemExit(f"cannot split {len(keys)} keys into {n} parts")
    return parts


def _save_bytes(obj: Any) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _loss_stats(log: Path) -> dict[str, Any]:
    if not log.is_file():
        return {}
    with open(log, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return {"rows": 0}
    names = [k for k in rows[0] if k not in ("step", "epoch", "lr", "time")]
    last = rows[-100:]
    mean = {k: round(sum(float(r[k]) for r in last) / len(last), 5) for k in names}
    first = rows[:100]
    mean_first = {k: round(sum(float(r[k]) for r in first) / len(first), 5) for k in names}
    return {"rows": len(rows), "last_step": int(rows[-1]["step"]), "last_time_s": float(rows[-1]["time"]),
            "mean_last_100": mean, "mean_first_100": mean_first}


def _to_uint8(y: torch.Tensor) -> np.ndarray:
    return y[0].add(1).mul(127.5).round().clamp(0, 255).byte().permute(1, 2, 0).cpu().numpy()


def contact_sheet(net: torch.nn.Module, photos: list[Path], device: torch.device) -> Image.Image:
    """Inputs in the top row, the generator's outputs below, each at the photo's own size."""
    ins, outs = [], []
    for p in photos:
        img = np.asarray(Image.open(p).convert("RGB"))
        x = torch.from_numpy(img.copy()).permute(2, 0, 1)[None].float().div(127.5).sub(1).to(device)
        x, h, w = pad_to_multiple(x)
        with torch.no_grad():
            y = net(x)[..., :h, :w]
        ins.append(img)
        outs.append(_to_uint8(y))
    widths = [a.shape[1] for a in ins]
    row_h = max(a.shape[0] for a in ins)
    sheet = Image.new("RGB", (sum(widths), 2 * row_h), "white")
    x = 0
    for a, b in zip(ins, outs):
        sheet.paste(Image.fromarray(a), (x, 0))
        sheet.paste(Image.fromarray(b), (x, row_h))
        x += a.shape[1]
    return sheet


def _relative_data_paths(obj: Any) -> Any:
    """Folders on the GPU machine like /x/y/gpu_data/monet2photo/trainA -> gpu_data/monet2photo/trainA."""
    if isinstance(obj, dict):
        return {k: _relative_data_paths(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_relative_data_paths(v) for v in obj]
    if isinstance(obj, str) and "/gpu_data/" in obj:
        return "gpu_data/" + obj.split("/gpu_data/", 1)[1]
    return obj


def join_parts(folder: Path, meta: dict[str, Any] | None) -> dict[str, torch.Tensor]:
    parts = sorted(folder.glob(PART_PATTERN.format("*")))
    if not parts:
        raise SystemExit(f"{folder}: no {PART_PATTERN.format('*')} files")
    want = {p["file"]: p["sha256"] for p in (meta or {}).get("parts", [])}
    if want and sorted(want) != [p.name for p in parts]:
        raise SystemExit(f"{folder}: parts {[p.name for p in parts]} but {META} lists {sorted(want)}")
    sd: dict[str, torch.Tensor] = {}
    for p in parts:
        if want and sha256_file(p) != want[p.name]:
            raise SystemExit(f"{p}: sha256 differs from {META}: damaged on the way")
        piece = read_state_dict(p)
        overlap = set(piece) & set(sd)
        if overlap:
            raise SystemExit(f"{p}: keys also in another part: {sorted(overlap)[:3]}")
        sd.update(piece)
    return sd


# -- pack (on the GPU machine) ---------------------------------------------------------------------------

def pack(args: argparse.Namespace) -> int:
    run, out = Path(args.run_dir), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(args.device if args.device != "cuda" or torch.cuda.is_available() else "cpu")
    weights = run / "latest_net_G_B.pth"
    sd32 = clean_state_dict(read_state_dict(weights))
    arch = infer_arch(sd32, str(weights))
    sd16 = _fp16(sd32)
    parts_meta = []
    for i, part in enumerate(_split(sd16, N_PARTS), 1):
        data = _save_bytes(part)
        if len(data) >= PART_LIMIT:
            raise SystemExit(f"part {i} is {len(data)} bytes, over {PART_LIMIT}")
        name = PART_PATTERN.format(i)
        (out / name).write_bytes(data)
        parts_meta.append({"file": name, "sha256": _sha(data), "bytes": len(data), "keys": len(part)})
        print(f"{name}: {len(part)} keys, {len(data) / 1e6:.2f} MB")

    # What comes back is what gets checked: reload the parts, strict keys, fp32 on the device.
    net = load_generator(join_parts(out, {"parts": parts_meta}), device=device)
    n_params = sum(p.numel() for p in net.parameters())

    log = run / "loss_log.csv"
    if log.is_file():
        if log.stat().st_size < PART_LIMIT - (1 << 20):
            shutil.copyfile(log, out / "loss_log.csv")
        else:  # a very long run: the limit is per file
            with open(log, "rb") as f, gzip.open(out / "loss_log.csv.gz", "wb") as g:
                shutil.copyfileobj(f, g)
    grids = sorted((run / "samples").glob("step_*.png"))
    if grids:
        shutil.copyfile(grids[-1], out / "sample_grid.png")

    photos = sorted(Path(args.samples).glob("*.jpg"))
    if photos:
        contact_sheet(net, photos, device).save(out / "contact_sheet.png", optimize=True)
        print(f"contact_sheet.png: {len(photos)} photos of {args.samples}, fp32 on {device}")

    entry_file = Path(args.home) / "models" / MODEL_ID / "model.json"
    entry = json.loads(entry_file.read_text(encoding="utf-8")) if entry_file.is_file() else None
    if entry is None:
        print(f"warning: {entry_file} is missing: no card from ccv train")
    card = (entry or {}).get("card", {})
    meta = {
        "model_id": MODEL_ID,
        "network": "G_B (photo -> monet)",
        "source_weights": {"file": str(weights), "sha256_fp32": sha256_file(weights)},
        "arch": arch.name, "ngf": arch.ngf, "n_blocks": arch.n_blocks, "parameters": n_params,
        "parts": parts_meta,
        "store_entry": entry,
        "steps": card.get("steps"), "epochs": card.get("epochs"), "batch_size": card.get("batch_size"),
        "wall_time_s": card.get("wall_time_s"), "device": card.get("device"),
        "losses_mean_last_100_steps": card.get("losses_mean_last_100_steps"),
        "loss_log": _loss_stats(log),
        "sample_grid": grids[-1].name if grids else None,
        "torch": torch.__version__,
        "cuda_device": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }
    (out / META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{META}: steps {meta['steps']}, epochs {meta['epochs']}, wall {meta['wall_time_s']} s, "
          f"device {meta['device']}, {n_params / 1e6:.2f} M parameters ({arch.name}, ngf {arch.ngf})")
    return 0


# -- unpack (here) ---------------------------------------------------------------------------------------

def unpack(args: argparse.Namespace) -> int:
    src, dest = Path(args.files_at), Path(args.dest)
    meta_file = src / META
    meta = json.loads(meta_file.read_text(encoding="utf-8")) if meta_file.is_file() else None
    if meta is None:
        print(f"warning: no {META} in {src}: parts not checked against their sha256, no training card")
    sd = join_parts(src, meta)
    if not all(v.dtype == torch.float16 for v in sd.values() if v.is_floating_point()):
        raise SystemExit("the parts are not an fp16 state_dict")
    arch = infer_arch(sd, str(src))
    net = load_generator(sd)  # strict keys and shapes
    n_params = sum(p.numel() for p in net.parameters())

    dest.mkdir(parents=True, exist_ok=True)
    weights = dest / "generator.pth"
    tmp = dest / ".generator.pth.tmp"
    torch.save(sd, tmp)
    tmp.replace(weights)
    reloaded = load_generator(weights)  # the file itself, as the store will read it
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        diff = (reloaded(x) - net(x)).abs().max().item()
    if not math.isfinite(diff) or diff > 0:
        raise SystemExit(f"{weights}: reloads differently (max diff {diff})")

    card: dict[str, Any] = dict(((meta or {}).get("store_entry") or {}).get("card", {}))
    card.pop("checkpoints", None)  # a folder on the GPU machine; marks a user-store run, not a bundled model
    card = _relative_data_paths(card)
    card.update({
        "description": "photo to Monet painting",
        "network": "G_B (photo -> monet)",
        "data_subset": DATA_NOTE,
        "licence": LICENCE,
        "weights": f"fp16 state_dict ({n_params / 1e6:.2f} M parameters), converted from the fp32 training "
                   "weights; loads into the fp32 generator",
    })
    if meta is not None:
        card["training_weights_sha256_fp32"] = meta.get("source_weights", {}).get("sha256_fp32")
        if meta.get("loss_log"):
            card["loss_log"] = {k: meta["loss_log"][k] for k in ("rows", "last_step", "mean_first_100",
                                                                  "mean_last_100") if k in meta["loss_log"]}
    entry = ModelEntry(target="monet", source="photo", origin="bundled", arch=arch.name, ngf=arch.ngf,
                       sha256=sha256_file(weights), card=card)
    assert entry.id == MODEL_ID
    (dest / "model.json").write_text(entry.to_json() + "\n", encoding="utf-8")
    check = ModelEntry.from_folder(dest)
    assert check.sha256 == sha256_file(weights)
    print(f"{dest}: generator.pth {weights.stat().st_size / 1e6:.2f} MB (fp16, {arch.name}, ngf {arch.ngf}, "
          f"{n_params / 1e6:.2f} M parameters), model.json (steps {card.get('steps')}, epochs {card.get('epochs')}, "
          f"device {card.get('device')}); sha256 {entry.sha256[:16]}...")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack", help="on the GPU machine: the trained G_B and its records into OUT")
    p.add_argument("run_dir", help="the training run's folder (CHECKPOINTS_DIR/NAME)")
    p.add_argument("--home", required=True, help="the CCV_HOME ccv train registered the models in")
    p.add_argument("--out", required=True, help="where the files go ($OUT)")
    p.add_argument("--device", default="cuda", help="for the contact sheet (cpu when no GPU)")
    p.add_argument("--samples", default=str(SAMPLES), help="photos for the contact sheet")
    p.set_defaults(fn=pack)
    u = sub.add_parser("unpack", help="here: what came back -> the bundled model")
    u.add_argument("files_at", help="the folder the device tool put the files in")
    u.add_argument("--dest", default=str(DEFAULT_DEST), help=f"model folder (default {DEFAULT_DEST})")
    u.set_defaults(fn=unpack)
    args = ap.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
