"""`ccv preview`: a few photos through several models and looks, side by side, before a big run.

    inputs --pick a few, spread over them--> photos, decoded at the sheet's size (JPEG draft)
    photo  --each model once-->              outputs at that size
    output --each look (cheap)-->            variants
    one HTML page (the sheet) + its images in <name>_files/, written under temporary names

The sheet is a plain HTML page: one row per photo, the input first, then each variant, each
labelled; it opens in any browser and can be mailed as a folder.
"""
from __future__ import annotations

import html
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
from PIL import Image

from .errors import CcvError, UsageError
from .look import Look, apply_look, look_for
from .resolve import ModelRef

DEFAULT_COUNT = 8
DEFAULT_SIDE = 512  # what a person judges a look at, and seconds a photo on a CPU


@dataclass(frozen=True)
class Variant:
    model: ModelRef
    look: Look

    def label(self, several_models: bool) -> str:
        look = self.look.describe() if not self.look.raw else "raw output"
        return f"{self.model.label} · {look}" if several_models else look


@dataclass
class PreviewResult:
    sheet: Path
    photos: list[str]
    variants: list[str]
    failed: list[tuple[str, str]] = field(default_factory=list)  # (photo, reason)
    seconds: float = 0.0


def pick_spread(paths: Sequence, count: int) -> list:
    """``count`` items spread evenly over ``paths`` in name order (all of them when there are fewer):
    a folder of a trip gives its beginning, middle and end, not its first eight photos."""
    paths = sorted(paths, key=str)
    if len(paths) <= count:
        return list(paths)
    step = len(paths) / count
    return [paths[int(i * step + step / 2)] for i in range(count)]


def list_images(inputs: Sequence[str]) -> list:
    """Every image the same inputs would give ``ccv convert`` (folders, globs, object stores)."""
    from .files import Naming, iter_jobs, plan_roots

    roots = plan_roots(inputs, "preview")
    return [job.src for job in iter_jobs(roots, Naming("same", ""))]


def variants_of(models: Sequence[ModelRef], colors: Sequence[Optional[str]],
                strengths: Sequence[Optional[float]], strokes: Sequence[Optional[float]] = ()) -> list[Variant]:
    """Every model with every look asked for (each model's own recommendation where a part was
    not given), without repeats."""
    out: list[Variant] = []
    for ref in models:
        for c in colors or [None]:
            for s in strengths or [None]:
                for k in strokes or [None]:
                    v = Variant(ref, look_for(ref, c, s, k))
                    if v not in out:
                        out.append(v)
    return out


