"""`ccv video` on short real clips: frames, timestamps, audio, rotation, colour, failures."""
from __future__ import annotations

import hashlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from cyclegan_convert.backends.base import Backend
from cyclegan_convert.cli import app
from cyclegan_convert.errors import MediaError, UsageError
from cyclegan_convert.networks import ResnetGenerator, init_weights
from cyclegan_convert.resolve import resolve_model
from cyclegan_convert.video import VideoConverter, VideoOptions
from videoclips import PHOTOS, ClipSpec, end_edit_list_at, make_clip, read_video



@pytest.fixture
def tiny_model(tmp_path) -> Path:
    torch.manual_seed(0)
    path = tmp_path / "tiny.pth"
    torch.save(init_weights(ResnetGenerator(ngf=8, n_blocks=1)).state_dict(), path)
    return path


class Passthrough(Backend):
    """Returns its input: isolates the video path (colour, timing) from the model."""

    name = "passthrough"

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Failing(Backend):
    name = "failing"

    def __init__(self, exc: BaseException, after: int = 2):
        super().__init__()
        self.exc, self.after, self.calls = exc, after, 0

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls > self.after:
            raise self.exc
        return x


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def convert(src: Path, model: Path, **options):
    return VideoConverter(resolve_model(model=model), VideoOptions(**options)).run(src)


def test_keeps_every_frame_its_time_the_audio_and_tags(tmp_path, tiny_model):
    src = make_clip(tmp_path / "holiday.mp4", ClipSpec(frames=15, sar=Fraction(4, 3)))
    before = _sha(src)
    result = convert(src, tiny_model)
    assert result.output == tmp_path / "holiday_tiny.mp4" and result.problem is None
    assert _sha(src) == before  # the input is never touched
    a, b = read_video(src), read_video(result.output)
    assert result.frames == len(b["frames"]) == len(a["frames"]) == 15
    assert b["times"] == a["times"]
    assert b["audio"] == a["audio"] and len(b["audio"][0]) > 10  # packet for packet, same times
    assert abs(b["duration"] - a["duration"]) <= 1 / 25
    assert b["tags"] == a["tags"] == (1, 1, 1, 1)  # BT.709 matrix, limited range, primaries, transfer
    assert b["size"] == (142, 80) and b["pix_fmt"] == "yuv420p" and b["sar"] == Fraction(4, 3)
    # the model really ran: output frames are not the input frames
    assert np.abs(b["frames"][5].astype(int) - a["frames"][5]).mean() > 10
    assert not [p for p in tmp_path.iterdir() if ".part" in p.name]


def test_variable_frame_rate_rotation_two_audio_streams_and_subtitles(tmp_path, tiny_model):
    times_ms = [0, 40, 70, 130, 140, 200, 260, 300, 390, 400]
    src = make_clip(tmp_path / "phone.mkv", ClipSpec(pts_ms=times_ms, rotation=90, audio_streams=2, subtitles=True))
    result = convert(src, tiny_model)
    assert result.output.suffix == ".mkv"  # Matroska inputs keep their container (it holds everything)
    a, b = read_video(src), read_video(result.output)
    assert b["times"] == a["times"] == [Fraction(t, 1000) for t in times_ms]
    assert b["rotation"] == 90
    assert len(b["audio"]) == 2 and b["audio"] == a["audio"]
    assert [s for s in b["streams"] if s[0] == "audio"] == [("audio", "aac", "eng"), ("audio", "aac", "fra")]
    assert b["subtitles"] == a["subtitles"] == [b"hello from the subtitles"]


def test_mp4_output_leaves_out_what_it_cannot_hold_and_says_so(tmp_path, tiny_model):
    src = make_clip(tmp_path / "in.mkv", ClipSpec(frames=4, subtitles=True))
    messages = []
    VideoConverter(resolve_model(model=tiny_model), VideoOptions(output=tmp_path / "out.mp4", no_audio=False),
                   on_message=lambda kind, text: messages.append(text)).run(src)
    b = read_video(tmp_path / "out.mp4")
    assert [s[0] for s in b["streams"]] == ["video", "audio"]
    assert any("subtitle" in m and ".mkv" in m for m in messages)


@pytest.mark.parametrize("colour,full_range", [("bt601", False), ("bt709", False), ("bt709", True)])
def test_colour_round_trip_uses_the_source_matrix_and_range(tmp_path, colour, full_range):
    src = make_clip(tmp_path / "c.mp4", ClipSpec(frames=3, colour=colour, full_range=full_range))
    out = VideoConverter(None, VideoOptions(crf=0), backend=Passthrough()).run(src).output
    a, b = read_video(src), read_video(out)
    assert b["tags"] == a["tags"]
    err = np.mean([np.abs(x.astype(int) - y).mean() for x, y in zip(a["frames"], b["frames"])])
    assert err < 2.0, err
    # the check can fail: reading the output with the other matrix is clearly off
    import av

    with av.open(str(out)) as c:
        f = next(c.decode(video=0))
        wrong = f.to_ndarray(format="rgb24", src_colorspace="ITU709" if colour == "bt601" else "ITU601",
                             src_color_range="JPEG" if full_range else "MPEG")
    assert np.abs(wrong.astype(int) - a["frames"][0]).mean() > err + 1.0


