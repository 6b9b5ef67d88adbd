"""`--stable`'s temporal consistency: the previous output, moved with the input's optical flow,
blended into the new one where the flow can be trusted.

Per-frame CycleGAN output "boils": every frame gets its own strokes, so textures crawl even on a
still shot. Following the blind methods (Bonneel et al. 2015; Lai et al. 2018, whose short-term
loss this is), the input video says how the output should move:

    source thread   ``FlowAnalyzer``: flow between consecutive INPUT frames (OpenCV's DIS, grey, at
                    most ``flow_side`` px), where it is reliable (forward-backward check, inside the
                    frame, brightness constancy of the input), as a ``Motion`` per frame
    after inference ``OutputBlender``: the previous STABILISED output warped onto this frame
                    (bicubic remap), blended per pixel: ``strength`` where reliable, 0 where not

Ghosting is a defect as bad as flicker, so the weight drops to 0 where the flow fails the
forward-backward check (occlusions: a moving subject uncovers what was behind it), where the warped
previous input does not match this input, and where the per-frame output disagrees strongly with the
warped previous output while the input changed too. A scene cut (``SceneCutDetector``), or a frame
whose reliable area is under ``min_reliable``, starts afresh: that frame is the per-frame output.

Both stages keep a sequential state (frames in order) and only see RGB frames: they work with every
backend, at the working size (``--max-side``; scaling back to the source size is linear, so blending
first gives the same frames for fewer pixels), in stored orientation (flow does not care which way is
up), and never touch timestamps or audio. OpenCV releases the GIL, so the analysis in the source
thread overlaps with inference.

The measures used by the benchmark and the tests are here too: ``warping_error`` (Lai et al.'s, with
Farneback flow on the input, a different method from the one stabilising) and ``sharpness``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import cv2
import numpy as np


@dataclass(frozen=True)
class TemporalOptions:
    strength: float = 0.9  # weight of the warped previous output where the flow is reliable: 0 = off
    flow_side: int = 384  # the flow's working size (longest side); the flow is upsampled to the frame's
    preset: str = "fast"  # DIS preset: ultrafast, fast, medium
    input_tolerance: float = 14.0  # input levels: brightness-constancy residual where the weight falls to 1/e
    disagree: float = 64.0  # output levels: per-frame vs warped previous output that counts as disagreeing ...
    input_changed: float = 6.0  # ... where the input changed by more than this (levels): weight 0 there
    min_reliable: float = 0.25  # mean reliability below this: the frame starts a new shot

    def __post_init__(self) -> None:
        if not 0.0 <= self.strength < 1.0:
            raise ValueError("strength must be in [0, 1)")
        if self.preset not in _PRESETS:
            raise ValueError(f"preset {self.preset!r}: use one of {', '.join(_PRESETS)}")
        if self.flow_side < 16:
            raise ValueError("flow_side must be at least 16")


_PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
            "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}


@dataclass
class Motion:
    """How one frame relates to the previous one, at the flow's size (h, w)."""

    flow: np.ndarray  # (h, w, 2) float32: where each pixel of this frame was in the previous one (pixels)
    reliability: np.ndarray  # (h, w) float32 in [0, 1]
    input_change: np.ndarray  # (h, w) float32: input levels between this frame and the warped previous one
    scale: float  # flow size / frame size


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    return np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))


