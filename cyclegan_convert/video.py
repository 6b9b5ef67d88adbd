"""The Python API behind `ccv video`: ``VideoConverter(ref, VideoOptions()).run(Path("in.mp4"))``.

The stages run on the same stage runner as `ccv convert` (``pipeline.Pipeline``), joined by
bounded queues so memory stays flat on a two-hour video:

    source (feeder thread)  ``_VideoSource``: demux; decode (FFmpeg threads); YUV -> RGB; audio and
                            subtitle packets pass through, never inferred
    infer (this thread)     ``VideoConverter._infer``: batches of frames through the backend router
                            (the GIL is free while it computes); with --stable, each result then
                            blended with the previous one along the input's flow (``temporal.py``)
    encode + sink (1 thread) ``_VideoSink``: RGB -> YUV; encode; mux video and the copied packets
                            into a temporary file

Frames are never dropped: a full queue blocks its producer. An error in a worker stops the others
and is raised here; Ctrl-C stops everything and removes the temporary file. Progress goes to a
callback; nothing is drawn.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator, Optional, Union

import numpy as np

from .atomic import atomic_path
from .errors import MediaError, UsageError
from .look import apply_look, asked_look, look_for, look_note
from .pipeline import Pipeline, PipelineConfig, PipelineStats
from .resolve import ModelRef
from .video_io import (FrameConverter, OutputPlan, VideoInfo, alpha_decoder, check_encoder, check_output, choose_pix_fmt,
                       decode, default_output, encoder_options, fit_within, has_alpha, open_input, open_output, probe,
                       subsampled, _reason)


@dataclass(frozen=True)
class VideoOptions:
    output: Optional[Union[str, Path]] = None  # a folder where it exists or ends in '/'; None: <input>_<target>.mp4 beside the input (.mkv/.mov keep theirs)
    codec: str = "libx264"
    crf: Optional[int] = None  # None: the encoder's default in video_io.DEFAULT_CRF (visually lossless)
    preset: Optional[str] = None  # None: the encoder's own default (medium for x264)
    pix_fmt: Optional[str] = None  # None: the source's, where the encoder can take it
    bitrate: Optional[str] = None  # e.g. 8M; replaces constant quality
    max_side: Optional[int] = None  # run the generator with the longer side at most this
    work_size: bool = False  # write at the working size instead of scaling back to the source's
    start: float = 0.0  # seconds into the input
    duration: Optional[float] = None  # seconds to convert; None: to the end
    no_audio: bool = False
    side_by_side: bool = False  # input and output next to each other, for previews
    stable: bool = False  # temporal consistency: flow-guided blending (any backend), + smoothed InstanceNorm statistics (torch) with stable_momentum
    stable_momentum: float = 0.0  # the statistics' moving average (0: off, the default: +78% time at 720p for 3-7% less warping error)
    stable_strength: float = 0.9  # weight of the warped previous output where the flow is reliable (0: statistics only)
    allow_hdr: bool = False  # convert PQ/HLG video as if it were SDR instead of refusing
    overwrite: bool = False  # replace an existing output file (never the input)
    batch_size: int = 0  # 0: 4 on a GPU, 1 on the CPU
    backend: str = "auto"
    device: str = "auto"
    queue_frames: int = 8  # frames each queue holds: bounds memory
    colors: Optional[str] = None  # look.parse_colors: model, keep or a fraction; None: the model's recommendation
    strength: Optional[float] = None  # look.Look.strength; None: the model's recommendation
    strokes: Optional[float] = None  # look.Look.strokes; None: the model's recommendation
    highlights: Optional[float] = None  # look.Look.highlights; None: the model's recommendation
    edges: Optional[float] = None  # look.Look.edges; None: the model's recommendation

    def __post_init__(self) -> None:
        if self.start < 0:
            raise UsageError("--start must be 0 or more seconds")
        if self.duration is not None and self.duration <= 0:
            raise UsageError("--duration must be more than 0 seconds")
        if self.max_side is not None and self.max_side < 16:
            raise UsageError("--max-side must be at least 16")
        if self.crf is not None and not 0 <= self.crf <= 63:
            raise UsageError("--crf must be between 0 and 63")
        if self.batch_size < 0:
            raise UsageError("--batch-size must be at least 1")
        if not 0.0 <= self.stable_strength < 1.0 or not 0.0 <= self.stable_momentum < 1.0:
            raise UsageError("stable_strength and stable_momentum must be in [0, 1)")
        self.backend_choice  # --backend and --device checked before any work
        look_for(None, *asked_look(self))  # and bad looks

    @property
    def backend_choice(self):
        from .backends.select import BackendChoice

        return BackendChoice.parse(self.backend, self.device)


@dataclass
class VideoProgress:
    frames: int = 0  # frames written
    total: Optional[int] = None  # estimate; never below ``frames``
    elapsed_s: float = 0.0
    rates: dict[str, float] = field(default_factory=dict)  # decode, infer, encode: frames/s each stage sustains

    @property
    def fps(self) -> float:
        return self.frames / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> Optional[float]:
        if self.total is None or not self.fps:
            return None
        return max(0.0, (self.total - self.frames) / self.fps)


@dataclass
class VideoResult:
    output: Path
    frames: int
    backend: str
    elapsed_s: float
    rates: dict[str, float]
    notes: list[str] = field(default_factory=list)
    problem: Optional[str] = None  # set when the input could not be decoded to its end (exit 1)

    @property
    def fps(self) -> float:
        return self.frames / self.elapsed_s if self.elapsed_s > 0 else 0.0


# -- items on the queues ----------------------------------------------------------------------------
@dataclass
class _Frame:
    pts: int
    duration: Optional[int]
    rgb: np.ndarray  # (H, W, 3) uint8 at the working size
    cut: bool = False  # starts a new shot (for --stable)
    motion: Optional[object] = None  # temporal.Motion from the previous frame (for --stable); None: starts afresh
    result: Optional[np.ndarray] = None
    alpha: Optional[np.ndarray] = None  # (H, W) uint8: the source's transparency, kept where the output holds it


@dataclass
class _Copy:
    packet: object  # an av.Packet of an audio or subtitle stream


def _is_copy(item) -> bool:
    return isinstance(item, _Copy)


def _no_item_failures(item, message: str) -> None:
    """A video has no per-item failures: a frame that cannot be made ends the conversion."""
    raise MediaError(message)


class VideoConverter:
    """Converts one video with one model. ``on_progress(VideoProgress)`` is called from the calling
    thread; ``on_message(kind, text)`` (kinds: backend, note) too. ``backend`` overrides the one
    made from ``ref`` (tests pass their own)."""

    def __init__(self, ref: Optional[ModelRef], options: VideoOptions = VideoOptions(),
                 on_progress: Optional[Callable[[VideoProgress], None]] = None,
                 on_message: Optional[Callable[[str, str], None]] = None, backend=None):
        if ref is None and backend is None:
            raise ValueError("give a model or a backend")
        self.ref, self.options, self.backend = ref, options, backend
        self.on_progress = on_progress or (lambda p: None)
        self.on_message = on_message or (lambda kind, text: None)
        self.stats = PipelineStats()
        self.look = look_for(ref, *asked_look(options))
        self._turns = 0  # quarter turns (counter-clockwise) that make the stored frames upright

    # -- planning ----------------------------------------------------------------------------------
    def output_path(self, src: Path) -> Path:
        target = self.ref.target if self.ref else "converted"
        out = self.options.output
        dst = Path(out) if out else default_output(src, target)
        if dst.is_dir() or (out and str(out).endswith(("/", os.sep))):  # a folder, made if missing
            dst = dst / default_output(src, target).name
        if dst.resolve() == src.resolve():
            raise UsageError(f"{dst}: that is the input; give another -o")
        if dst.exists() and not self.options.overwrite:
            raise UsageError(f"{dst} already exists: pass --overwrite to replace it, or give another -o")
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:  # a file in the way, no permission, a read-only disk
            raise UsageError(f"{dst}: cannot make its folder {dst.parent} ({e.strerror or e}); give another -o") from None
        return dst

    def plan(self, info: VideoInfo) -> OutputPlan:
        opt = self.options
        check_encoder(opt.codec)
        pix_fmt = choose_pix_fmt(info, opt.codec, opt.pix_fmt)
        options, bit_rate = encoder_options(opt.codec, opt.crf, opt.preset, opt.bitrate)
        work = fit_within(info.width, info.height, opt.max_side)
        out_w, out_h = work if opt.work_size else (info.width, info.height)
        if opt.side_by_side:
            out_w *= 2
        sub_w, sub_h = subsampled(pix_fmt)
        even_w, even_h = out_w - (out_w % 2 if sub_w else 0), out_h - (out_h % 2 if sub_h else 0)
        if (even_w, even_h) != (out_w, out_h):
            self.on_message("note", f"{pix_fmt} needs even sides: writing {even_w}x{even_h} instead of {out_w}x{out_h}")
        if info.alpha and not has_alpha(pix_fmt):
            self.on_message("note", f"the video's transparency (alpha channel) left out: {opt.codec} writes {pix_fmt}, "
                                    "which has none (--codec libvpx-vp9 with a .webm or .mkv output keeps it)")
        c = info.colour
        converter = FrameConverter(matrix=c.matrix(info.height), full_range=c.full_range(info.pix_fmt),
                                   work_size=work, out_size=(even_w, even_h), pix_fmt=pix_fmt,
                                   primaries=c.primaries, trc=c.trc)
        return OutputPlan(opt.codec, pix_fmt, options, bit_rate, converter, no_audio=opt.no_audio)

    def _census(self, info: VideoInfo, work_size: tuple[int, int]):
        """Every frame has one working size (W, H, as stored): the census the CPU's compile plan
        decides from."""
        from .backends.base import padded_size
        from .census import ShapeCensus

        total = info.frame_estimate(self.options.start, self.options.duration)
        if not total:
            return None
        w, h = work_size
        if self._turns % 2:  # the model sees frames upright
            w, h = h, w
        census = ShapeCensus()
        census.plan(padded_size(h, w), total)
        census.complete.set()
        return census

    def _open_backend(self, census):
        """The router with its main backend open, and the statistics smoother for --stable (None
        when the backend has no PyTorch model: then --stable is the flow-guided blending alone)."""
        from .backends.router import BackendRouter
        from .converter import export_artifacts

        opt = self.options
        router = BackendRouter(self.ref, opt.backend_choice, main=self.backend, artifacts=export_artifacts(),
                               on_note=lambda s: self.on_message("note", s), close_given=False,
                               census=census)
        # --stable: the statistics hooks live in the PyTorch model
        stats = opt.stable and opt.stable_momentum > 0
        router.open("torch" if stats and opt.backend == "auto" and self.backend is None else None)
        smoother = None
        if opt.stable:
            from .stabilize import StableOptions, StatsSmoother

            model = getattr(router.main, "model", None)
            if model is None and not opt.stable_strength:
                name = router.main.name
                router.close()
                raise UsageError(f"smoothing the statistics alone needs the torch backend (got {name}); "
                                 "use --backend torch with a .pth model")
            if model is None and opt.stable_momentum:
                self.on_message("note", f"--stable with {router.main.name}: flow-guided blending only "
                                        "(smoothing the InstanceNorm statistics needs --backend torch)")
            elif opt.stable_momentum:
                smoother = StatsSmoother(model, StableOptions(momentum=opt.stable_momentum)).install()
        return router, smoother

    # -- running -----------------------------------------------------------------------------------
    def run(self, src: Path) -> VideoResult:
        src = Path(src)
        opt = self.options
        if src.is_dir():
            raise UsageError(f"{src}: is a folder; ccv video converts one video file")
        if not src.is_file():
            raise UsageError(f"{src}: no such file")
        dst = self.output_path(src)
        check_encoder(opt.codec)
        check_output(dst, opt.codec)
        info = probe(src)
        if info.colour.hdr and not opt.allow_hdr:
            raise UsageError(f"{src}: HDR video ({info.colour.hdr} transfer); the model was trained on SDR "
                             "images and its colours would be wrong. Convert to SDR first, or pass --allow-hdr "
                             "to convert the code values as they are (tags kept, no tone mapping)")
        if opt.start and info.duration_s is not None and opt.start >= info.duration_s:
            raise UsageError(f"--start {opt.start:g}: the video is only {info.duration_s:.2f} s long")
        plan = self.plan(info)
        # the model sees frames upright, as the viewer does (a portrait phone clip is stored sideways);
        # the results are turned back, so the output keeps the input's storage and rotation tag
        self._turns = (info.rotation // 90) % 4 if info.rotation % 90 == 0 else 0
        self.on_message("note", f"{src.name}: {info.width}x{info.height} {info.codec} {info.pix_fmt}, "
                                f"{info.colour.describe(info.height, info.pix_fmt)}"
                                + (f", rotated {info.rotation}°" if info.rotation else ""))
        router, smoother = self._open_backend(self._census(info, plan.converter.work_size))
        blender = None
        if opt.stable and opt.stable_strength:
            from .temporal import OutputBlender

            blender = OutputBlender(self._temporal_options())
        try:
            self.on_message("backend", router.describe())
            if not self.look.raw:
                self.on_message("note", look_note(self.look, self.ref, asked_look(opt)))
            batch = opt.batch_size or router.default_batch
            with atomic_path(dst, suffix=dst.suffix) as tmp:
                result = self._convert(src, tmp, info, plan, router, smoother, blender, batch)
            result.output = dst
            return result
        finally:
            if smoother is not None:
                smoother.remove()
            router.close()

    def _temporal_options(self):
        from .temporal import TemporalOptions

        return TemporalOptions(strength=self.options.stable_strength)

    def _convert(self, src: Path, tmp: Path, info: VideoInfo, plan: OutputPlan, router, smoother, blender,
                 batch: int) -> VideoResult:
        import av

        opt = self.options
        t_start = time.perf_counter()
        in_c = open_input(src)
        out_c = None
        try:
            # chapters are cut and moved as the frames are: [--start, --start + --duration) becomes [0, ...)
            lo = info.start_s + opt.start if opt.start else None
            hi = None if opt.duration is None else (lo if lo is not None else info.start_s) + opt.duration
            out_c, out_video, mapping, dropped = open_output(tmp, plan, info, in_c, (lo, hi))
            for line in dropped:
                self.on_message("note", line)
            source = _VideoSource(opt, in_c, info, plan.converter, mapping,
                                  self._temporal_options() if blender is not None else None)
            sink = _VideoSink(opt, out_c, out_video, info, plan.converter, mapping)
            total = info.frame_estimate(opt.start, opt.duration)

            def tick(final: bool = False) -> None:
                done = sink.written
                estimate = done if final else (max(total, done) if total is not None else None)
                self.on_progress(VideoProgress(done, estimate, time.perf_counter() - t_start, self.rates()))

            config = PipelineConfig(decode_workers=0, encode_workers=1, batch_size=batch, max_pending=batch,
                                    queue_items=opt.queue_frames, on_interrupt="raise", progress_every_s=0.1)
            runner = Pipeline(config, None, lambda frames: self._infer(router, smoother, blender, frames), sink.write,
                              group=lambda frame: 0, on_failed=_no_item_failures, job_of=lambda item: item,
                              on_tick=tick, passthrough=_is_copy)
            self.stats = runner.stats
            runner.run(source)
            sink.finish()
            if sink.written == 0:
                raise MediaError(f"{src}: no frame could be decoded" + (f" ({source.problem})" if source.problem else "")
                                 + (" in the range asked for" if opt.start or opt.duration else ""))
            try:
                out_c.close()  # writes the index: a muxer can still refuse a stream here
            except av.error.FFmpegError as e:
                raise MediaError(f"{src}: the {out_c.format.name} output could not be finished ({_reason(e)})") from None
            finally:
                out_c = None
            return VideoResult(tmp, sink.written, router.describe(), time.perf_counter() - t_start,
                               self.rates(), source.notes, source.problem)
        finally:
            if out_c is not None:
                try:
                    out_c.close()
                except Exception:  # noqa: BLE001  (the file is being thrown away)
                    pass
            in_c.close()

    def _infer(self, router, smoother, blender, frames: list[_Frame]) -> list[_Frame]:
        """The infer stage: upright frames, padded to the model's multiple, through the router; with
        --stable each result is then blended with the previous one (frames arrive in order)."""
        import torch

        from .backends.base import padded_size, pad_rgb

        if smoother is not None:
            smoother.begin([f.cut for f in frames])
        k = self._turns
        batch = np.stack([np.rot90(f.rgb, k) for f in frames])
        h, w = batch.shape[1:3]
        batch = pad_rgb(batch, *padded_size(h, w))  # frames 1 to 7 pixels high or wide included
        out = router.for_size(h, w, "frames").infer(torch.from_numpy(batch)).numpy()[:, :h, :w]
        for f, o in zip(frames, out):
            f.result = np.ascontiguousarray(np.rot90(o, -k) if k else o)
            if blender is not None:  # in stored orientation, as the source's flow is
                f.result = blender(f.motion, f.result)
                f.motion = None  # its memory is not needed past here
            # the look after the blend: colours and strength are per pixel, and the strokes follow
            # this frame's own forms, so they keep the blend's steadiness (measured: they add to it,
            # docs/video.md). On this inference thread; a few percent of a CPU frame's time
            f.result = apply_look(f.result, f.rgb, self.look)
        return frames

    def rates(self) -> dict[str, float]:
        """Frames per second each stage sustains (decode, infer, encode)."""
        s = self.stats
        return {"decode": s.decode.rate, "infer": s.infer.rate, "encode": s.encode.rate}


class _VideoSource:
    """The source: every frame in order with its pts, as RGB at the working size, and the audio and
    subtitle packets to copy (iterated by the runner's feeder thread)."""

    def __init__(self, options: VideoOptions, container, info: VideoInfo, frame_converter: FrameConverter,
                 mapping: dict, temporal=None):
        self.options, self.container, self.info = options, container, info
        self.temporal = temporal  # temporal.TemporalOptions: the flow of the input frames, for --stable
        self.frame_converter, self.mapping = frame_converter, mapping
        self.problem: Optional[str] = None
        self.notes: list[str] = []
        self.decoded = 0
        self.discarded = 0  # video packets the file's own edit list leaves out (FFmpeg shows none of them)
        self.first_pts: Optional[int] = None  # of the first frame converted

    def __iter__(self) -> Iterator[Union[_Frame, _Copy]]:
        import av

        opt, info = self.options, self.info
        video_stream = self.container.streams.video[0]
        video_stream.thread_type = "AUTO"  # frame and slice threads inside FFmpeg: several times faster
        decoder = alpha_decoder(video_stream) if self.frame_converter.alpha else None
        time_base = info.time_base
        # --start and --duration count from the video's first frame, which MPEG-TS and some other
        # containers put at a non-zero time (1.4 s is common).
        start = Fraction(info.start_s).limit_denominator(1_000_000) + Fraction(opt.start).limit_denominator(1_000_000)
        end = None if opt.duration is None else start + Fraction(opt.duration).limit_denominator(1_000_000)
        shift = round(start / time_base) if opt.start else 0  # output time 0 is --start
        if opt.start:
            _seek_at_or_before(self.container, video_stream, int(start / time_base))
        step = round(1 / (info.rate * time_base)) if info.rate else 1
        detector = analyzer = None
        if opt.stable:
            from .stabilize import SceneCutDetector

            detector = SceneCutDetector()
            if self.temporal is not None:
                from .temporal import FlowAnalyzer

                analyzer = FlowAnalyzer(self.temporal)
        last_pts: Optional[int] = None
        last_dur = step
        fixed = 0
        streams = [video_stream] + [self.container.streams[i] for i in self.mapping]
        bad_packets = 0
        done = False
        try:
            for packet in self.container.demux(streams):
                if packet.stream.index != video_stream.index:
                    if (copy := self._copy(packet, start, end)) is not None:
                        yield copy
                    continue
                if packet.is_discard and packet.size:
                    self.discarded += 1  # the decoder drops its frame, as every player does
                try:
                    decoded = decode(decoder, packet)
                except av.error.FFmpegError as e:
                    bad_packets += 1
                    self._note_bad(e, last_pts, time_base)
                    continue
                for frame in decoded:
                    pts = frame.pts
                    if pts is None:  # some containers (raw streams, AVI) carry none: continue the clock
                        pts = 0 if last_pts is None else last_pts + last_dur
                    if last_pts is not None and pts <= last_pts:
                        pts = last_pts + 1  # encoders need increasing pts
                        fixed += 1
                    t = pts * time_base
                    if opt.start and t < start:
                        # without --start every decodable frame is kept, also those a camera's
                        # .mts puts before the stream's start time (leading frames of an open GOP)
                        continue
                    if end is not None and t >= end:
                        done = True
                        break
                    last_dur = frame.duration or step
                    if last_pts is not None and pts - last_pts > 0:
                        last_dur = frame.duration or (pts - last_pts)
                    last_pts = pts
                    if self.first_pts is None:
                        self.first_pts = pts
                    rgb, alpha = self.frame_converter.to_rgb_alpha(frame)
                    cut = detector(rgb) if detector is not None else False
                    motion = None
                    if analyzer is not None:
                        motion = analyzer(rgb, cut)
                        cut = cut or motion is None  # a cut the histograms missed restarts the statistics too
                    self.decoded += 1
                    duration = frame.duration or None
                    if duration and end is not None:  # the last frame kept is shown until --duration ends
                        duration = max(1, min(duration, int(end / time_base) - pts))
                    yield _Frame(pts - shift, duration, rgb, cut, motion, alpha=alpha)
                if done:
                    break
        except av.error.FFmpegError as e:
            where = f"{float(last_pts * time_base):.2f} s" if last_pts is not None else "the start"
            self.problem = f"the input is damaged: reading stopped at {where} after {self.decoded} frames ({_reason(e)})"
        if fixed:
            self.notes.append(f"{fixed} frames had repeated timestamps; each was moved one tick later")
        if bad_packets and self.problem and "some packets" in self.problem:
            self.problem = self.problem.replace("some packets", f"{bad_packets} video packets", 1)
        if self.problem is None:
            self._check_complete(last_pts, last_dur, time_base, end)

    def _note_bad(self, e: Exception, last_pts: Optional[int], time_base: Fraction) -> None:
        if self.problem is None:
            where = f"{float(last_pts * time_base):.2f} s" if last_pts is not None else "the start"
            self.problem = f"the input is damaged near {where}: some packets could not be decoded ({_reason(e)})"

    def _check_complete(self, last_pts: Optional[int], last_dur: int, time_base: Fraction, end) -> None:
        """A truncated file often just ends: compare with what its header promised. The frame count,
        where the container has one, decides: the duration also counts how long the last frame is
        shown, which a variable-rate phone video can make seconds long."""
        info, opt = self.info, self.options
        whole = not opt.start and opt.duration is None
        if whole and info.frames:
            expected = info.frames - self.discarded
            if self.decoded < expected:
                where = f"{float(last_pts * time_base):.2f} s" if last_pts is not None else "the start"
                self.problem = (f"the input ends early: decoding stopped at {where}, after {self.decoded} of "
                                f"{expected} frames (truncated or damaged file)")
            return
        if info.duration_s is not None and last_pts is not None and (info.rate or self.decoded > 1):
            expected_end = info.start_s + info.duration_s
            if end is not None:
                expected_end = min(expected_end, float(end))
            got = float((last_pts + last_dur) * time_base)  # the end of the last frame
            # a frame's length from the frames read: the container's rate can be a guess (1000/s, its
            # time base, for Matroska without a default duration, as OBS writes it)
            if self.decoded > 1 and self.first_pts is not None and last_pts > self.first_pts:
                frame_s = float((last_pts - self.first_pts) * time_base) / (self.decoded - 1)
            else:
                frame_s = 1 / float(info.rate)
            slack = 3 * frame_s + (0 if info.duration_exact else 1.0)
            if expected_end - got > slack:
                self.problem = (f"the input ends early: decoding stopped at {got:.2f} s of "
                                f"{expected_end:.2f} s (truncated or damaged file)")

    def _copy(self, packet, start: Fraction, end) -> Optional[_Copy]:
        """The packet to pass through, moved with --start; None if it falls outside the range."""
        if packet.pts is None and packet.dts is None:
            return None  # the demuxer's flush packet
        ptb = packet.time_base
        ts = packet.pts if packet.pts is not None else packet.dts
        lo = start if self.options.start else None  # without --start, nothing is cut or shifted at the front
        if lo is not None or end is not None:
            t = ts * ptb
            if (lo is not None and t < lo) or (end is not None and t >= end):
                return None
        if lo is not None:
            off = round(lo / ptb)
            if packet.pts is not None:
                packet.pts -= off
            if packet.dts is not None:
                packet.dts -= off
        return _Copy(packet)


def _seek_at_or_before(container, video_stream, target: int) -> None:
    """Seeks the video to a keyframe at or before pts ``target``. Demuxers without an index
    (MPEG-TS) may land after it, or nowhere: then decoding starts from the beginning (the reader
    skips frames before --start), never from a later point that would silently cut the start."""
    container.seek(target, stream=video_stream, backward=True)
    first = next((f.pts for p in container.demux(video_stream) for f in p.decode() if f.pts is not None), None)
    if first is None or first > target:
        container.seek(0, stream=video_stream, backward=True)  # 0: even where the stream starts later
    else:
        container.seek(target, stream=video_stream, backward=True)


class _VideoSink:
    """The encode stage and sink (one thread, frames in order): frames back to YUV with the source's
    matrix, encoded with their pts; copied packets muxed as they come (the muxer interleaves them by
    time). ``finish`` flushes the encoder once the runner is done.

    Encoders drop the frames' durations, and a muxer takes the last frame's from its packet (else it
    repeats the one before), so a phone video whose last frame is shown for 1.5 s came out 1.5 s
    short: each packet gets its frame's duration back."""

    def __init__(self, options: VideoOptions, container, video_stream, info: VideoInfo,
                 frame_converter: FrameConverter, mapping: dict):
        self.options, self.container, self.video_stream, self.info = options, container, video_stream, info
        self.frame_converter, self.mapping = frame_converter, mapping
        self.written = 0  # frames encoded
        self._durations: dict[Fraction, Fraction] = {}  # seconds: pts -> duration of frames in the encoder

    def write(self, item: Union[_Frame, _Copy]) -> None:
        import av

        if isinstance(item, _Copy):
            item.packet.stream = self.mapping[item.packet.stream.index]
            self._mux(item.packet)
            return
        out_w, out_h = self.frame_converter.out_size
        rgb = np.concatenate([item.rgb, item.result], axis=1) if self.options.side_by_side else item.result
        alpha = item.alpha
        if alpha is not None and self.options.side_by_side:
            alpha = np.concatenate([alpha, alpha], axis=1)
        if rgb.shape[1] == out_w + 1 or rgb.shape[0] == out_h + 1:  # odd side with 4:2:0: crop, not rescale
            rgb = rgb[:out_h, :out_w]
            alpha = None if alpha is None else alpha[:out_h, :out_w]
        out_frame = self.frame_converter.from_rgb(rgb, alpha)
        out_frame.pts = item.pts
        out_frame.time_base = self.info.time_base
        if item.duration:
            out_frame.duration = item.duration
            self._durations[item.pts * self.info.time_base] = item.duration * self.info.time_base
        try:
            packets = self.video_stream.encode(out_frame)
        except av.error.FFmpegError as e:
            raise MediaError(f"{self.video_stream.codec_context.name}: encoding failed ({_reason(e)})") from None
        self._mux_video(packets)
        self.written += 1

    def finish(self) -> None:
        self._mux_video(self.video_stream.encode(None))  # flush: the encoder holds frames for its lookahead

    def _mux_video(self, packets) -> None:
        for packet in packets:
            if packet.pts is not None and packet.time_base:
                duration = self._durations.pop(packet.pts * packet.time_base, None)
                if duration:
                    packet.duration = round(duration / packet.time_base)
        self._mux(packets)

    def _mux(self, packets) -> None:
        import av

        try:
            self.container.mux(packets)
        except av.error.FFmpegError as e:  # the muxer refused a packet (one a container cannot take)
            raise MediaError(f"the {self.container.format.name} output could not be written ({_reason(e)})") from None