def test_ten_bit_source_stays_ten_bit(tmp_path):
    src = make_clip(tmp_path / "deep.mkv", ClipSpec(frames=3, pix_fmt="yuv420p10le"))
    out = VideoConverter(None, VideoOptions(), backend=Passthrough()).run(src).output
    assert read_video(out)["pix_fmt"] == "yuv420p10le"


def test_hdr_is_refused_unless_asked(tmp_path):
    src = make_clip(tmp_path / "hdr.mkv", ClipSpec(frames=3, pix_fmt="yuv420p10le", trc=16))
    with pytest.raises(UsageError, match="HDR.*PQ.*--allow-hdr"):
        VideoConverter(None, VideoOptions(), backend=Passthrough()).run(src)
    assert not any(p.name.startswith("hdr_") for p in tmp_path.iterdir())
    out = VideoConverter(None, VideoOptions(allow_hdr=True), backend=Passthrough()).run(src).output
    assert read_video(out)["tags"][3] == 16  # the transfer tag is kept, not silently changed


def test_start_and_duration_cut_video_and_audio_together(tmp_path, tiny_model):
    src = make_clip(tmp_path / "long.mp4", ClipSpec(frames=25))
    result = convert(src, tiny_model, start=0.4, duration=0.4)
    b = read_video(result.output)
    assert b["times"] == [Fraction(i, 25) for i in range(10)]
    audio = b["audio"][0]
    assert audio and audio[0][0] >= 0 and audio[-1][0] < Fraction(2, 5)
    assert result.problem is None


def test_side_by_side_and_working_size(tmp_path, tiny_model):
    src = make_clip(tmp_path / "s.mp4", ClipSpec(frames=3))
    assert read_video(convert(src, tiny_model, side_by_side=True).output)["size"] == (284, 80)
    small = convert(src, tiny_model, max_side=72, work_size=True, output=tmp_path / "small.mp4")
    assert read_video(small.output)["size"] == (72, 40)
    back = convert(src, tiny_model, max_side=72, output=tmp_path / "back.mp4")
    assert read_video(back.output)["size"] == (142, 80)


def test_truncated_input_converts_what_it_can_and_says_where_it_stopped(tmp_path, tiny_model):
    whole = make_clip(tmp_path / "whole.mkv", ClipSpec(frames=30))
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.6)])
    result = CliRunner().invoke(app, ["video", str(cut), "--model", str(tiny_model)])
    assert result.exit_code == 1, result.output
    assert "stopped at" in result.output and "cut.mkv" in result.output
    frames = read_video(tmp_path / "cut_tiny.mkv")["frames"]
    assert 5 < len(frames) < 30


def test_ctrl_c_leaves_no_file(tmp_path):
    src = make_clip(tmp_path / "i.mp4", ClipSpec(frames=12))
    with pytest.raises(KeyboardInterrupt):
        VideoConverter(None, VideoOptions(), backend=Failing(KeyboardInterrupt(), after=3)).run(src)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["i.mp4"]


def test_a_failing_stage_stops_everything_and_is_raised(tmp_path):
    src = make_clip(tmp_path / "i.mp4", ClipSpec(frames=12))
    with pytest.raises(RuntimeError, match="boom"):
        VideoConverter(None, VideoOptions(), backend=Failing(RuntimeError("boom"), after=2)).run(src)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["i.mp4"]


def test_progress_by_frames_never_past_the_total(tmp_path):
    src = make_clip(tmp_path / "p.mkv", ClipSpec(frames=10))  # Matroska: no frame count, estimated
    seen = []
    VideoConverter(None, VideoOptions(), on_progress=seen.append, backend=Passthrough()).run(src)
    assert seen and all(p.total is None or p.frames <= p.total for p in seen)
    assert seen[-1].frames == seen[-1].total == 10 and set(seen[-1].rates) == {"decode", "infer", "encode"}


def test_usage_errors(tmp_path, tiny_model):
    src = make_clip(tmp_path / "u.mp4", ClipSpec(frames=2))
    runner = CliRunner()
    r = runner.invoke(app, ["video", str(src), "--model", str(tiny_model), "--codec", "libnothing"])
    assert r.exit_code == 2 and "libnothing" in r.output and "libx264" in r.output
    r = runner.invoke(app, ["video", str(src), "--model", str(tiny_model), "-o", str(src), "--overwrite"])
    assert r.exit_code == 2 and "input" in r.output
    r = runner.invoke(app, ["video", str(tmp_path / "missing.mp4"), "--model", str(tiny_model)])
    assert r.exit_code == 2
    (tmp_path / "u_tiny.mp4").write_bytes(b"mine")
    r = runner.invoke(app, ["video", str(src), "--model", str(tiny_model)])
    assert r.exit_code == 2 and "--overwrite" in r.output and (tmp_path / "u_tiny.mp4").read_bytes() == b"mine"
    not_video = tmp_path / "photo.mp4"
    not_video.write_bytes(PHOTOS[0].read_bytes()[:2000])
    with pytest.raises(MediaError):
        VideoConverter(None, VideoOptions(), backend=Passthrough()).run(not_video)


