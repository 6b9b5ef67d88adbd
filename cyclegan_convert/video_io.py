"""Video in and out with PyAV (FFmpeg's libraries, in-process): what a source is, how its frames
become RGB and back, and an output that keeps timing, audio, rotation, aspect and colour.

Colour: YUV is converted with the source's own matrix (BT.601, BT.709, ...) and range (limited or
full), never a default; the output is tagged with what was used. Timing: the encoder works in the
input's time base and each frame keeps its pts, so variable frame rate survives. Audio and
subtitles are copied packet for packet (no re-encoding).
"""
from __future__ import annotations

import functools
import math
import os
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Optional

import numpy as np

from .errors import MediaError, UsageError
from .formats import HDR_TRANSFERS

# Encoders tried in this order when naming alternatives; the build decides which exist.
KNOWN_ENCODERS = ("libx264", "libx265", "libvpx-vp9", "libsvtav1", "h264_nvenc", "hevc_nvenc", "av1_nvenc", "mpeg4")
DEFAULT_CRF = {"libx264": 18, "libx265": 20, "libvpx-vp9": 31, "libsvtav1": 30, "libaom-av1": 30,
               "h264_nvenc": 21, "hevc_nvenc": 23, "av1_nvenc": 28}
KEEP_CONTAINER = {".mkv", ".mov"}  # these hold every stream; other inputs default to .mp4

# AVColorSpace -> the matrix swscale converts with (its names); what is not here is guessed
_MATRIX = {1: "ITU709", 4: "FCC", 5: "ITU601", 6: "ITU601", 7: "SMPTE240M", 9: "BT2020", 10: "BT2020"}
_MATRIX_TAG = {"ITU709": 1, "FCC": 4, "ITU601": 6, "SMPTE240M": 7, "BT2020": 9}
_UNSPECIFIED = 2
RANGE_LIMITED, RANGE_FULL = 1, 2  # AVColorRange: MPEG (16-235), JPEG (0-255)
_MAX_BAD_PACKETS_AT_START = 3000  # a long GOP at 60 frames/s, cut just after its keyframe
_GREY = ("gray", "ya")  # pixel formats swscale always converts as full range, whatever it is told


@dataclass(frozen=True)
class Colour:
    """The colour description of a stream, as FFmpeg's integer codes."""

    space: int = _UNSPECIFIED  # matrix (AVColorSpace)
    range: int = 0  # 0 unspecified, 1 limited, 2 full
    primaries: int = _UNSPECIFIED
    trc: int = _UNSPECIFIED  # transfer characteristic

    @property
    def hdr(self) -> Optional[str]:
        return HDR_TRANSFERS.get(self.trc)

    def matrix(self, height: int) -> str:
        """The YUV matrix to convert with: the tag, or for untagged video the usual convention
        (BT.709 for HD, BT.601 below 720 lines), which is what players assume too."""
        return _MATRIX.get(self.space) or ("ITU709" if height >= 720 else "ITU601")

    def full_range(self, pix_fmt: str) -> bool:
        if self.range in (RANGE_LIMITED, RANGE_FULL):
            return self.range == RANGE_FULL
        # the deprecated JPEG formats are full range by definition; FFmpeg (swscale, and so players
        # built on it) reads untagged grey as full range too
        return pix_fmt.startswith(("yuvj",) + _GREY)

    def describe(self, height: int, pix_fmt: str) -> str:
        rng = "full" if self.full_range(pix_fmt) else "limited"
        tagged = "" if self.space in _MATRIX else " (untagged: assumed)"
        return f"{self.matrix(height)} {rng} range{tagged}"


@dataclass(frozen=True)
class CopiedStream:
    index: int
    kind: str  # audio, subtitle, data (GoPro telemetry)
    codec: str
    language: Optional[str] = None


