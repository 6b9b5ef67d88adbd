"""The TensorRT engine cache: correct by construction.

An engine depends on the ONNX it was built from, the precision, the optimization profiles, the
TensorRT version and the GPU (name and compute capability): the cache key holds all of them, so a
changed input gives a new file instead of a wrong one. A cached engine that does not load (other
TensorRT, other GPU, corrupt file) is rebuilt with a one-line message. Each new engine is checked
against PyTorch FP32 before it is written; one that fails is refused with the numbers.

The TensorRT calls sit behind ``EngineLoader`` (see ``tensorrt_build``), so this logic is tested on
machines without TensorRT through a small fake loader.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Protocol, Sequence

from ..atomic import atomic_path
from ..backends.base import Backend
from .artifacts import make_readable
from .shapes import Profile

Message = Callable[[str], None]


@dataclass(frozen=True)
class Platform:
    """What an engine is tied to besides its inputs."""

    trt_version: str
    gpu_name: str
    compute_capability: str  # "9.0"


@dataclass(frozen=True)
class EngineKey:
    onnx_sha256: str
    precision: str  # fp16 (from the FP16 ONNX) or fp32
    profiles: tuple[Profile, ...]
    platform: Platform

    def as_json(self) -> dict:
        return {
            "onnx_sha256": self.onnx_sha256,
            "precision": self.precision,
            "profiles": [p.as_json() for p in self.profiles],
            "tensorrt_version": self.platform.trt_version,
            "gpu_name": self.platform.gpu_name,
            "compute_capability": self.platform.compute_capability,
        }

    @property
    def name(self) -> str:
        """File stem: readable precision and profile, then a digest of everything."""
        digest = hashlib.sha256(json.dumps(self.as_json(), sort_keys=True).encode()).hexdigest()[:16]
        return f"{self.precision}-{self.profiles[0].max}-{digest}"


class EngineLoader(Protocol):
    """The few TensorRT operations the cache needs."""

    def platform(self) -> Platform: ...

    def build(self, onnx_path: Path, profiles: Sequence[Profile], timing_cache: Path) -> bytes:
        """A serialized engine; raises EngineBuildError if TensorRT cannot build it."""

    def check_loads(self, data: bytes) -> None:
        """Raises any exception if ``data`` does not deserialize here."""

    def backend(self, data: bytes) -> Backend:
        """An unopened backend running ``data`` (used to validate a new engine)."""


# validate(backend) -> None, raising EngineBuildError with the numbers when the engine is wrong.
Validator = Callable[[Backend], None]


def engine_paths(exports_dir: Path, key: EngineKey) -> tuple[Path, Path]:
    folder = exports_dir / "engines"
    return folder / f"{key.name}.engine", folder / f"{key.name}.json"


def sha256_file(path: Path) -> str:
    from ..weights import sha256_file as _sha

    return _sha(path)


def ensure_engine_file(onnx_path: Path, precision: str, profiles: Sequence[Profile], exports_dir: Path,
                       loader: EngineLoader, validate: Validator, on_message: Message = lambda s: None,
                       force: bool = False) -> Path:
    """The cached engine for these inputs, built, validated and written on first use."""
    key = EngineKey(sha256_file(onnx_path), precision, tuple(profiles), loader.platform())
    engine_path, sidecar = engine_paths(exports_dir, key)
    with _build_lock(engine_path):
        if engine_path.is_file() and not force:
            try:
                loader.check_loads(engine_path.read_bytes())
                return engine_path
            except Exception as e:  # deserialization errors come in many types
                reason = str(e).strip().splitlines()[0][:120] if str(e).strip() else type(e).__name__
                on_message(f"cached engine {engine_path.name} does not load ({reason}): rebuilding it")
        on_message(f"building TensorRT engine {engine_path.name} (profile {', '.join(map(str, profiles))}); "
                   "this takes a few minutes once")
        data = loader.build(onnx_path, profiles, exports_dir / "timing.cache")
        loader.check_loads(data)
        validate(loader.backend(data))  # raises with the numbers: nothing is cached then
        # the sidecar first: an engine without its description is never visible
        with atomic_path(sidecar) as tmp:
            tmp.write_text(json.dumps(key.as_json(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
            make_readable(tmp)
        with atomic_path(engine_path) as tmp:
            tmp.write_bytes(data)
            make_readable(tmp)
    return engine_path


@contextlib.contextmanager
def _build_lock(engine_path: Path) -> Iterator[None]:
    """One build per engine at a time across processes (POSIX advisory lock; none elsewhere)."""
    engine_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    with open(engine_path.parent / f".{engine_path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