def test_cli_converts_with_a_model_from_the_store(tmp_path, tiny_model):
    from cyclegan_convert.model_import import import_generator

    import_generator(tiny_model, target="sketch")  # into this test's own store (CCV_HOME)
    src = make_clip(tmp_path / "clip.mp4", ClipSpec(frames=3))
    r = CliRunner().invoke(app, ["video", str(src), "--to", "sketch"])
    assert r.exit_code == 0, r.output
    assert len(read_video(tmp_path / "clip_sketch.mp4")["frames"]) == 3


def _remux(src: Path, dst: Path) -> Path:
    """Packet copy into another container (here MPEG-TS, whose times start at 1.4 s and which has
    no index to seek with)."""
    with av.open(str(src)) as i, av.open(str(dst), "w") as o:
        out = {s.index: o.add_stream_from_template(s) for s in i.streams}
        for p in i.demux():
            if p.dts is None:
                continue
            p.stream = out[p.stream.index]
            o.mux(p)
    return dst


def test_start_counts_from_the_first_frame_and_survives_a_container_without_index(tmp_path):
    clip = make_clip(tmp_path / "cam.mp4", ClipSpec(frames=25))
    src = _remux(clip, tmp_path / "cam.ts")
    with av.open(str(src)) as c:
        assert c.streams.video[0].start_time > 0  # the case being tested: times do not start at 0
    out = VideoConverter(None, VideoOptions(start=0.4, duration=0.4), backend=Passthrough()).run(src).output
    got, want = read_video(out), read_video(clip)
    assert got["times"] == [Fraction(i, 25) for i in range(10)]
    for k, frame in enumerate(got["frames"]):  # the frames of [0.4 s, 0.8 s), not of a later point
        diffs = [np.abs(frame.astype(int) - w.astype(int)).mean() for w in want["frames"]]
        assert int(np.argmin(diffs)) == 10 + k
    assert got["audio"][0]


def test_frames_outside_the_engine_profile_run_on_pytorch(tmp_path, tiny_model, monkeypatch):
    """With auto on a GPU, a TensorRT engine whose profile excludes the frame size would fail every
    frame: the whole video runs on PyTorch instead, with one note."""
    import cyclegan_convert.backends.select as select
    from cyclegan_convert.weights import load_generator
    from test_convert_backends import _SmallProfileEngine  # a fake engine that takes up to 64x64

    real = select.make_backend
    net = load_generator(tiny_model)
    monkeypatch.setattr(select, "make_backend", lambda ref, name, device="auto", **kw:
                        _SmallProfileEngine(net) if name == "auto" else real(ref, name, device, **kw))
    notes = []
    src = make_clip(tmp_path / "clip.mp4", ClipSpec(frames=6))
    result = VideoConverter(resolve_model(model=tiny_model), VideoOptions(),
                            on_message=lambda kind, text: notes.append(text)).run(src)
    assert result.problem is None and result.frames == 6
    assert [n for n in notes if "shape profile" in n and "PyTorch" in n]


class Recording(Backend):
    """Passes frames through and records the shapes the model was given."""

    name = "recording"

    def __init__(self):
        super().__init__()
        self.shapes = []

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        self.shapes.append(tuple(x.shape[-2:]))
        return x


@pytest.mark.parametrize("rotation", [90, -90])
def test_rotated_clips_reach_the_model_upright_and_come_back_as_stored(tmp_path, rotation):
    src = make_clip(tmp_path / "portrait.mp4", ClipSpec(frames=4, rotation=rotation, audio_streams=0))
    rec = Recording()
    result = VideoConverter(None, VideoOptions(crf=0), backend=rec).run(src)
    a, b = read_video(src), read_video(result.output)
    assert set(rec.shapes) == {(144, 80)}  # stored 142x80 (W x H), seen upright: 80 wide, 142 (padded 144) high
    assert b["rotation"] == a["rotation"] and b["size"] == a["size"] == (142, 80)
    assert np.abs(b["frames"][2].astype(int) - a["frames"][2]).mean() < 2  # turned back exactly


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_a_frame_whose_side_data_pyav_cannot_name_still_gives_its_rotation(tmp_path, rotation):
    """An Apple spatial video (MV-HEVC) ended `ccv video` in a traceback: its frames carry side data
    of a type newer than PyAV's enum (29), and PyAV raises ValueError as soon as the list is read.
    The matrix rebuilt from the rotation must be the one FFmpeg itself stores for that rotation."""
    from cyclegan_convert import video_io

    src = make_clip(tmp_path / "turned.mp4", ClipSpec(frames=2, rotation=rotation, audio_streams=0))
    with av.open(str(src)) as c:
        frame = next(c.decode(video=0))
        stored = video_io.display_matrix_of(frame)

    class Unnamed:  # what PyAV does with such a frame
        rotation = frame.rotation

        @property
        def side_data(self):
            raise ValueError("29 is not a valid Type")

    assert stored is not None and video_io.display_matrix_of(Unnamed()) == stored
    assert video_io.rotation_matrix(0) is None