@dataclass(frozen=True)
class VideoInfo:
    """What a source holds, read once before converting."""

    path: Path
    width: int
    height: int
    pix_fmt: str
    bit_depth: int
    codec: str
    time_base: Fraction
    rate: Optional[Fraction]  # average frame rate (None when unknown)
    frames: Optional[int]  # from the container's index; None when it does not say
    duration_s: Optional[float]
    duration_exact: bool  # False when only the container's duration (audio included) is known
    start_s: float
    colour: Colour
    display_matrix: Optional[tuple[int, ...]]  # 9 int32, FFmpeg's layout; None: upright
    rotation: int  # degrees, counter-clockwise, as the display matrix says
    sar: Optional[Fraction]
    others: tuple[CopiedStream, ...] = field(default=())
    skipped: tuple[str, ...] = field(default=())  # a line per stream that is neither converted nor copied
    alpha: bool = False  # transparency decoded with the frames (WebM VP8/VP9: see ``alpha_decoder``)

    def frame_estimate(self, start_s: float = 0.0, duration_s: Optional[float] = None) -> Optional[int]:
        """Frames expected in [start, start + duration): the index count, else duration x rate."""
        whole = self.duration_s
        span = None
        if whole is not None:
            span = max(0.0, whole - start_s)
        if duration_s is not None:
            span = duration_s if span is None else min(span, duration_s)
        if self.frames and start_s == 0 and duration_s is None:
            return self.frames
        if span is None or not self.rate:
            return None
        return max(1, round(span * float(self.rate)))


def _tag_seconds(text: Optional[str]) -> Optional[float]:
    m = re.fullmatch(r"(\d+):(\d\d):(\d\d(?:\.\d+)?)", (text or "").strip())
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3)) if m else None


def _bit_depth(fmt) -> int:
    return max((c.bits for c in fmt.components), default=8)


def display_matrix_of(frame) -> Optional[tuple[int, ...]]:
    """The display matrix FFmpeg attached to a decoded frame (from the stream's side data)."""
    from av.sidedata.sidedata import Type

    try:
        # by type: PyAV 18.1.1 iterates over the types, earlier versions over the entries
        sd = frame.side_data[Type.DISPLAYMATRIX]
    except KeyError:
        return None
    except ValueError:
        # PyAV before 18.1.1 wraps every entry in its Type enum, which lacks newer FFmpeg types (an
        # Apple spatial video's view ids, 29): nothing of the list is readable then, but the rotation
        # is (PyAV reads it in C); a mirror in such a matrix is lost
        return rotation_matrix(frame.rotation)
    m = tuple(int(v) for v in np.frombuffer(bytes(sd), dtype=np.int32)[:9])
    return None if m == _UPRIGHT else m


_UPRIGHT = (65536, 0, 0, 0, 65536, 0, 0, 0, 1 << 30)


def rotation_matrix(degrees: float) -> Optional[tuple[int, ...]]:
    """FFmpeg's display matrix for a counter-clockwise rotation (PyAV's ``frame.rotation``, as
    ``av_display_rotation_get`` reads it; ``av_display_rotation_set`` takes clockwise degrees, hence
    the sign); None for upright."""
    r = math.radians(degrees)
    c, s = round(math.cos(r), 12), round(math.sin(r), 12)
    m = (int(c * 65536), int(-s * 65536), 0, int(s * 65536), int(c * 65536), 0, 0, 0, 1 << 30)
    return None if m == _UPRIGHT else m


def open_input(path: Path):
    import av

    try:
        return av.open(_local(path), "r")
    except FileNotFoundError:
        raise MediaError(f"{path}: no such file") from None
    except av.error.FFmpegError as e:
        raise MediaError(f"{path}: cannot read as video ({_reason(e)})") from None


def _local(path) -> str:
    """A path FFmpeg reads as a file: 'take:2.mp4' would be a URL of the (unknown) 'take' protocol."""
    return str(Path(path).absolute())


def _reason(e: Exception) -> str:
    msg = getattr(e, "strerror", None) or str(e)
    return str(msg).strip().splitlines()[0][:160] if msg else type(e).__name__


