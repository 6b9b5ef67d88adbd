"""Short real clips for the video tests: a fixture photo panned and zoomed, a sine-wave audio track.

Every option here is something a user's file has: odd sizes, variable frame rate, a display
matrix, BT.601 or BT.709 tags, full range, 10 bits, several audio streams, subtitles.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Optional, Sequence

import av
import numpy as np
from PIL import Image

FIXTURES = Path(__file__).parent / "fixtures"
PHOTOS = sorted((FIXTURES / "photo").glob("*.jpg"))

MATRIX = {"bt709": ("ITU709", 1, 1, 1), "bt601": ("ITU601", 6, 6, 6)}  # swscale name, space, primaries, trc


@dataclass
class ClipSpec:
    size: tuple[int, int] = (142, 80)  # (W, H); 854x480 scaled down, as odd as the real thing
    frames: int = 12
    fps: int = 25
    pts_ms: Optional[Sequence[int]] = None  # variable frame rate: explicit times in ms
    codec: str = "libx264"
    pix_fmt: str = "yuv420p"
    colour: str = "bt709"
    full_range: bool = False
    trc: Optional[int] = None  # override the transfer tag (16 = PQ, 18 = HLG)
    rotation: int = 0
    audio_streams: int = 1
    audio_codec: str = "aac"  # or pcm_s16le, flac, ...
    stereo: bool = False
    subtitles: bool = False
    subtitle_codec: str = "subrip"  # or mov_text (MP4's own)
    photos: Sequence[Path] = ()  # one per shot; the frames are split evenly (cuts between them)
    sar: Optional[Fraction] = None
    last_hold_ms: Optional[int] = None  # the last frame shown this long (a phone's variable-rate video)
    mux_options: Optional[dict] = None  # the muxer's, e.g. {"movflags": "faststart"}
    telemetry: Optional[str] = None  # a timed data track with this handler name ("GoPro MET": GPS and motion)


def pan_zoom_frames(spec: ClipSpec) -> list[np.ndarray]:
    """Frames that pan across and zoom into real photos: motion like a camera's, not noise."""
    photos = list(spec.photos) or PHOTOS[:1]
    w, h = spec.size
    out = []
    per_shot = -(-spec.frames // len(photos))
    for i in range(spec.frames):
        img = Image.open(photos[min(i // per_shot, len(photos) - 1)]).convert("RGB")
        j = i % per_shot
        zoom = 1.0 - 0.25 * j / max(1, per_shot)
        cw, ch = img.width * zoom * 0.8, img.height * zoom * 0.8
        x0 = (img.width - cw) * j / max(1, per_shot)
        y0 = (img.height - ch) * 0.3
        out.append(np.array(img.resize((w, h), Image.BICUBIC, box=(x0, y0, x0 + cw, y0 + ch))))
    return out


def make_clip(path: Path, spec: ClipSpec = ClipSpec()) -> Path:
    matrix, space, prim, trc = MATRIX[spec.colour]
    tb = Fraction(1, 1000)
    pts = list(spec.pts_ms) if spec.pts_ms is not None else [round(i * 1000 / spec.fps) for i in range(spec.frames)]
    spec.frames = len(pts)
    with av.open(str(path), "w", options=spec.mux_options) as c:
        vs = c.add_stream(spec.codec, rate=spec.fps)
        vs.width, vs.height, vs.pix_fmt = spec.size[0], spec.size[1], spec.pix_fmt
        cc = vs.codec_context
        cc.time_base = tb
        cc.colorspace, cc.color_primaries = space, prim
        cc.color_trc = spec.trc or trc
        cc.color_range = 2 if spec.full_range else 1
        if spec.sar:
            cc.sample_aspect_ratio = spec.sar
        if spec.codec == "libx264":
            cc.options = {"crf": "12", "preset": "veryfast"}
        if spec.rotation:
            vs.set_display_rotation(spec.rotation)
        audio = []
        for k in range(spec.audio_streams):
            a = c.add_stream(spec.audio_codec, rate=48000)
            a.layout = layout = "stereo" if spec.stereo else "mono"
            a.metadata["language"] = ["eng", "fra", "deu"][k % 3]
            audio.append(a)
        sub = c.add_mux_stream(spec.subtitle_codec) if spec.subtitles else None
        data = c.add_data_stream("bin_data") if spec.telemetry else None
        if data is not None:
            data.metadata["handler_name"] = spec.telemetry
        packets = []
        for t, rgb in zip(pts, pan_zoom_frames(spec)):
            f = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
                format=spec.pix_fmt, dst_colorspace=matrix, dst_color_range="JPEG" if spec.full_range else "MPEG")
            f.pts, f.time_base = t, tb
            packets += vs.encode(f)
        packets += vs.encode(None)
        for t in pts if data is not None else ():  # one telemetry sample per frame, as a GoPro writes them
            p = av.Packet(b"GPS5" + t.to_bytes(4, "big") * 3)
            p.stream, p.time_base = data, tb
            p.pts = p.dts = t
            p.duration = round(1000 / spec.fps)
            c.mux(p)
        if spec.last_hold_ms:  # encoders leave packet durations at 0; the muxers take the last frame's from:
            end = Fraction(pts[-1] + spec.last_hold_ms, 1000)
            if path.suffix == ".mkv":  # the packet of the last frame shown, as its own duration
                last = max(packets, key=lambda p: p.pts)
                last.duration = round(end / last.time_base) - last.pts
            else:  # MP4: the last packet in decode order, up to the end of the last frame
                last = max(packets, key=lambda p: p.dts)
                last.duration = round(end / last.time_base) - last.dts
        c.mux(packets)
        seconds = (pts[-1] + 1000 / spec.fps) / 1000
        for k, a in enumerate(audio):
            n, freq = 0, 440.0 * (k + 1)
            fmt = a.codec_context.format.name  # fltp (AAC), s16 (PCM), ...
            while n < seconds * 48000:
                s = (0.3 * np.sin(2 * np.pi * freq * (np.arange(1024) + n) / 48000))[None].repeat(2 if spec.stereo else 1, 0)
                s = s.astype(np.float32) if fmt.startswith("flt") else (s * 32767).astype(np.int16)
                if not fmt.endswith("p"):  # packed: channels interleaved in one plane
                    s = np.ascontiguousarray(s.T).reshape(1, -1)
                af = av.AudioFrame.from_ndarray(s, format=fmt, layout=layout)
                af.sample_rate, af.pts = 48000, n
                c.mux(a.encode(af))
                n += 1024
            c.mux(a.encode(None))
        if sub is not None:
            text = b"hello from the subtitles"
            p = av.Packet(len(text).to_bytes(2, "big") + text if spec.subtitle_codec == "mov_text" else text)
            p.stream = sub
            p.pts, p.dts, p.duration = 100, 100, 300
            p.time_base = sub.time_base if sub.time_base else tb
            c.mux(p)
    return path


def end_edit_list_at(path: Path, ms: int) -> Path:
    """Rewrites an MP4's edit list (one entry, as FFmpeg writes it with use_editlist) to show only its
    first ``ms`` milliseconds, as an iPhone's can leave a last frame out: the packets stay in the
    file, marked to be discarded."""
    data = bytearray(path.read_bytes())
    at = data.find(b"elst")
    assert at > 0 and data[at + 4] == 0 and int.from_bytes(data[at + 8:at + 12], "big") == 1, "one version-0 entry"
    data[at + 12:at + 16] = ms.to_bytes(4, "big")  # segment duration, in the movie's time scale (1/1000 s)
    path.write_bytes(bytes(data))
    return path


def read_video(path: Path) -> dict:
    """What the tests compare: frame times, frames as RGB (decoded with the file's tags), audio
    packets, and the stream's tags."""
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        frames, times, rotation, matrix_tag = [], [], None, None
        for f in c.decode(vs):
            if rotation is None:
                rotation = f.rotation
            times.append(f.pts * f.time_base)
            frames.append(f.to_ndarray(format="rgb24", src_colorspace={1: "ITU709", 5: "ITU601", 6: "ITU601"}.get(f.colorspace, "ITU601"),
                                       src_color_range="JPEG" if f.color_range == 2 else "MPEG"))
            matrix_tag = (f.colorspace, f.color_range, f.color_primaries, f.color_trc)
        cc = vs.codec_context
        info = {
            "times": times, "frames": frames, "rotation": rotation or 0,
            "tags": (cc.colorspace, cc.color_range, cc.color_primaries, cc.color_trc), "frame_tags": matrix_tag,
            "size": (cc.width, cc.height), "pix_fmt": cc.pix_fmt, "sar": vs.sample_aspect_ratio,
            "duration": float(c.duration / 1e6) if c.duration else None,
            "streams": [(s.type, s.codec_context.name, s.language) for s in c.streams],
        }
    with av.open(str(path)) as c:
        audio = {s.index: [] for s in c.streams.audio}
        subs = []
        for p in c.demux(list(c.streams.audio) + list(c.streams.subtitles)):
            if not p.size:
                continue
            if p.stream.type == "audio":
                audio[p.stream.index].append((p.pts * p.time_base, p.dts * p.time_base, bytes(p)))
            else:
                subs.append(bytes(p))
        info["audio"] = list(audio.values())
        info["subtitles"] = subs
    return info