def test_video_starting_after_the_audio_is_not_called_truncated(tmp_path):
    """Matroska's per-stream DURATION tag (as FFmpeg writes it) is the time the stream ends: a video
    that starts at 0.6 s after its audio was read as 0.6 s longer, so a complete file exited 1."""
    src = make_clip(tmp_path / "late.mkv", ClipSpec(pts_ms=[600 + 40 * i for i in range(10)]))
    result = VideoConverter(None, VideoOptions(), backend=Passthrough()).run(src)
    assert result.problem is None and result.frames == 10
    assert read_video(result.output)["times"] == read_video(src)["times"]


def test_output_names_that_cannot_be_written_are_usage_errors_and_a_slash_means_a_folder(tmp_path, tiny_model):
    """`-o out` (no extension), `-o out.txt`, `-o out.webm` with libx264 and `-o out.avi` ended in a
    Python traceback (exit 1) or an AVI at 600 frames/s; `-o new/` wrote a file named 'new'."""
    tmp_path = tmp_path / "clips"
    tmp_path.mkdir()
    src = make_clip(tmp_path / "u.mp4", ClipSpec(frames=2, audio_streams=0))
    runner = CliRunner()
    for name, words in [("out", "extension"), ("out.txt", ".txt"), ("out.webm", "libvpx-vp9"), ("out.avi", "timestamps")]:
        r = runner.invoke(app, ["video", str(src), "--model", str(tiny_model),
                                "-o", str(tmp_path / name)])
        assert r.exit_code == 2 and words in r.output and name in r.output, (name, r.output)
        assert r.exception is None or isinstance(r.exception, SystemExit)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["u.mp4"]
    out = VideoConverter(None, VideoOptions(output=f"{tmp_path / 'new'}/"), backend=Passthrough()).run(src).output
    assert out == tmp_path / "new" / "u_converted.mp4" and out.is_file()
    r = runner.invoke(app, ["video", str(tmp_path), "--model", str(tiny_model)])
    assert r.exit_code == 2 and "folder" in r.output


def test_streams_that_are_not_kept_are_named_in_a_note(tmp_path):
    """A second video stream (another angle, a cover picture) was dropped without a word."""
    clip = make_clip(tmp_path / "one.mkv", ClipSpec(frames=4))
    src = tmp_path / "two.mkv"
    with av.open(str(clip)) as i, av.open(str(src), "w") as o:
        out = {s.index: o.add_stream_from_template(s) for s in i.streams}
        second = o.add_stream_from_template(i.streams.video[0])
        for p in i.demux():
            if not p.size:
                continue
            copies = [(p, out[p.stream.index])]
            if p.stream.type == "video":
                q = av.Packet(bytes(p))
                q.pts, q.dts, q.time_base, q.is_keyframe = p.pts, p.dts, p.time_base, p.is_keyframe
                copies.append((q, second))
            for packet, stream in copies:
                packet.stream = stream
                o.mux(packet)
    notes = []
    result = VideoConverter(None, VideoOptions(), backend=Passthrough(),
                            on_message=lambda kind, text: notes.append(text)).run(src)
    assert result.frames == 4 and [s[0] for s in read_video(result.output)["streams"]] == ["video", "audio"]
    assert [n for n in notes if "video stream #2" in n and "left out" in n], notes