# WebM keeps VP8/VP9 transparency in a side channel (alpha_mode 1) that FFmpeg's own decoders leave
# out; libvpx's decoders read it and give frames with an alpha plane
_ALPHA_DECODERS = {"vp8": "libvpx", "vp9": "libvpx-vp9"}


def alpha_decoder(video_stream):
    """A decoder that keeps the stream's transparency, or None when it has none (or this FFmpeg
    build has no libvpx: then the transparency is left out, with a note)."""
    import av

    name = _ALPHA_DECODERS.get(video_stream.codec_context.name)
    if name is None or not _alpha_side_channel(video_stream):
        return None
    try:
        decoder = av.CodecContext.create(name, "r")
    except (ValueError, av.error.FFmpegError):
        return None
    if video_stream.codec_context.extradata:
        decoder.extradata = video_stream.codec_context.extradata
    decoder.thread_type = "AUTO"
    return decoder


def _alpha_side_channel(video_stream) -> bool:
    return str(video_stream.metadata.get("alpha_mode", "")).strip() == "1"


def decode(decoder, packet) -> list:
    """``packet``'s frames, from ``decoder`` if there is one (the stream's own otherwise)."""
    import av

    if decoder is None:
        return packet.decode()
    try:
        return decoder.decode(packet if packet.size else None)
    except av.error.EOFError:  # flushed already
        return []


@functools.lru_cache(maxsize=None)  # asked for every frame, of a handful of formats
def has_alpha(pix_fmt: str) -> bool:
    import av

    return any(c.is_alpha for c in av.VideoFormat(pix_fmt, 16, 16).components)


def probe(path: Path, container=None) -> VideoInfo:
    """Reads stream parameters and the first frame (colour tags and rotation live on frames)."""
    import av

    own = container is None
    c = container or open_input(path)
    try:
        if not c.streams.video:
            raise MediaError(f"{path}: no video stream")
        video_stream = c.streams.video[0]
        cc = video_stream.codec_context
        # the container's tags, before decoding replaces them with the bitstream's (which may say
        # "unspecified" where the container says BT.709)
        cc_tags = (cc.colorspace, cc.color_range, cc.color_primaries, cc.color_trc)
        first, bad, error = None, 0, None
        decoder = alpha_decoder(video_stream)
        try:
            for packet in c.demux(video_stream):
                try:
                    frames = decode(decoder, packet)
                except av.error.FFmpegError as e:
                    # a recording that starts mid-stream (MPEG-TS cut at the head) has packets that
                    # cannot be decoded before its first keyframe and parameter sets: skip them, as
                    # players do; the reader says how many were lost
                    bad, error = bad + 1, e
                    if bad > _MAX_BAD_PACKETS_AT_START:
                        break
                    continue
                if frames:
                    first = frames[0]
                    break
        except av.error.FFmpegError as e:
            raise MediaError(f"{path}: cannot read the video stream ({cc.name}: {_reason(e)})") from None
        if first is None and error is not None:
            raise MediaError(f"{path}: cannot decode the video stream ({cc.name}: {_reason(error)})")
        if first is None:
            raise MediaError(f"{path}: the video stream has no decodable frames")
        fmt = first.format
        # frames carry the tags the decoder found; the codec context has them from the container
        colour = Colour(
            space=first.colorspace if first.colorspace != _UNSPECIFIED else cc_tags[0],
            range=first.color_range or cc_tags[1],
            primaries=first.color_primaries if first.color_primaries != _UNSPECIFIED else cc_tags[2],
            trc=first.color_trc if first.color_trc != _UNSPECIFIED else cc_tags[3],
        )
        start = float(video_stream.start_time * video_stream.time_base) if video_stream.start_time is not None and video_stream.time_base else 0.0
        # duration_s is the span from the first frame (start_s) to the end of the last one
        dur, exact = None, True
        if video_stream.duration and video_stream.time_base:
            dur = float(video_stream.duration * video_stream.time_base)
        elif _tag_seconds(video_stream.metadata.get("DURATION")) is not None:  # Matroska writes one per stream
            # FFmpeg's muxer writes the time the stream ends, not its span: a video that starts at
            # 0.5 s (audio first) would otherwise look 0.5 s longer than it is, and truncated
            dur = max(0.0, _tag_seconds(video_stream.metadata.get("DURATION")) - start)
        elif c.duration:
            # the whole file's, audio included, counted from the earliest stream's start
            end = (c.start_time or 0) / 1_000_000 + c.duration / 1_000_000
            dur, exact = max(0.0, end - start), False
        others = tuple(
            CopiedStream(s.index, s.type, s.codec_context.name, s.language)
            for s in c.streams if s.type in ("audio", "subtitle")
        ) + tuple(CopiedStream(s.index, "data", GOPRO_TELEMETRY) for s in c.streams if _is_gopro_telemetry(s))
        copied = {o.index for o in others}
        skipped = tuple(_skipped_line(s) for s in c.streams if s.index != video_stream.index and s.index not in copied)
        alpha = has_alpha(fmt.name)
        if _alpha_side_channel(video_stream) and not alpha:
            # WebM's VP8/VP9 transparency, with no libvpx to read it: said, not silently lost
            skipped += ("the video's transparency (alpha channel) left out: the output is opaque",)
        sar = video_stream.sample_aspect_ratio if video_stream.sample_aspect_ratio else cc.sample_aspect_ratio
        return VideoInfo(
            path=Path(path), width=first.width, height=first.height, pix_fmt=fmt.name, bit_depth=_bit_depth(fmt),
            codec=cc.name, time_base=video_stream.time_base, rate=video_stream.average_rate or video_stream.guessed_rate or None,
            frames=video_stream.frames or None, duration_s=dur, duration_exact=exact, start_s=start, colour=colour,
            display_matrix=display_matrix_of(first), rotation=first.rotation,
            sar=sar if sar and sar != 1 else None, others=others, skipped=skipped, alpha=alpha,
        )
    finally:
        if own:
            c.close()