def make_preview(inputs: Sequence[str], variants: Sequence[Variant], output: Path, *, count: int = DEFAULT_COUNT,
                 side: int = DEFAULT_SIDE, backend: str = "auto", device: str = "auto",
                 on_progress: Callable[[int, int], None] = lambda done, total: None) -> PreviewResult:
    """Writes the sheet ``output`` (an .html file) and its images; returns what it holds. A photo
    that cannot be read is listed on the sheet and in ``failed``; the others go on."""
    from .backends.select import make_backend
    from .image_stages import read_source_image
    from .imaging import resize_rgb, working_size

    if not variants:
        raise UsageError("nothing to preview: give a model (--to or --model)")
    if count < 1 or side < 16:
        raise UsageError("--count must be at least 1 and --side at least 16")
    output = Path(output)
    if output.suffix.lower() not in (".html", ".htm"):
        raise UsageError(f"-o {output}: the sheet is an HTML page; give a name ending in .html")
    t0 = time.perf_counter()
    photos = pick_spread(list_images(inputs), count)
    if not photos:
        raise UsageError(f"no images in {' '.join(inputs)}")

    # decode each photo at the sheet's size once
    decoded: list[tuple[str, Optional[np.ndarray], str]] = []  # (name, rgb, error)
    for src in photos:
        try:
            img = read_source_image(src, metadata=False, max_side=side)
            h, w = img.full_size or img.size
            decoded.append((str(src), resize_rgb(img.rgb, *working_size(h, w, side)), ""))
        except CcvError as e:
            decoded.append((str(src), None, str(e)))
        except Exception as e:  # noqa: BLE001  (a decoder bug on one strange file: that photo fails)
            decoded.append((str(src), None, f"{src}: cannot decode ({type(e).__name__}: {e})"))

    # each model once per photo, then each of its looks
    cells: dict[tuple[int, int], np.ndarray] = {}
    total, done = len(decoded) * len(variants), 0
    by_model: dict[Path, list[int]] = {}
    for j, v in enumerate(variants):
        by_model.setdefault(v.model.path, []).append(j)
    import torch

    from .backends.base import pad_rgb, padded_size

    for path, idx in by_model.items():
        ref = variants[idx[0]].model
        with make_backend(ref, backend, device) as engine:
            for i, (_, rgb, error) in enumerate(decoded):
                if rgb is None:
                    done += len(idx)
                    continue
                padded = np.require(pad_rgb(rgb, *padded_size(*rgb.shape[:2])), requirements="CW")
                out = engine.infer(torch.from_numpy(padded)[None])[0].numpy()
                out = np.ascontiguousarray(out[:rgb.shape[0], :rgb.shape[1]])
                for j in idx:
                    cells[i, j] = apply_look(out, rgb, variants[j].look)
                    done += 1
                    on_progress(done, total)

    several = len(by_model) > 1
    labels = [v.label(several) for v in variants]
    _write_sheet(output, decoded, labels, cells, side)
    return PreviewResult(output, [d[0] for d in decoded], labels,
                         [(d[0], d[2]) for d in decoded if d[1] is None], time.perf_counter() - t0)


def _write_sheet(output: Path, decoded, labels: list[str], cells: dict, side: int) -> None:
    """The page and its images, in a temporary folder beside them, then moved into place: a sheet
    that is there is complete."""
    from .atomic import atomic_write_bytes

    files = output.with_name(output.stem + "_files")
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = output.with_name(f".{files.name}.{os.getpid()}.part")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    rows = []
    for i, (name, rgb, error) in enumerate(decoded):
        rows.append(f'<tr><th colspan="{len(labels) + 1}" class="photo">{html.escape(str(name))}</th></tr>')
        if rgb is None:
            rows.append(f'<tr><td colspan="{len(labels) + 1}" class="failed">{html.escape(error)}</td></tr>')
            continue
        tds = []
        for j, (label, rgb_j) in enumerate([("input", rgb)] + [(labels[j], cells[i, j]) for j in range(len(labels))]):
            fname = f"{i:03d}_{j:02d}.jpg"
            Image.fromarray(rgb_j).save(staging / fname, quality=92)
            tds.append(f'<td><figure><a href="{files.name}/{fname}"><img src="{files.name}/{fname}" '
                       f'alt="{html.escape(label)}" loading="lazy"></a><figcaption>{html.escape(label)}'
                       f'</figcaption></figure></td>')
        rows.append(f"<tr>{''.join(tds)}</tr>")
    page = _PAGE.format(side=side, count=len(decoded), rows="\n".join(rows))
    if files.exists():
        shutil.rmtree(files)
    os.replace(staging, files)
    atomic_write_bytes(output, page.encode("utf-8"))


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ccv preview</title>
<style>
body {{ font: 14px system-ui, sans-serif; background: #1d1d1f; color: #eee; margin: 16px; }}
table {{ border-collapse: collapse; }}
th.photo {{ text-align: left; font-weight: 600; padding: 12px 4px 2px; overflow-wrap: anywhere; }}
td {{ padding: 4px; vertical-align: top; }}
figure {{ margin: 0; }}
img {{ display: block; max-width: {side}px; max-height: {side}px; }}
figcaption {{ padding: 2px 0 8px; color: #ccc; }}
.failed {{ color: #ff8a80; }}
</style></head>
<body>
<h1>ccv preview: {count} photos</h1>
<table>
<tbody>
{rows}
</tbody></table>
</body></html>
"""