def _transparent_webm(path: Path, frames: int = 3) -> np.ndarray:
    """A VP9 WebM with an alpha channel (a sticker, an overlay): a left-to-right alpha ramp."""
    alpha = np.repeat(np.linspace(0, 255, 64).astype(np.uint8)[None], 48, 0)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libvpx-vp9", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuva420p"
        for i in range(frames):
            rgba = np.full((48, 64, 4), 40 * i + 60, np.uint8)
            rgba[..., 3] = alpha
            for p in s.encode(av.VideoFrame.from_ndarray(rgba, format="rgba")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return alpha


def _alpha_planes(path: Path) -> list[np.ndarray]:
    from cyclegan_convert.video_io import alpha_decoder, decode

    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        decoder = alpha_decoder(vs)
        assert decoder is not None, "no alpha side channel"
        return [f.to_ndarray(format="rgba")[..., 3] for p in c.demux(vs) for f in decode(decoder, p)]


def test_a_webm_with_transparency_keeps_it_where_the_output_can_hold_it(tmp_path):
    """VP9 transparency (WebM's alpha side channel) was dropped with no note. FFmpeg's own VP9
    decoder leaves it out; libvpx's reads it, and libvpx-vp9 writes it back (yuva420p)."""
    src = tmp_path / "sticker.webm"
    alpha = _transparent_webm(src)
    with av.open(str(src)) as c:
        assert c.streams.video[0].metadata.get("alpha_mode") == "1"  # the case in question
    notes = []
    kept = VideoConverter(None, VideoOptions(codec="libvpx-vp9", output=tmp_path / "kept.webm"), backend=Passthrough(),
                          on_message=lambda kind, text: notes.append(text)).run(src)
    assert kept.frames == 3 and not [n for n in notes if "transparency" in n], notes
    planes = _alpha_planes(kept.output)
    assert len(planes) == 3 and all(np.abs(a.astype(int) - alpha).max() <= 6 for a in planes)
    side = VideoConverter(None, VideoOptions(codec="libvpx-vp9", output=tmp_path / "side.webm", side_by_side=True),
                          backend=Passthrough()).run(src)
    assert np.abs(_alpha_planes(side.output)[0].astype(int) - np.hstack([alpha, alpha])).max() <= 6
    # H.264 in MP4 (the default) has no alpha: it is said, with what keeps it
    result = VideoConverter(None, VideoOptions(), backend=Passthrough(),
                            on_message=lambda kind, text: notes.append(text)).run(src)
    assert result.frames == 3
    assert [n for n in notes if "transparency (alpha channel) left out" in n and "libvpx-vp9" in n], notes


def test_grey_video_keeps_its_levels(tmp_path):
    """FFmpeg reads and writes grey pixels as full range whatever the tag says; the output was
    tagged limited range, so players stretched it (darker shadows, brighter highlights)."""
    src = make_clip(tmp_path / "ir.mkv", ClipSpec(frames=3, codec="ffv1", pix_fmt="gray", audio_streams=0))

    def shown(path):  # as a player built on FFmpeg shows it: converted with the frame's own tags
        with av.open(str(path)) as c:
            return [f.to_ndarray(format="rgb24").astype(int) for f in c.decode(video=0)]

    for options in (VideoOptions(output=tmp_path / "g.mkv"), VideoOptions(output=tmp_path / "v.mkv", codec="libvpx-vp9")):
        out = VideoConverter(None, options, backend=Passthrough()).run(src).output
        err = np.mean([np.abs(a - b).mean() for a, b in zip(shown(src), shown(out))])
        assert err < 3, (options.codec, err)


@pytest.mark.parametrize("size", [(64, 1), (1, 40), (6, 6)])
def test_frames_a_few_pixels_high_or_wide_are_converted(tmp_path, tiny_model, size):
    """The generator's quarter-scale blocks reflect-pad by 1: a frame under 8 pixels a side is padded
    for the model and cropped back (it raised a PyTorch traceback, exit 1)."""
    src = make_clip(tmp_path / "strip.mkv", ClipSpec(size=size, frames=3, pix_fmt="yuv444p", audio_streams=0))
    result = CliRunner().invoke(app, ["video", str(src), "--model", str(tiny_model)])
    assert result.exit_code == 0, result.output
    b = read_video(tmp_path / "strip_tiny.mkv")
    assert len(b["frames"]) == 3 and b["size"] == size and b["pix_fmt"] == "yuv444p"


def test_grey_source_gets_the_models_colours(tmp_path, tiny_model):
    """The generator paints in colour whatever it is given: a grey source's output is written in a
    colour format (it followed the source into 'gray', so the model's colours were thrown away)."""
    src = make_clip(tmp_path / "ir.mkv", ClipSpec(frames=3, codec="ffv1", pix_fmt="gray", audio_streams=0))
    out = convert(src, tiny_model).output
    with av.open(str(out)) as c:
        frames = [f.to_ndarray(format="rgb24").astype(int) for f in c.decode(video=0)]
    assert len(frames) == 3
    assert np.abs(frames[1][..., 0] - frames[1][..., 1]).mean() > 3  # not R == G == B


def test_kill_and_hangup_remove_the_temporary_output(tmp_path, tiny_model):
    """SIGTERM (kill, timeout, a scheduler) ended the process on the spot and left a hidden .part file
    as large as what had been written; it now stops as Ctrl-C does and exits 128 + 15."""
    import os
    import subprocess
    import sys

    src = make_clip(tmp_path / "k.mp4", ClipSpec(frames=12, audio_streams=0))
    script = f"""
import os, signal, sys
from cyclegan_convert import video
real, calls = video.VideoConverter._infer, []
def infer(self, *args):
    calls.append(1)
    if len(calls) == 3:
        os.kill(os.getpid(), signal.SIGTERM)
    return real(self, *args)
video.VideoConverter._infer = infer
from cyclegan_convert.cli import app
sys.argv = ["ccv", "video", {str(src)!r}, "--model", {str(tiny_model)!r}]
app()
"""
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert r.returncode == 128 + 15, (r.returncode, r.stderr[-2000:])
    assert "SIGTERM" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.mp4", "tiny.pth"]


def test_pcm_audio_from_matroska_is_kept_in_mp4(tmp_path, tiny_model):
    """Matroska stores only PCM's channel count; the MP4 muxer needs a layout and refused the file at
    its very end (a PyAV traceback, exit 1, after the whole video had been converted)."""
    src = make_clip(tmp_path / "cam.mkv", ClipSpec(frames=4, audio_codec="pcm_s16le", stereo=True))
    result = CliRunner().invoke(app, ["video", str(src), "-o", str(tmp_path / "out.mp4"), "--model", str(tiny_model)])
    assert result.exit_code == 0, result.output
    a, b = read_video(src), read_video(tmp_path / "out.mp4")
    assert len(b["frames"]) == 4 and [s[:2] for s in b["streams"]] == [("video", "h264"), ("audio", "pcm_s16le")]
    assert [p[2] for p in b["audio"][0]] == [p[2] for p in a["audio"][0]]  # the same samples


def _clip_with_damaged_head(tmp_path):
    """damaged.mkv: 30 mpeg4 frames (keyframes every 12) whose first 2 packets are random bytes."""
    import os

    clip = make_clip(tmp_path / "gop.mkv", ClipSpec(frames=30, codec="mpeg4", audio_streams=0))
    src = tmp_path / "damaged.mkv"
    with av.open(str(clip)) as i, av.open(str(src), "w") as o:
        out = o.add_stream_from_template(i.streams.video[0])
        for k, p in enumerate(q for q in i.demux(video=0) if q.size):
            if k < 2:
                bad = av.Packet(os.urandom(p.size))
                bad.pts, bad.dts, bad.time_base, bad.is_keyframe = p.pts, p.dts, p.time_base, True
                p = bad
            p.stream = out
            o.mux(p)
    return src


def test_undecodable_packets_at_the_start_are_skipped_not_fatal(tmp_path):
    """A file whose first packets cannot be decoded (damaged head, recording joined mid-stream) was
    refused outright (exit 2) by the first look at it, though every later frame decodes."""
    src = _clip_with_damaged_head(tmp_path)
    result = VideoConverter(None, VideoOptions(), backend=Passthrough()).run(src)
    assert 15 <= result.frames < 30 and "could not be decoded" in result.problem
    assert len(read_video(result.output)["frames"]) == result.frames


def test_container_colour_tags_are_kept_when_the_bitstream_leaves_them_out(tmp_path):
    """A Matroska file tagged BT.709 whose H.264 stream says 'unspecified' was read (and written) as
    BT.601: the container's tags were looked up after decoding had overwritten them."""
    src = make_clip(tmp_path / "mono.mkv", ClipSpec(frames=3, pix_fmt="gray", audio_streams=0))
    with av.open(str(src)) as c:
        assert c.streams.video[0].codec_context.colorspace == 1  # the container says BT.709
        assert next(c.decode(video=0)).colorspace == 2  # the stream does not: the case being tested
    out = VideoConverter(None, VideoOptions(), backend=Passthrough()).run(src).output
    assert read_video(out)["tags"][0] == 1


def test_damage_report_counts_the_lost_packets_and_does_not_say_before(tmp_path, tiny_model):
    """Packets lost at the start were reported as 'the 25 frames before it were converted': the frames
    were after the damage. The line now says how many packets were lost and how many frames made it."""
    src = _clip_with_damaged_head(tmp_path)
    r = CliRunner().invoke(app, ["video", str(src), "--model", str(tiny_model)])
    assert r.exit_code == 1, r.output
    text = " ".join(r.output.split())
    assert "damaged.mkv" in text and "before it" not in text and "frames were converted" in text
    assert "2 video packets could not be decoded" in text


def test_a_subtitle_left_out_names_a_container_that_holds_it(tmp_path):
    """MP4's mov_text subtitles cannot go into .mkv: the note said "write to .mkv to keep it" to a
    run that was writing .mkv. It names .mp4 now, and .mp4 keeps them."""
    src = make_clip(tmp_path / "talk.mp4", ClipSpec(frames=3, subtitles=True, subtitle_codec="mov_text"))
    notes = []
    VideoConverter(None, VideoOptions(output=tmp_path / "out.mkv"), backend=Passthrough(),
                   on_message=lambda kind, text: notes.append(text)).run(src)
    left_out = [n for n in notes if "mov_text" in n]
    assert left_out and "write to .mp4" in left_out[0] and ".mkv" not in left_out[0]
    out = VideoConverter(None, VideoOptions(), backend=Passthrough()).run(src).output
    texts = [[t for t in read_video(f)["subtitles"] if len(t) > 2] for f in (src, out)]  # MP4 pads gaps with empty cues
    assert texts[0] == texts[1] == [b"\x00\x18hello from the subtitles"]


def test_an_output_folder_that_cannot_be_made_is_one_line(tmp_path):
    """-o under a file (or a read-only place): a FileExistsError traceback, exit 1, before."""
    src = make_clip(tmp_path / "c.mp4", ClipSpec(frames=2, audio_streams=0))
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    with pytest.raises(UsageError, match="notes.txt.*cannot make its folder"):
        VideoConverter(None, VideoOptions(output=tmp_path / "notes.txt" / "out.mp4"), backend=Passthrough()).run(src)


def test_matroska_without_a_frame_rate_is_not_called_truncated(tmp_path):
    """Matroska without a default duration (OBS writes it so; here an MP4 copied packet for packet)
    has its frame rate guessed as 1000/s: the end check allowed 3 ms of slack and called a complete
    file truncated (exit 1)."""
    src = _remux(make_clip(tmp_path / "rec.mp4", ClipSpec(frames=12, audio_streams=0)), tmp_path / "rec.mkv")
    result = VideoConverter(None, VideoOptions(), backend=Passthrough()).run(src)
    assert result.problem is None and result.frames == 12
    whole = tmp_path / "rec.mkv"
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.6)])
    assert "ends early" in VideoConverter(None, VideoOptions(), backend=Passthrough()).run(cut).problem  # still found