GOPRO_TELEMETRY = "gpmd"  # GoPro's GPS, accelerometer and gyroscope track


def _is_gopro_telemetry(s) -> bool:
    """A GoPro's telemetry track (a timed data track FFmpeg's MP4 muxer writes back as 'gpmd',
    the only kind of data track it can). Other timed metadata (Apple's 'mebx' camera motion, for
    one) it would mislabel, so those are left out with a note."""
    return s.type == "data" and s.metadata.get("handler_name", "").strip() == "GoPro MET"


def _skipped_line(s) -> str:
    try:
        codec = s.codec_context.name if s.codec_context is not None else None
    except Exception:  # noqa: BLE001  (attachments and data streams may have no codec context)
        codec = None
    codec = codec or getattr(getattr(s, "codec", None), "name", None) or "unknown codec"
    if s.type == "video":
        cover = bool(int(s.disposition) & 1024)  # AV_DISPOSITION_ATTACHED_PIC
        what = "cover picture" if cover else "only the first video stream is converted"
        return f"video stream #{s.index} ({codec}) left out: {what}"
    return f"{s.type} stream #{s.index} ({codec}) left out: ccv video copies only audio, subtitles and GoPro telemetry"


# -- encoders ---------------------------------------------------------------------------------------
def available_encoders() -> list[str]:
    import av

    return [e for e in KNOWN_ENCODERS if e in av.codecs_available]


def check_encoder(name: str):
    """The encoder ``name``, or a one-line error naming the ones this build has."""
    import av

    try:
        codec = av.codec.Codec(name, "w")
    except Exception:  # UnknownCodecError, or a decoder-only name
        codec = None
    if codec is None or codec.type != "video":
        raise UsageError(f"--codec {name}: no such video encoder in this FFmpeg build; "
                         f"available: {', '.join(available_encoders())}")
    return codec


def encoder_formats(name: str) -> list[str]:
    return [f.name for f in (check_encoder(name).video_formats or ())]


