"""`--stable`: scene cuts on real frames, smoothed InstanceNorm statistics, and the CLI rule."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cyclegan_convert.backends.base import Backend
from cyclegan_convert.errors import UsageError
from cyclegan_convert.networks import ResnetGenerator, init_weights
from cyclegan_convert.stabilize import SceneCutDetector, StableOptions, StatsSmoother, frame_change
from cyclegan_convert.video import VideoConverter, VideoOptions
from videoclips import PHOTOS, ClipSpec, make_clip, pan_zoom_frames, read_video



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


def test_stable_needs_the_torch_backend(tmp_path):
    class NotTorch(Backend):
        name = "onnxruntime"

        def _run(self, x):
            return x

    src = make_clip(tmp_path / "s.mp4", ClipSpec(frames=2))
    with pytest.raises(UsageError, match="--stable needs the torch backend"):
        VideoConverter(None, VideoOptions(stable=True), backend=NotTorch()).run(src)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.mp4"]