def test_chapters_are_kept_and_cut_with_start_and_duration(tmp_path):
    """Chapter marks (titles and times) were dropped without a word."""
    clip = make_clip(tmp_path / "film.mp4", ClipSpec(frames=25, audio_streams=0))
    src = tmp_path / "film.mkv"
    ms = Fraction(1, 1000)
    with av.open(str(clip)) as i, av.open(str(src), "w") as o:
        out = o.add_stream_from_template(i.streams.video[0])
        o.set_chapters([{"id": 1, "start": 0, "end": 500, "time_base": ms, "metadata": {"title": "Intro"}},
                        {"id": 2, "start": 500, "end": 1000, "time_base": ms, "metadata": {"title": "Main"}}])
        for p in i.demux():
            if p.size:
                p.stream = out
                o.mux(p)

    def chapters(path):
        with av.open(str(path)) as c:
            return [(round(float(ch["start"] * ch["time_base"]), 3), round(float(ch["end"] * ch["time_base"]), 3),
                     ch["metadata"].get("title")) for ch in c.chapters()]

    for name in ("all.mkv", "all.mp4"):
        out = VideoConverter(None, VideoOptions(output=tmp_path / name), backend=Passthrough()).run(src).output
        assert chapters(out) == [(0.0, 0.5, "Intro"), (0.5, 1.0, "Main")], name
    cut = VideoConverter(None, VideoOptions(output=tmp_path / "cut.mkv", start=0.4, duration=0.4),
                         backend=Passthrough()).run(src).output
    assert chapters(cut) == [(0.0, 0.1, "Intro"), (0.1, 0.4, "Main")]


