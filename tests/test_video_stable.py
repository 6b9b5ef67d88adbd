"""`--stable`: scene cuts on real frames, smoothed InstanceNorm statistics, the flow-guided blending
in a real video (any backend; frames, times and audio kept), and the backend rule."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cyclegan_convert.backends.base import Backend
from cyclegan_convert.errors import UsageError
from cyclegan_convert.networks import ResnetGenerator, init_weights
from cyclegan_convert.stabilize import SceneCutDetector, StableOptions, StatsSmoother, frame_change
from cyclegan_convert.temporal import warping_errors
from cyclegan_convert.video import VideoConverter, VideoOptions
from videoclips import FIXTURES, PHOTOS, ClipSpec, make_clip, pan_zoom_frames, read_video



@pytest.fixture(scope="module")
def generator():
    torch.manual_seed(0)
    return init_weights(ResnetGenerator(ngf=8, n_blocks=1)).eval()


def _run(model, frames, smoother=None, cuts=None):
    outs = []
    with torch.inference_mode():
        for i, f in enumerate(frames):
            if smoother is not None:
                smoother.begin([cuts[i] if cuts else i == 0])
            x = torch.from_numpy(f).permute(2, 0, 1)[None].float() / 127.5 - 1
            outs.append(((model(x)[0].permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255).byte().numpy())
    return outs


def test_cuts_found_between_shots_not_within_a_pan():
    frames = pan_zoom_frames(ClipSpec(size=(96, 64), frames=12, photos=PHOTOS[:3]))
    detect = SceneCutDetector()
    cuts = [i for i, f in enumerate(frames) if detect(f)]
    assert cuts == [0, 4, 8]


def test_momentum_zero_is_the_plain_model(generator):
    frames = pan_zoom_frames(ClipSpec(size=(64, 48), frames=3))
    plain = _run(generator, frames)
    with StatsSmoother(generator, StableOptions(momentum=0.0)) as s:
        hooked = _run(generator, frames, s)
    assert all(np.abs(a.astype(int) - b).max() <= 1 for a, b in zip(plain, hooked))


def test_smoothing_reduces_flicker_and_restarts_at_a_cut(generator):
    frames = pan_zoom_frames(ClipSpec(size=(64, 48), frames=8))
    plain = _run(generator, frames)
    with StatsSmoother(generator, StableOptions(momentum=0.9)) as s:
        stable = _run(generator, frames, s)
        assert np.abs(stable[0].astype(int) - plain[0]).max() <= 1  # a shot starts with its own statistics
        assert frame_change(stable) < frame_change(plain)
        # a cut forgets the past: the frame after it is converted as if it were the first
        again = _run(generator, frames[3:5], s, cuts=[True, False])
        assert np.abs(again[0].astype(int) - plain[3]).max() <= 1
    assert all(m.stats_hook is None for m in generator.modules() if hasattr(m, "stats_hook"))


def test_batches_are_smoothed_in_frame_order(generator):
    frames = pan_zoom_frames(ClipSpec(size=(64, 48), frames=4))
    with StatsSmoother(generator) as s:
        one_by_one = _run(generator, frames, s)
    with StatsSmoother(generator) as s, torch.inference_mode():
        s.begin([True, False, False, False])
        x = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 127.5 - 1
        batched = ((generator(x).permute(0, 2, 3, 1) + 1) * 127.5).round().clamp(0, 255).byte().numpy()
    assert all(np.abs(a.astype(int) - b).max() <= 1 for a, b in zip(one_by_one, batched))


def test_stable_video_end_to_end(tmp_path, generator):
    torch.save(generator.state_dict(), tmp_path / "g.pth")
    src = make_clip(tmp_path / "pan.mp4", ClipSpec(frames=8))
    from cyclegan_convert.resolve import resolve_model

    ref = resolve_model(model=tmp_path / "g.pth")
    plain = VideoConverter(ref, VideoOptions(crf=0, output=tmp_path / "plain.mp4", backend="torch")).run(src)
    stable = VideoConverter(ref, VideoOptions(crf=0, stable=True, output=tmp_path / "stable.mp4")).run(src)
    a, b = read_video(plain.output)["frames"], read_video(stable.output)["frames"]
    assert len(a) == len(b) == 8
    assert frame_change(b) < frame_change(a)


def test_statistics_alone_need_the_torch_backend(tmp_path):
    class NotTorch(Backend):
        name = "onnxruntime"

        def _run(self, x):
            return x

    src = make_clip(tmp_path / "s.mp4", ClipSpec(frames=2))
    with pytest.raises(UsageError, match="smoothing the statistics alone needs the torch backend"):
        VideoConverter(None, VideoOptions(stable=True, stable_strength=0.0), backend=NotTorch()).run(src)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.mp4"]


# -- the temporal consistency mode on a real clip ----------------------------------------------------
REAL_CLIP = FIXTURES / "video" / "handheld_plant.mp4"  # a phone held by hand, 320x240, 36 frames, AAC audio


class _Flicker(Backend):
    """Any backend, not PyTorch: a fixed colour mapping plus fresh noise per frame (the texture
    flicker of per-frame conversion), seeded per call so two runs see the same flicker."""

    name = "flicker"

    def __init__(self):
        super().__init__()
        self.calls = 0

    def _run(self, x):
        g = torch.Generator().manual_seed(self.calls)
        self.calls += 1
        return (x.flip(1) * 0.8 + 0.2 * torch.randn(x.shape, generator=g)).clamp(-1, 1)


def _convert(tmp_path, name, **options):
    out = tmp_path / f"{name}.mkv"
    result = VideoConverter(None, VideoOptions(output=out, crf=0, **options), backend=_Flicker()).run(REAL_CLIP)
    return result, read_video(out)


def test_stable_on_a_real_clip_any_backend(tmp_path):
    notes = []
    plain_result, plain = _convert(tmp_path, "plain")
    out = tmp_path / "stable.mkv"
    stable_result = VideoConverter(None, VideoOptions(output=out, crf=0, stable=True, stable_momentum=0.9),
                                   backend=_Flicker(),
                                   on_message=lambda kind, text: notes.append(text)).run(REAL_CLIP)
    stable = read_video(out)
    assert any("flow-guided blending only" in n for n in notes)  # statistics asked for, none without PyTorch: said
    # frames, times and audio as the per-frame conversion has them
    assert stable_result.frames == plain_result.frames == 36
    assert stable["times"] == plain["times"]
    assert stable["audio"] == plain["audio"] and len(stable["audio"][0]) > 10
    # the first frame is the per-frame output; after it the flicker is mostly gone
    assert np.abs(stable["frames"][0].astype(int) - plain["frames"][0]).max() <= 2
    inputs = read_video(REAL_CLIP)["frames"]
    e_in, e_plain, e_stable = warping_errors(inputs, [inputs, plain["frames"], stable["frames"]]).mean(1)
    assert e_plain > 5 * e_in
    assert e_stable < e_plain / 4


def test_stable_with_rotation_max_side_and_variable_frame_rate(tmp_path):
    pts = [0, 40, 90, 120, 170, 200, 260, 300]
    src = make_clip(tmp_path / "vfr.mp4", ClipSpec(size=(142, 80), pts_ms=pts, rotation=90))
    out = tmp_path / "out.mp4"
    result = VideoConverter(None, VideoOptions(output=out, crf=0, stable=True, max_side=96), backend=_Flicker()).run(src)
    got = read_video(out)
    assert result.frames == len(pts) and got["rotation"] == read_video(src)["rotation"]
    assert [round(float(t) * 1000) for t in got["times"]] == pts
    assert got["size"] == (142, 80)  # blended at the working size, scaled back as before


def test_a_cut_in_a_video_starts_with_the_per_frame_output(tmp_path):
    src = make_clip(tmp_path / "cut.mp4", ClipSpec(size=(96, 64), frames=8, photos=PHOTOS[:2]))
    plain = VideoConverter(None, VideoOptions(output=tmp_path / "p.mkv", crf=0), backend=_Flicker()).run(src)
    stable = VideoConverter(None, VideoOptions(output=tmp_path / "s.mkv", crf=0, stable=True), backend=_Flicker()).run(src)
    a, b = read_video(plain.output)["frames"], read_video(stable.output)["frames"]
    assert np.abs(a[4].astype(int) - b[4]).max() <= 2  # the second shot starts at frame 4
    assert np.abs(a[5].astype(int) - b[5]).mean() > 1  # and is blended after it
