"""When ``torch.compile`` pays for itself on the CPU, size by size.

Compiling the generator makes each image faster (``COSTS``, measured by benchmarks/cpu_compile.py)
but costs tens of seconds per image size the first time, a few seconds once Inductor's on-disk
cache holds it. A photographer's folder is mostly one or two sizes, so ``auto`` compiles a size
when the images of that size still to convert (``ShapeCensus``) will save more time than compiling
costs; rare sizes run eager, and at most ``MAX_SHAPES`` sizes are compiled in one run, so a folder
of odd sizes cannot start a storm of recompiles. The first two images of each size run eager: the
second one's time is what the saving is estimated from (the first includes warm-up).

The cache lives under the ccv data folder (``TORCHINDUCTOR_CACHE_DIR`` wins if set), with a small
record of what was compiled there and how long it took, so a later run knows its start is warm.
"""
from __future__ import annotations

import json
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch

from ..census import ShapeCensus

MAX_SHAPES = 4
MARGIN = 1.5  # the estimated saving must beat the compile time by this much: estimates are rough


@dataclass(frozen=True)
class CompileCosts:
    speedup: float  # compiled time per image / eager time per image, at 256x256
    cold_s: float   # compiling one size with an empty cache
    warm_s: float   # compiling one size that Inductor's cache holds
    large: Optional[tuple[int, float]] = None  # (pixels, speedup) measured at a larger size

    def speedup_at(self, pixels: int) -> float:
        """The speed-up for an image of ``pixels``: interpolated in log pixels between 256x256 and
        ``large``, and held at the nearer one outside them (not measured beyond)."""
        if self.large is None:
            return self.speedup
        big, at_big = self.large
        t = (math.log(max(pixels, 1)) - math.log(BASE_PIXELS)) / (math.log(big) - math.log(BASE_PIXELS))
        t = min(max(t, 0.0), 1.0)
        return self.speedup + t * (at_big - self.speedup)


# Measured with benchmarks/cpu_compile.py at 256x256 on 2 cores (Xeon with AMX, idle; RESULTS.md),
# compiled as the plan compiles (static shapes). Since eager InstanceNorm runs on group_norm's
# channels_last kernel (networks.InstanceNorm), eager is nearly as fast as compiled code at 256 px:
# bf16 full-size (ngf 64) 0.081 -> 0.077 s per image, compact (ngf 32) 0.023 -> 0.024-0.028 s (no
# gain); at 512 px full-size 0.571 -> 0.447 s. Compiling 21-27 s cold, 3-4 s from the cache. So at
# 256 px the plan compiles only for a very long run of one size, at 512 px from about 300 photos
# (about 50 with a warm cache). (Before that change: 0.161 -> 0.094 s at 256 px.) fp32 is not
# planned: with AVX2 kernels compiled fp32 gained 1.04-1.07x.
BASE_PIXELS = 256 * 256
COSTS = {"bf16": CompileCosts(speedup=0.95, cold_s=25.0, warm_s=4.0, large=(512 * 512, 0.78))}
NARROW_SPEEDUP = 1.0  # ngf below 64: compiled code measured no faster than eager


def inductor_cache_dir() -> Path:
    """Where compiled kernels persist between runs: ``TORCHINDUCTOR_CACHE_DIR``, else the ccv data
    folder (Inductor's own default is under /tmp, which a reboot may empty)."""
    from ..store import data_home

    return Path(os.environ.get("TORCHINDUCTOR_CACHE_DIR") or data_home() / "cache" / "inductor")


def use_inductor_cache() -> None:
    """Points Inductor at ``inductor_cache_dir()``; called just before compiling (it reads the
    variable each time it looks)."""
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(inductor_cache_dir())


class CompileRecord:
    """``ccv-compiled.json`` in the Inductor cache: seconds each (network, precision, shape) took
    to compile here. Compiled code depends on the network's layers, not its weights, so every
    model of one architecture shares it."""

    def __init__(self, folder: Path):
        self.path = folder / "ccv-compiled.json"
        try:
            self._data: dict[str, float] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self._data = {}

    def seconds(self, key: str) -> Optional[float]:
        v = self._data.get(key)
        return float(v) if isinstance(v, (int, float)) else None

    def add(self, key: str, seconds: float) -> None:
        from ..atomic import atomic_write_bytes

        self._data[key] = round(seconds, 1)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.path, json.dumps(self._data, indent=1, sort_keys=True).encode())
        except OSError:
            pass  # only an estimate is lost: the next run assumes a cold start


class CompilePlan:
    """Decides, image size by image size, whether to compile. ``census`` says how many images of
    each size are to come; ``arch`` names the network's layers (the backend sets it at open)."""

    def __init__(self, census: ShapeCensus, precision: str, on_note: Callable[[str], None] = lambda text: None,
                 max_shapes: int = MAX_SHAPES):
        self.census, self.precision, self.arch = census, precision, "?"
        self.costs = COSTS[precision]
        self.narrow = False  # set with ``arch``: a generator narrower than the original's
        self.on_note = on_note
        self.max_shapes = max_shapes
        self.record = CompileRecord(inductor_cache_dir())
        self.compiled: set[tuple[int, ...]] = set()
        self._lock = threading.Lock()

    def key(self, shape: tuple[int, ...]) -> str:
        return f"{self.arch}|{self.precision}|{'x'.join(map(str, shape))}|torch {torch.__version__}"

    def expected_compile_s(self, shape: tuple[int, ...]) -> tuple[float, bool]:
        """Seconds to compile this shape here, and whether the cache is warm for it."""
        done_before = self.record.seconds(self.key(shape))
        if done_before is not None:
            return min(done_before, self.costs.warm_s), True
        return self.costs.cold_s, False

    def should_compile(self, shape: tuple[int, ...], eager_s: float) -> bool:
        """After an eager image of ``shape`` (N, C, H, W) took ``eager_s``: compile it from the next
        image on? Says why in a note when it does."""
        with self._lock:
            if shape in self.compiled or len(self.compiled) >= self.max_shapes:
                return False
            left = self.census.remaining((shape[2], shape[3])) // max(shape[0], 1)
            speedup = NARROW_SPEEDUP if self.narrow else self.costs.speedup_at(shape[2] * shape[3])
            saving = left * eager_s * (1 - speedup)
            cost, warm = self.expected_compile_s(shape)
            if saving < cost * MARGIN:
                return False
            self.compiled.add(shape)
        self.on_note(f"compiling the generator for {shape[3]}x{shape[2]}: {left} more image(s) of that size should "
                     f"save about {saving:.0f} s for about {cost:.0f} s of compiling"
                     + (" (warm cache)" if warm else " (first time here; later runs reuse the cache)"))
        return True

    def compiled_in(self, shape: tuple[int, ...], seconds: float) -> None:
        """The first compiled call of ``shape`` took ``seconds`` (compiling included)."""
        self.record.add(self.key(shape), seconds)
