"""PyTorch backend: the reference engine, on CPU or CUDA."""
from __future__ import annotations

import copy
import time
from typing import TYPE_CHECKING, Callable, Union

import torch

from ..errors import first_line
from ..networks import HalfPrecisionGenerator, InstanceNorm, ResnetGenerator, with_narrow_convs
from ..tiling import TileSpec, generate_tiled
from .base import Backend, resolve_device

if TYPE_CHECKING:
    from .compile_plan import CompilePlan

GeneratorLoader = Union[ResnetGenerator, Callable[[], ResnetGenerator]]
CompileChoice = Union[bool, "CompilePlan"]
HALF = {"fp16": torch.float16, "bf16": torch.bfloat16}


class TorchBackend(Backend):
    """Runs a ``ResnetGenerator`` eagerly, or through ``torch.compile``: every size with
    ``compile=True``; with a ``CompilePlan`` only the sizes it says will pay for their compile.

    precision: 'fp32'; 'fp16' (CUDA) or 'bf16' (CPU or CUDA): half-precision weights and activations
    after an fp32 stem (``HalfPrecisionGenerator``; on CUDA cuDNN may run its fp32 convolution as
    TF32, PyTorch's default, not measured here), InstanceNorm statistics accumulated in fp32.
    Weights are cast once at open rather than by autocast on every call (autocast casts them again
    at every call). ``channels_last`` helps convolutions on CUDA, and on the CPU since InstanceNorm
    runs on group_norm's channels_last kernel there (``networks.InstanceNorm``; 1.5x in bf16).
    """

    name = "torch"
    can_tile = True

    def __init__(self, generator: GeneratorLoader, device: str = "auto", precision: str = "fp32",
                 channels_last: bool = True, compile: CompileChoice = False,
                 on_note: Callable[[str], None] = lambda text: None):
        super().__init__()
        self._loader = generator
        self.device = resolve_device(device)
        if precision not in ("fp32", "fp16", "bf16"):
            raise ValueError(f"unknown precision {precision!r}")
        if precision == "fp16" and self.device.type != "cuda":
            raise ValueError("fp16 needs CUDA; use bf16 on the CPU")
        self.precision = precision
        self.channels_last = channels_last
        self.plan = compile if not isinstance(compile, bool) else None
        self.compile = bool(compile)
        self.on_note = on_note
        self.model: torch.nn.Module | None = None
        self._compiled: Callable[[torch.Tensor], torch.Tensor] | None = None
        self._may_compile = False  # a plan's: torch.compile is called when it first picks a size
        self._norms: list[InstanceNorm] = []
        self._ready: set[tuple[int, ...]] = set()  # shapes the plan chose to compile
        self._timed: set[tuple[int, ...]] = set()  # of those, the ones whose compile was timed
        self._warmed_up: set[tuple[int, ...]] = set()  # shapes run eager at least once

    def describe(self) -> str:
        compiled = "compiled" if self.plan is None else "compiles the sizes that pay for it"
        compiling = self._compiled is not None or self._may_compile
        extras = [e for e, on in (("channels_last", self.channels_last), (compiled, compiling)) if on]
        return f"PyTorch {self.precision} on {self.device}" + (f" ({', '.join(extras)})" if extras else "")

    def _open(self) -> None:
        given = isinstance(self._loader, torch.nn.Module)
        model = self._loader if given else self._loader()
        on_cpu = self.device.type == "cpu"
        if given and (self.precision != "fp32" or on_cpu):
            # casting and the layer swap below are in place: the caller's module stays as it was
            model = copy.deepcopy(model)
        model = model.to(self.device).eval().requires_grad_(False)
        if self.plan is not None:  # compiled code depends on the layers, not on the weights
            self.plan.arch = (f"resnet_{model.n_blocks}blocks_ngf{model.ngf}_{model.upsample}"
                              + ("_dropout" if model.use_dropout else "")
                              + (f"_notch{model.notch[1]:g}" if model.notch else "")
                              + ("_narrowlast" if on_cpu else ""))  # the CPU's last layer: NarrowConv2d
            self.plan.narrow = model.ngf < 64
        if self.precision != "fp32":
            model = HalfPrecisionGenerator(model, HALF[self.precision])
        if on_cpu:
            model = with_narrow_convs(model)  # the last layer (3 output channels): 2.2x faster there
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self._norms = [m for m in model.modules() if isinstance(m, InstanceNorm)]
        if self.compile and self.plan is None:
            # explicit --compile: dynamic shapes, one compilation serves most image sizes (a few
            # recompile). It happens on the first call, tens of seconds on a CPU, and needs a C++
            # compiler there
            self._make_compiled(dynamic=True)
        # a plan compiles a few chosen sizes, each static (faster kernels); torch.compile is
        # called only then: importing the compiler costs 1.9 s of a process's start, and most
        # runs (one photo, tiles, a few sizes) never compile
        self._may_compile = self.plan is not None

    def _make_compiled(self, dynamic: bool) -> None:
        try:
            self._compiled = torch.compile(self.model, dynamic=dynamic)
        except Exception as e:  # noqa: BLE001  (an interpreter torch.compile does not support)
            self._compile_failed(e)

    def _close(self) -> None:
        self.model = self._compiled = None
        self._may_compile = False
        self._norms = []
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def infer_tiled(self, images: torch.Tensor, tile: int = TileSpec.tile, stats_side: int = TileSpec.stats_side
                    ) -> torch.Tensor:
        """Like ``infer``, tile by tile with whole-image InstanceNorm statistics (see ``tiling``):
        for images too large to run whole. Same contract: uint8 NHWC in, uint8 NHWC out."""
        from .base import pad_to_multiple, to_model_input, to_uint8_images

        if not self._is_open or self.model is None:
            raise RuntimeError("torch backend used before open()")
        tile = max(64, tile - tile % 4)
        spec = TileSpec(tile=tile, stats_side=stats_side)
        x, h, w = pad_to_multiple(to_model_input(images, self.device, self.input_dtype))
        with torch.inference_mode():
            y = generate_tiled(self.model, x, spec, self._run, self.channels_last)
        return to_uint8_images(y[..., :h, :w]).cpu()

    @torch.inference_mode()
    def _run(self, x: torch.Tensor) -> torch.Tensor:
        assert self.model is not None
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        # statistics hooks (tiles, video smoothing) are Python callbacks: those passes run eagerly
        hooked = any(m.stats_hook is not None for m in self._norms)
        shape = tuple(x.shape)
        plan = None if hooked else self.plan
        if self._compiled is not None and not hooked and (plan is None or shape in self._ready):
            try:
                if shape not in self._timed:  # this call compiles (or loads from the cache)
                    from .compile_plan import use_inductor_cache

                    use_inductor_cache()
                t0 = time.perf_counter()
                y = self._compiled(x).float()
                if shape not in self._timed:
                    self._timed.add(shape)
                    if plan is not None:
                        plan.compiled_in(shape, time.perf_counter() - t0)
                return self._done(plan, shape, y)
            except torch.OutOfMemoryError:
                raise  # the batch's problem, not the compiler's: the caller handles it
            except Exception as e:  # noqa: BLE001  (no compiler, an unsupported op: eager still works)
                self._compile_failed(e)
        t0 = time.perf_counter()
        y = self._done(plan, shape, self.model(x).float())
        eager_s = time.perf_counter() - t0
        if plan is not None and (self._compiled is not None or self._may_compile):
            # a size's first call includes oneDNN's warm-up (0.34 s against 0.2 s later at 256 px):
            # the estimate starts from the second
            if shape in self._warmed_up and plan.should_compile(shape, eager_s):
                self._ready.add(shape)
                if self._compiled is None:
                    self._make_compiled(dynamic=False)
            self._warmed_up.add(shape)
        return y

    @staticmethod
    def _done(plan, shape: tuple[int, ...], y: torch.Tensor) -> torch.Tensor:
        if plan is not None:
            plan.census.finish((shape[2], shape[3]), shape[0])
        return y

    def _compile_failed(self, e: Exception) -> None:
        self._compiled = None
        self._may_compile = False
        self.on_note(f"torch.compile failed ({first_line(e)}); running PyTorch uncompiled")