def test_twelve_bit_444_keeps_its_chroma_resolution(tmp_path):
    """A 12-bit 4:4:4 source (ProRes 4444, FFV1 masters) was written as 4:2:0 10-bit with libx264,
    which takes 4:4:4 10-bit: half the colour resolution lost in both directions."""
    src = make_clip(tmp_path / "master.mkv", ClipSpec(frames=2, codec="ffv1", pix_fmt="yuv444p12le", audio_streams=0))
    out = VideoConverter(None, VideoOptions(), backend=Passthrough()).run(src).output
    assert read_video(out)["pix_fmt"] == "yuv444p10le"


def test_a_colon_in_a_relative_file_name_is_not_a_url(tmp_path, monkeypatch):
    """'take:2.mp4' given relative to the current folder was opened by FFmpeg as a URL of the 'take'
    protocol: 'Protocol not found', exit 2."""
    make_clip(tmp_path / "take:2.mp4", ClipSpec(frames=2, audio_streams=0))
    monkeypatch.chdir(tmp_path)
    out = VideoConverter(None, VideoOptions(output=Path("scene:1.mkv")), backend=Passthrough()).run(Path("take:2.mp4")).output
    assert out == Path("scene:1.mkv") and len(read_video(tmp_path / "scene:1.mkv")["frames"]) == 2


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_a_last_frame_shown_for_seconds_is_complete_and_keeps_its_time(tmp_path, suffix):
    """A variable-rate phone video whose last frame is held 1.5 s: every frame was decoded, yet it
    was called truncated ("stopped at 0.44 s of 1.94 s", exit 1) and its output came out 1.5 s
    short. Matroska (no frame count in its header) is checked by the end of the last frame."""
    times_ms = [0, 40, 80, 120, 200, 240, 280, 320, 360, 440]
    src = make_clip(tmp_path / f"phone{suffix}", ClipSpec(pts_ms=times_ms, last_hold_ms=1500, audio_streams=0))
    a = read_video(src)
    assert a["duration"] > 1.9  # the file itself says it lasts until the hold ends
    result = VideoConverter(None, VideoOptions(), backend=Passthrough()).run(src)
    assert result.problem is None and result.frames == 10
    b = read_video(result.output)
    assert b["times"] == a["times"]
    assert abs(b["duration"] - a["duration"]) <= 0.05, (a["duration"], b["duration"])