def _resize(a: np.ndarray, w: int, h: int, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    return a if a.shape[1] == w and a.shape[0] == h else cv2.resize(a, (w, h), interpolation=interpolation)


def fb_consistent(backward: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """Pixels whose backward flow (this frame -> previous) is undone by the forward flow found where
    it lands (Sundaram et al. 2010's test, as in Ruder et al. 2016): False at occlusions and where
    either flow is wrong. Also False where the flow leaves the frame."""
    h, w = backward.shape[:2]
    gx, gy = _grid(h, w)
    mx, my = gx + backward[..., 0], gy + backward[..., 1]
    fw = cv2.remap(forward, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    err = ((backward + fw) ** 2).sum(-1)
    mag = (backward**2).sum(-1) + (fw**2).sum(-1)
    inside = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
    return (err < 0.01 * mag + 0.5) & inside


def warp(image: np.ndarray, backward: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """``image`` (the previous frame) moved onto the current one by the current frame's backward flow."""
    h, w = backward.shape[:2]
    gx, gy = _grid(h, w)
    return cv2.remap(image, gx + backward[..., 0], gy + backward[..., 1], interpolation, borderMode=cv2.BORDER_REPLICATE)


class FlowAnalyzer:
    """The input side: call with each frame (H, W, 3 uint8) in order and whether it starts a shot;
    returns its ``Motion``, or None where the frame starts afresh (the first, a cut, or one the flow
    cannot follow)."""

    def __init__(self, options: TemporalOptions = TemporalOptions()):
        self.options = options
        self._dis = cv2.DISOpticalFlow_create(_PRESETS[options.preset])
        self._prev: Optional[tuple[np.ndarray, np.ndarray]] = None  # (small RGB, small grey)

    def __call__(self, rgb: np.ndarray, cut: bool = False) -> Optional[Motion]:
        opt = self.options
        h, w = rgb.shape[:2]
        scale = min(1.0, opt.flow_side / max(h, w))
        sw, sh = max(8, round(w * scale)), max(8, round(h * scale))
        small = _resize(rgb, sw, sh, cv2.INTER_AREA)
        grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        prev, self._prev = self._prev, (small, grey)
        if prev is None or cut or prev[1].shape != grey.shape:
            return None
        prev_small, prev_grey = prev
        backward = self._dis.calc(grey, prev_grey, None)  # (sh, sw, 2): this frame -> the previous one
        forward = self._dis.calc(prev_grey, grey, None)
        change = cv2.absdiff(warp(prev_small, backward), small).astype(np.float32).mean(-1)
        change = cv2.GaussianBlur(change, (0, 0), 1.0)  # a pixel's neighbours too: noise and codec blocks
        reliability = fb_consistent(backward, forward) * np.exp(-((change / opt.input_tolerance) ** 2))
        if float(reliability.mean()) < opt.min_reliable:
            return None  # a cut the histograms missed, or motion the flow cannot follow
        return Motion(backward, reliability.astype(np.float32), change, sh / h)


class OutputBlender:
    """The output side: call with each frame's ``Motion`` (from ``FlowAnalyzer``, same order) and its
    per-frame output (H, W, 3 uint8); returns the stabilised output. Keeps the previous stabilised
    output in float32, so slow blends do not stall on rounding."""

    def __init__(self, options: TemporalOptions = TemporalOptions()):
        self.options = options
        self._state: Optional[np.ndarray] = None

    def reliability(self, motion: Motion, out: np.ndarray, warped: np.ndarray) -> np.ndarray:
        """(H, W) weight of the warped previous output, at the output's size."""
        opt = self.options
        h, w = out.shape[:2]
        weight = _resize(motion.reliability, w, h)
        disagree = cv2.absdiff(warped, out.astype(np.float32)).mean(-1) > opt.disagree
        changed = _resize(motion.input_change, w, h) > opt.input_changed
        return opt.strength * weight * ~(disagree & changed)

    def __call__(self, motion: Optional[Motion], out: np.ndarray) -> np.ndarray:
        h, w = out.shape[:2]
        if motion is None or self._state is None or self._state.shape[:2] != (h, w) or not self.options.strength:
            self._state = out.astype(np.float32)
            return out
        flow = _resize(motion.flow, w, h) * np.float32(1 / motion.scale) if motion.scale != 1 else motion.flow
        warped = warp(self._state, flow, cv2.INTER_CUBIC)  # bicubic: repeated bilinear warps blur
        a = self.reliability(motion, out, warped)[..., None]
        self._state = a * warped + (1 - a) * out.astype(np.float32)
        return np.clip(self._state + 0.5, 0, 255).astype(np.uint8)


def stabilise(inputs: Sequence[np.ndarray], outputs: Sequence[np.ndarray], cuts: Sequence[bool] = (),
              options: TemporalOptions = TemporalOptions()) -> list[np.ndarray]:
    """Both stages over whole lists (tests, benchmarks): frame i of ``outputs`` is the per-frame
    output of ``inputs[i]``; ``cuts[i]`` true where a shot starts."""
    analyze, blend = FlowAnalyzer(options), OutputBlender(options)
    return [blend(analyze(i, k < len(cuts) and cuts[k]), o) for k, (i, o) in enumerate(zip(inputs, outputs))]


# -- measures --------------------------------------------------------------------------------------
def measure_flow(prev: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The measure's flow (Farneback at full size: not the method that stabilises) from grey ``cur``
    back to grey ``prev``, and the pixels that are not occluded (forward-backward check)."""
    args = (None, 0.5, 4, 15, 3, 5, 1.2, 0)
    backward = cv2.calcOpticalFlowFarneback(cur, prev, *args)
    forward = cv2.calcOpticalFlowFarneback(prev, cur, *args)
    return backward, fb_consistent(backward, forward)


def warping_errors(inputs: Sequence[np.ndarray], videos: Sequence[Sequence[np.ndarray]]) -> np.ndarray:
    """Lai et al. 2018's warping error of each video, per consecutive pair: flow on the INPUT frames,
    the previous frame of the video warped onto the current one, mean squared difference (RGB in
    [0, 1], summed over channels) over the pixels that are not occluded. Shape (len(videos), pairs)."""
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in inputs]
    errors = np.zeros((len(videos), max(0, len(inputs) - 1)))
    for t in range(1, len(inputs)):
        backward, visible = measure_flow(grey[t - 1], grey[t])
        if not visible.any():
            continue
        for v, frames in enumerate(videos):
            prev = warp(frames[t - 1].astype(np.float32) / 255, backward)
            errors[v, t - 1] = (((frames[t].astype(np.float32) / 255 - prev) ** 2).sum(-1))[visible].mean()
    return errors


def sharpness(frames: Sequence[np.ndarray]) -> tuple[float, float]:
    """(mean gradient magnitude, Laplacian variance) of the grey frames, averaged over frames."""
    grads, laps = [], []
    for f in frames:
        g = cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.float32)
        grads.append(float(np.sqrt(cv2.Sobel(g, cv2.CV_32F, 1, 0) ** 2 + cv2.Sobel(g, cv2.CV_32F, 0, 1) ** 2).mean()))
        laps.append(float(cv2.Laplacian(g, cv2.CV_32F).var()))
    return float(np.mean(grads)), float(np.mean(laps))