def choose_pix_fmt(info: VideoInfo, codec: str, requested: Optional[str]) -> str:
    """The output pixel format: as asked, else the source's (JPEG 'yuvj' formats as their plain
    equivalent with a full-range tag; grey sources get a colour format), else 4:2:0 at the source's
    depth where the encoder allows."""
    formats = encoder_formats(codec)
    if requested:
        if formats and requested not in formats:
            raise UsageError(f"--pix-fmt {requested}: {codec} cannot encode it; it takes {', '.join(formats)}")
        return requested
    src = info.pix_fmt.replace("yuvj", "yuv")
    if src in formats and _has_colour(src):  # grey in: the model's output is in colour all the same
        return src
    if src.startswith("yuv"):
        # the same chroma resolution at the nearest depth the encoder takes: 12-bit 4:4:4 (ProRes
        # 4444) or 4:4:4 with alpha becomes 4:4:4 10-bit, not 4:2:0, with libx264
        h, v = subsampled(src)
        chroma = "420" if h and v else "422" if h else "444" if not v else None
        depths = ([] if info.bit_depth > 8 else [""]) + (["12le", "10le"] if info.bit_depth >= 12 else ["10le"]
                                                         if info.bit_depth > 8 else [])
        for depth in depths if chroma else ():
            cand = f"yuv{chroma}p{depth}"
            if cand in formats:
                return cand
    if info.bit_depth > 8:
        for f in ("yuv420p10le", "p010le"):
            if f in formats:
                return f
    return "yuv420p" if "yuv420p" in formats or not formats else formats[0]


def _has_colour(pix_fmt: str) -> bool:
    """Whether the format holds colour: RGB, or YUV with chroma planes (not grey, grey + alpha, a palette)."""
    import av

    f = av.VideoFormat(pix_fmt, 16, 16)
    return f.is_rgb or any(not c.is_luma and not c.is_alpha for c in f.components)


def encoder_options(codec: str, crf: Optional[int], preset: Optional[str], bitrate: Optional[str]) -> tuple[dict[str, str], Optional[int]]:
    """FFmpeg private options and a bit rate for ``codec``: constant quality unless a bitrate is set."""
    opts: dict[str, str] = {}
    bit_rate = parse_bitrate(bitrate) if bitrate else None
    quality = crf if crf is not None else (None if bit_rate else DEFAULT_CRF.get(codec))
    if codec in ("libx264", "libx265", "libsvtav1", "libaom-av1"):
        if quality is not None:
            opts["crf"] = str(quality)
        if preset:
            opts["preset"] = preset
        if codec == "libx265":
            opts["x265-params"] = "log-level=error"
        if codec == "libsvtav1":
            os.environ.setdefault("SVT_LOG", "1")  # errors only: SVT-AV1 prints its whole config otherwise
    elif codec == "libvpx-vp9":
        if quality is not None:
            opts["crf"] = str(quality)
            if not bit_rate:
                opts["b"] = "0"  # constant quality mode
        opts["row-mt"] = "1"
        if preset:
            if preset not in ("good", "best", "realtime"):
                raise UsageError("--preset for libvpx-vp9 is good, best or realtime")
            opts["deadline"] = preset
    elif codec.endswith("_nvenc"):
        if quality is not None:
            opts.update(rc="vbr", cq=str(quality))
        if preset:
            opts["preset"] = preset
    else:
        if crf is not None or preset:
            raise UsageError(f"--crf and --preset are not supported for {codec}; use --bitrate")
        bit_rate = bit_rate or 8_000_000
    return opts, bit_rate