def test_a_frame_the_edit_list_leaves_out_is_not_a_missing_frame(tmp_path):
    """An iPhone clip's own edit list skipped its last packet; FFmpeg shows the frames before it, but
    the header counts every packet, so the complete file was called truncated (exit 1)."""
    src = end_edit_list_at(make_clip(tmp_path / "iphone.mp4", ClipSpec(frames=6, audio_streams=0)), 200)
    assert len(read_video(src)["times"]) == 5  # 5 frames of 40 ms: what a player shows
    result = VideoConverter(None, VideoOptions(), backend=Passthrough()).run(src)
    assert result.problem is None and result.frames == 5
    # a file that really lost its last frames is still found (its index first, then the data, cut)
    whole = make_clip(tmp_path / "whole.mp4", ClipSpec(frames=30, audio_streams=0, mux_options={"movflags": "faststart"}))
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.6)])
    result = VideoConverter(None, VideoOptions(), backend=Passthrough()).run(cut)
    assert result.problem is not None and "of 30 frames" in result.problem, result.problem


def test_frames_before_the_streams_start_time_are_kept(tmp_path, monkeypatch):
    """A Sony camera's .mts starts with two frames shown before its stream's start time (the leading
    frames of an open GOP, which the camera's decoder shows): they were skipped with exit 0 and no
    note. Without --start, every frame the decoder gives is kept. (No such file here: the start time
    is moved after the first two frames of a clip instead.)"""
    import dataclasses

    import cyclegan_convert.video as video

    src = make_clip(tmp_path / "cam.mkv", ClipSpec(frames=8, audio_streams=0))

    def later_start(path):
        info = video_io_probe(path)
        return dataclasses.replace(info, start_s=info.start_s + 0.08)  # the third frame's time

    video_io_probe = video.probe
    monkeypatch.setattr(video, "probe", later_start)
    result = VideoConverter(None, VideoOptions(), backend=Passthrough()).run(src)
    assert result.problem is None and result.frames == 8
    assert read_video(result.output)["times"] == read_video(src)["times"]
    # --start still counts from the start time (as ffmpeg's -ss does)
    cut = VideoConverter(None, VideoOptions(output=tmp_path / "cut.mkv", start=0.04), backend=Passthrough()).run(src)
    assert cut.frames == 5


def test_gopro_telemetry_is_kept_in_mp4_and_other_timed_metadata_is_named(tmp_path):
    """A GoPro's GPS and motion track was dropped (with a note only). FFmpeg's MP4 muxer writes a
    data track back as 'gpmd', GoPro's own; other timed metadata (Apple's camera motion) it would
    mislabel, so that is still left out, with a note."""
    src = make_clip(tmp_path / "GX010001.MP4", ClipSpec(frames=6, telemetry="GoPro MET"))
    notes = []
    out = VideoConverter(None, VideoOptions(start=0.08), backend=Passthrough(),
                         on_message=lambda kind, text: notes.append(text)).run(src).output

    def telemetry(path):
        with av.open(str(path)) as c:
            ds = [s for s in c.streams if s.type == "data"]
            return ([(p.pts * p.time_base, bytes(p)) for s in ds for p in c.demux(s) if p.size],
                    [s.metadata.get("handler_name") for s in ds])

    packets, handlers = telemetry(out)
    want = [(Fraction(t - 80, 1000), b"GPS5" + t.to_bytes(4, "big") * 3) for t in (80, 120, 160, 200)]  # cut and moved with --start
    assert packets == want and handlers == ["GoPro MET"], (packets, notes)
    assert b"gpmd" in out.read_bytes() and not [n for n in notes if "data stream" in n], notes
    mkv = VideoConverter(None, VideoOptions(output=tmp_path / "o.mkv"), backend=Passthrough(),
                         on_message=lambda kind, text: notes.append(text)).run(src).output
    assert telemetry(mkv)[0] == [] and [n for n in notes if "GoPro telemetry" in n and ".mp4" in n], notes
    apple = make_clip(tmp_path / "IMG_0001.mp4", ClipSpec(frames=3, telemetry="Core Media Metadata"))
    notes.clear()
    out = VideoConverter(None, VideoOptions(), backend=Passthrough(),
                         on_message=lambda kind, text: notes.append(text)).run(apple).output
    assert telemetry(out)[0] == [] and [n for n in notes if "data stream #" in n and "left out" in n], notes
