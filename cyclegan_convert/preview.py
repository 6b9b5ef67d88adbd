"""`ccv preview`: a few photos through several models and looks, side by side, before a big run.

    inputs --pick a few, spread over them--> photos, decoded as `ccv convert` decodes them
    photo  --each model once, at the size convert runs it (full, or --max-side; tiles alike)--> outputs
    output --each look, at the output's size--> variants, as convert would write them
    variant --scaled to the sheet, and its centre at 100%--> pictures
    one HTML page (the sheet) + its pictures in <name>_files/, written under temporary names

A model run at the sheet's size would show another look: its texture has a fixed size in pixels and
the strokes reach a share of the output's side, so a 12 MP photo converted whole and scaled down
is smoother than the same photo converted at 512 px (the storm sky of photos-large: fine strokes
against coarse speckle). So the preview costs what converting those few photos costs (seconds
each on a GPU, 2-20 s on two CPU cores) and shows what `ccv convert` will write.

The sheet is a plain HTML page: per photo, a row of the input and each variant, each labelled, then
a row of their centres at 100%; it opens in any browser and can be mailed as a folder.
"""
from __future__ import annotations

import html
import itertools
import os
import shutil
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
from PIL import Image

from .errors import CcvError, UsageError, first_line
from .look import Look, apply_look, look_for
from .resolve import ModelRef

DEFAULT_COUNT = 8
DEFAULT_SIDE = 512  # what a person judges a look at: the views' longest side and the crops' side


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
                strengths: Sequence[Optional[float]], strokes: Sequence[Optional[float]] = (),
                highlights: Sequence[Optional[float]] = (), edges: Sequence[Optional[float]] = ()) -> list[Variant]:
    """Every model with every look asked for (each model's own recommendation where a part was
    not given), without repeats."""
    out: list[Variant] = []
    parts = [values or [None] for values in (colors, strengths, strokes, highlights, edges)]
    for ref in models:
        for look in itertools.product(*parts):
            v = Variant(ref, look_for(ref, *look))
            if v not in out:
                out.append(v)
    return out


@dataclass
class _Row:
    """One photo on the sheet: the input then each variant, as views (scaled to the sheet) and, for
    a photo larger than a view, 100% crops of the output's centre."""
    name: str
    error: str = ""
    views: list[np.ndarray] = field(default_factory=list)
    crops: list[np.ndarray] = field(default_factory=list)


def make_preview(inputs: Sequence[str], variants: Sequence[Variant], output: Path, *, count: int = DEFAULT_COUNT,
                 side: int = DEFAULT_SIDE, max_side: Optional[int] = None, tile: Optional[int] = None,
                 backend: str = "auto", device: str = "auto",
                 on_progress: Callable[[int, int], None] = lambda done, total: None) -> PreviewResult:
    """Writes the sheet ``output`` (an .html file) and its images; returns what it holds. Each photo
    is converted as ``ccv convert`` would with the same ``max_side`` and ``tile`` (at full size by
    default): the model's texture and the strokes depend on the size it runs at, so a model run at
    the sheet's size would show another look. A photo that cannot be read or converted is listed on
    the sheet and in ``failed``; the others go on. ``on_progress(photos done, photos)``."""
    from .backends.router import BackendRouter
    from .backends.select import BackendChoice
    from .image_stages import infer_one, read_source_image
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

    models: dict[Path, list[int]] = {}  # each model runs once per photo, then each of its looks
    for j, v in enumerate(variants):
        models.setdefault(v.model.path, []).append(j)
    choice = BackendChoice.parse(backend=backend, device=device)
    rows: list[_Row] = []
    with ExitStack() as stack:
        routers = {path: stack.enter_context(BackendRouter(variants[idx[0]].model, choice)) for path, idx in models.items()}
        for n, src in enumerate(photos):
            row = _Row(str(src))
            rows.append(row)
            try:
                img = read_source_image(src, metadata=False, max_side=max_side)
                h, w = img.full_size or img.size  # as convert: a JPEG drafted for --max-side keeps its size
                work = resize_rgb(img.rgb, *working_size(h, w, max_side))
                photo = resize_rgb(img.rgb, h, w)
                cells: list[np.ndarray] = [photo] + [photo] * len(variants)
                for path, idx in models.items():
                    out = resize_rgb(np.ascontiguousarray(infer_one(routers[path], work, tile)), h, w)
                    for j in idx:
                        cells[1 + j] = apply_look(out, img.rgb, variants[j].look)
            except CcvError as e:
                if isinstance(e, UsageError):
                    raise
                row.error = str(e)
            except Exception as e:  # noqa: BLE001  (a decoder bug on one strange file, out of memory: that photo fails)
                row.error = f"{src}: cannot convert ({type(e).__name__}: {first_line(e, 160)})"
            else:
                row.views = [resize_rgb(c, *working_size(h, w, side)) for c in cells]
                if max(h, w) > side:
                    y, x = max(0, (h - side) // 2), max(0, (w - side) // 2)
                    row.crops = [np.ascontiguousarray(c[y:y + side, x:x + side]) for c in cells]
            on_progress(n + 1, len(photos))

    several = len(models) > 1
    labels = [v.label(several) for v in variants]
    _write_sheet(output, rows, labels, side)
    return PreviewResult(output, [r.name for r in rows], labels, [(r.name, r.error) for r in rows if r.error],
                         time.perf_counter() - t0)


def _write_sheet(output: Path, photos: list[_Row], labels: list[str], side: int) -> None:
    """The page and its images, in a temporary folder beside them, then moved into place: a sheet
    that is there is complete."""
    from .atomic import atomic_write_bytes

    files = output.with_name(output.stem + "_files")
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = output.with_name(f".{files.name}.{os.getpid()}.part")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    rows = []
    columns = len(labels) + 1
    for i, photo in enumerate(photos):
        rows.append(f'<tr><th colspan="{columns}" class="photo">{html.escape(photo.name)}</th></tr>')
        if photo.error:
            rows.append(f'<tr><td colspan="{columns}" class="failed">{html.escape(photo.error)}</td></tr>')
            continue
        for kind, pictures, captions in (("", photo.views, ["input"] + labels),
                                         ("crop", photo.crops, [f"{c} (100%, centre)" for c in ["input"] + labels])):
            tds = []
            for j, (caption, rgb) in enumerate(zip(captions, pictures)):
                fname = f"{i:03d}_{j:02d}{'_' + kind if kind else ''}.jpg"
                Image.fromarray(rgb).save(staging / fname, quality=92)
                tds.append(f'<td><figure><a href="{files.name}/{fname}"><img src="{files.name}/{fname}" '
                           f'alt="{html.escape(caption)}" loading="lazy"></a><figcaption>{html.escape(caption)}'
                           f'</figcaption></figure></td>')
            if tds:
                rows.append(f"<tr>{''.join(tds)}</tr>")
    page = _PAGE.format(side=side, count=len(photos), rows="\n".join(rows))
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