def parse_bitrate(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*(?:b|bps)?\s*", text)
    if not m:
        raise UsageError(f"--bitrate {text!r}: use a number with an optional k or M, e.g. 8M or 2500k")
    mult = {"": 1, "k": 1_000, "m": 1_000_000}[m.group(2).lower()]
    return int(float(m.group(1)) * mult)


# -- pixels -----------------------------------------------------------------------------------------
def _interp(*names: str):
    from av.video.reformatter import Interpolation

    flags = Interpolation[names[0]]
    for n in names[1:]:
        flags |= Interpolation[n]
    return flags


@dataclass(frozen=True)
class FrameConverter:
    """YUV frames to RGB arrays at the working size, and RGB arrays back to the output format,
    with the source's matrix and range in both directions."""

    matrix: str  # swscale name: ITU601, ITU709, ...
    full_range: bool
    work_size: tuple[int, int]  # (W, H) the model sees
    out_size: tuple[int, int]  # (W, H) of the encoded frames
    pix_fmt: str
    primaries: int
    trc: int

    def to_rgb_alpha(self, frame) -> tuple[np.ndarray, Optional[np.ndarray]]:
        """(RGB, alpha or None) at the working size; alpha only where the output keeps it."""
        w, h = self.work_size
        scaling = (w, h) != (frame.width, frame.height)
        interp = _interp("AREA" if scaling else "BILINEAR", "ACCURATE_RND", "FULL_CHR_H_INT")
        keep_alpha = self.alpha and has_alpha(frame.format.name)
        out = frame.to_ndarray(width=w, height=h, format="rgba" if keep_alpha else "rgb24", src_colorspace=self.matrix,
                               src_color_range="JPEG" if self.full_range else "MPEG", interpolation=interp)
        return (np.ascontiguousarray(out[..., :3]), np.ascontiguousarray(out[..., 3])) if keep_alpha else (out, None)

    @property
    def out_full_range(self) -> bool:
        """The output's range: the source's, except that grey output is always full range (swscale
        writes it so, whatever range it is asked for), and is tagged so."""
        return self.full_range or self.pix_fmt.startswith(_GREY)

    @property
    def alpha(self) -> bool:
        """Whether the output format has an alpha plane (the source's transparency is kept)."""
        return has_alpha(self.pix_fmt)

    def from_rgb(self, rgb: np.ndarray, alpha: Optional[np.ndarray] = None):
        import av

        w, h = self.out_size
        if alpha is not None and self.alpha:
            src = av.VideoFrame.from_ndarray(np.ascontiguousarray(np.dstack([rgb, alpha])), format="rgba")
        else:
            src = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        scaling = (w, h) != (src.width, src.height)
        interp = _interp("BICUBIC" if scaling else "BILINEAR", "ACCURATE_RND", "FULL_CHR_H_INP")
        out = src.reformat(width=w, height=h, format=self.pix_fmt, dst_colorspace=self.matrix,
                           dst_color_range="JPEG" if self.out_full_range else "MPEG", interpolation=interp)
        # tags only: handing swscale a transfer or primaries makes it convert gamuts and tone-map
        # (slowly), where the model's output is meant to be read with the source's own
        out.color_trc, out.color_primaries = self.trc, self.primaries
        out.colorspace = _MATRIX_TAG[self.matrix]
        out.color_range = RANGE_FULL if self.out_full_range else RANGE_LIMITED
        return out


def fit_within(width: int, height: int, max_side: Optional[int]) -> tuple[int, int]:
    """(W, H) scaled down so the longer side is at most ``max_side``; even sides, aspect kept."""
    if not max_side or max(width, height) <= max_side:
        return width, height
    s = max_side / max(width, height)
    return max(2, round(width * s / 2) * 2), max(2, round(height * s / 2) * 2)


def subsampled(pix_fmt: str) -> tuple[bool, bool]:
    """Whether the format halves chroma horizontally and vertically (then sides must be even)."""
    import av

    f = av.VideoFormat(pix_fmt, 16, 16)
    chroma = [c for c in f.components if not c.is_luma and not c.is_alpha]
    if not chroma:
        return False, False
    return chroma[0].width < 16, chroma[0].height < 16


# -- output -----------------------------------------------------------------------------------------
# containers that store no timestamps: variable frame rate and exact times cannot be kept
_NO_TIMESTAMPS = {"avi"}


def check_output(dst: Path, codec: str) -> None:
    """A usage error, before any work, for an output that FFmpeg cannot write: no or unknown
    extension, a container without timestamps, or one that cannot hold ``codec``."""
    import av

    if not dst.suffix:
        raise UsageError(f"{dst}: no extension to choose the container by; give a name ending in .mp4, .mkv, "
                         ".mov or .webm (or an existing folder, or one ending in /)")
    try:
        c = av.open(_local(dst), "w")  # guesses the format from the name; writes nothing yet
    except ValueError:
        raise UsageError(f"{dst}: FFmpeg knows no container for '{dst.suffix}' files; use .mp4, .mkv, .mov "
                         "or .webm") from None
    except av.error.FFmpegError as e:
        raise MediaError(f"{dst}: cannot write ({_reason(e)})") from None
    try:
        if c.format.name in _NO_TIMESTAMPS:
            raise UsageError(f"{dst}: {c.format.name.upper()} stores no timestamps, so the timing could not be "
                             "kept; write .mp4, .mkv or .mov")
        try:
            c.add_stream(codec)
        except ValueError:
            hint = "--codec libvpx-vp9 or libsvtav1, or write .mkv" if c.format.name == "webm" else "write .mkv"
            raise UsageError(f"{dst}: the {c.format.name} container cannot hold {codec} video; use {hint}") from None
    finally:
        c.close()


def default_output(src: Path, target: str) -> Path:
    ext = src.suffix.lower() if src.suffix.lower() in KEEP_CONTAINER else ".mp4"
    return src.with_name(f"{src.stem}_{target}{ext}")


@dataclass(frozen=True)
class OutputPlan:
    """Everything the output container needs, decided before the first frame."""

    codec: str
    pix_fmt: str
    options: dict[str, str]
    bit_rate: Optional[int]
    converter: FrameConverter
    no_audio: bool = False


def copy_chapters(out, in_container, lo: Optional[float] = None, hi: Optional[float] = None) -> None:
    """The input's chapters (times and titles) into ``out``: those in [lo, hi) seconds, cut to it,
    and moved so that ``lo`` is 0 (as --start moves everything); all of them, unmoved, by default."""
    import av

    try:
        chapters = in_container.chapters()
    except (AttributeError, av.error.FFmpegError):  # an older PyAV, or a demuxer without them
        return
    kept = []
    for ch in chapters:
        tb = ch["time_base"]
        start, end = ch["start"] * tb, ch["end"] * tb
        if (hi is not None and start >= hi) or (lo is not None and (end <= lo if end > start else start < lo)):
            continue  # outside the window (a chapter without length is a point: kept if it is inside)
        if lo is not None:
            start, end = max(start, Fraction(lo)) - Fraction(lo), end - Fraction(lo)
        if hi is not None:
            end = min(end, Fraction(hi) - Fraction(lo or 0))
        kept.append(dict(ch, start=round(start / tb), end=max(round(end / tb), round(start / tb))))
    if kept:
        out.set_chapters(kept)


def open_output(tmp: Path, plan: OutputPlan, info: VideoInfo, in_container,
                window: Optional[tuple[Optional[float], Optional[float]]] = None):
    """Opens ``tmp`` and writes its header: a video stream for the encoder, one copied stream
    per audio/subtitle stream it can hold. Returns (container, video stream, {input index: output
    stream}, [a line per stream left out])."""
    import av

    try:
        out = av.open(_local(tmp), "w")
    except av.error.FFmpegError as e:
        raise MediaError(f"{tmp}: cannot write ({_reason(e)})") from None
    try:
        in_vs = in_container.streams.video[0]
        video_stream = out.add_stream(plan.codec, rate=info.rate or Fraction(25))
        w, h = plan.converter.out_size
        video_stream.width, video_stream.height, video_stream.pix_fmt = w, h, plan.pix_fmt
        cc = video_stream.codec_context
        cc.time_base = info.time_base  # frames keep their pts: variable frame rate survives
        video_stream.time_base = info.time_base
        if info.rate:
            cc.framerate = info.rate
        cc.colorspace = _MATRIX_TAG[plan.converter.matrix]
        cc.color_range = RANGE_FULL if plan.converter.out_full_range else RANGE_LIMITED
        cc.color_primaries = plan.converter.primaries
        cc.color_trc = plan.converter.trc
        if info.sar:
            cc.sample_aspect_ratio = info.sar
        if plan.bit_rate:
            cc.bit_rate = plan.bit_rate
        cc.options = dict(plan.options)
        if info.display_matrix:
            video_stream.set_display_matrix(list(info.display_matrix))
        for k, v in in_vs.metadata.items():
            if k.lower() in ("language", "title"):
                video_stream.metadata[k] = v
        mapping = {}
        copy, dropped = streams_to_copy(info, out, plan.no_audio)
        for s in copy:
            src = in_container.streams[s.index]
            mapping[s.index] = dst = out.add_stream_from_template(src)
            if src.type == "audio":
                layout = src.codec_context.layout
                if layout.name == f"{len(layout.channels)} channels":
                    # Matroska and WAV-style PCM store only a channel count, which decoders play in the
                    # default layout; the MP4/MOV muxer needs that layout spelled out, else writing
                    # the end of the file fails ("unsupported channel layout")
                    dst.codec_context.layout = av.AudioLayout(f"{len(layout.channels)}c")
            for k, v in src.metadata.items():  # language, title: what players show in their menus
                if k.lower() in ("language", "title", "handler_name"):
                    dst.metadata[k] = v
            dst.disposition = src.disposition
        for k, v in in_container.metadata.items():
            if k.lower() not in ("encoder", "major_brand", "minor_version", "compatible_brands"):
                out.metadata[k] = v
        copy_chapters(out, in_container, *(window or (None, None)))
        try:
            out.start_encoding()
        except av.error.FFmpegError as e:
            hint = ("; is an NVIDIA GPU with its driver present? try --codec libx264" if plan.codec.endswith("_nvenc")
                    else "; check --preset, --crf, --bitrate and --pix-fmt for this encoder")
            raise UsageError(f"{plan.codec}: the encoder could not start ({_reason(e)}){hint}; "
                             f"available: {', '.join(available_encoders())}") from None
        return out, video_stream, mapping, dropped
    except BaseException:
        out.close()
        raise


def streams_to_copy(info: VideoInfo, out_container, no_audio: bool) -> tuple[list[CopiedStream], list[str]]:
    """The audio, subtitle and telemetry streams the output container can hold, and a line for each it cannot."""
    keep, dropped = [], list(info.skipped)
    holds = out_container.supported_codecs
    for s in info.others:
        if s.kind == "audio" and no_audio:
            continue
        if s.kind == "data":
            if out_container.format.name == "mp4":  # PyAV's .mov muxer refuses the data codec
                keep.append(s)
            else:
                dropped.append(f"data stream #{s.index} (GoPro telemetry: GPS, motion) left out: the "
                               f"{out_container.format.name} container cannot hold it (write to .mp4 to keep it)")
            continue
        if s.codec in holds:
            keep.append(s)
        else:
            dropped.append(f"{s.kind} stream #{s.index} ({s.codec}) left out: the {out_container.format.name} "
                           f"container cannot hold it ({_where_it_fits(s.codec, out_container.format.name)})")
    return keep, dropped


def _where_it_fits(codec: str, current: str) -> str:
    """Advice for a stream the output cannot hold: a container that can (mov_text, for one, fits
    .mp4 and .mov but not .mkv), never the one being written."""
    import av

    for fmt, ext in (("matroska", ".mkv"), ("mp4", ".mp4"), ("mov", ".mov")):
        if fmt != current:
            with av.open(os.devnull, "w", format=fmt) as c:
                if codec in c.supported_codecs:
                    return f"write to {ext} to keep it"
    return f"none of .mkv, .mp4 and .mov can hold {codec}"
