"""`auto`'s compile decisions on the CPU: a size is compiled when the images of that size still to
convert save more than compiling costs; rare sizes stay eager; the cache's record makes a later
run's estimate warm. torch.compile is replaced by a recorder here (a real compile is in
test_convert_backends.py): what is tested is which calls go through it."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan_convert.backends import TorchBackend, select
from cyclegan_convert.backends import compile_plan
from cyclegan_convert.backends.compile_plan import CompileCosts, CompilePlan, CompileRecord
from cyclegan_convert.census import ShapeCensus, probe_size
from cyclegan_convert.converter import ConvertOptions, Converter
from cyclegan_convert.image_stages import ImageStages
from cyclegan_convert.resolve import ModelRef

from conftest import PHOTOS


class Recorder:
    """Stands in for torch.compile: runs the model and remembers the shapes it was called with."""

    def __init__(self):
        self.shapes: list[tuple[int, ...]] = []
        self.kwargs: dict = {}
        self.compiles = 0  # calls of torch.compile itself

    def __call__(self, model, **kw):
        self.kwargs = kw
        self.compiles += 1

        def run(x):
            self.shapes.append(tuple(x.shape))
            return model(x)
        return run


@pytest.fixture
def recorder(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    rec = Recorder()
    monkeypatch.setattr(torch, "compile", rec)
    # eager time of a tiny net is microseconds: make compiling cost about one eager image's
    # worth of 1000 images' savings, so that the counts decide
    monkeypatch.setitem(compile_plan.COSTS, "fp32", CompileCosts(speedup=0.5, cold_s=0.0, warm_s=0.0))
    monkeypatch.setattr(compile_plan, "NARROW_SPEEDUP", 0.5)  # the tiny test net is narrow
    return rec


def _frames(n, h, w):
    return torch.randint(0, 256, (n, h, w, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(h * w))


def test_a_size_is_compiled_only_when_enough_images_of_it_are_left(tiny_generator, recorder, monkeypatch):
    census = ShapeCensus()
    census.plan((40, 56), 6)
    census.plan((36, 64), 4)
    plan = CompilePlan(census, "fp32")
    # a compile costs what 2 images save at this eager speed; with the margin, 3 must be left
    monkeypatch.setattr(plan, "expected_compile_s", lambda shape: (plan.last_eager * 0.5 * 2, False))
    orig = plan.should_compile

    def spy(shape, eager_s):
        plan.last_eager = eager_s
        return orig(shape, eager_s)
    monkeypatch.setattr(plan, "should_compile", spy)
    notes = []
    plan.on_note = notes.append
    with TorchBackend(tiny_generator, "cpu", "fp32", channels_last=False) as ref, \
            TorchBackend(tiny_generator, "cpu", "fp32", channels_last=False, compile=plan) as be:
        assert "compiles the sizes that pay for it" in be.describe()
        assert plan.arch == "resnet_2blocks_ngf8_transpose_narrowlast"  # the CPU graph has NarrowConv2d
        outs = [be.infer(_frames(1, 40, 56)) for _ in range(6)]
        for _ in range(4):
            be.infer(_frames(1, 36, 64))
        for o in outs:
            assert torch.equal(o, ref.infer(_frames(1, 40, 56)))
    # the first 40x56 image warmed up; the second ran eager and left 4 (saving 2 images' time >
    # 1.5 x 1), the other four compiled; after the second 36x64 image 2 were left (saving 1 < 1.5)
    assert recorder.shapes == [(1, 3, 40, 56)] * 4
    assert recorder.kwargs == {"dynamic": False}
    assert len(notes) == 1 and notes[0].startswith("compiling the generator for 56x40: 4 more image(s)")
    assert census.remaining((40, 56)) == 0 and census.remaining((36, 64)) == 0


def test_the_compiler_is_not_touched_until_a_size_is_picked(tiny_generator, recorder):
    """Importing torch.compile's machinery cost 1.9 s of every process's start (2.3 s against 4.6 s
    for one small photo), though a plan compiles nothing for a single photo or for tiles."""
    census = ShapeCensus()
    census.plan((40, 56), 1)
    plan = CompilePlan(census, "fp32")
    with TorchBackend(tiny_generator, "cpu", "fp32", channels_last=False, compile=plan) as be:
        be.infer(_frames(1, 40, 56))
        be.infer_tiled(_frames(1, 96, 128), tile=64)
        assert "compiles the sizes that pay for it" in be.describe()
    assert recorder.compiles == 0 and recorder.shapes == []


def test_no_more_than_max_shapes_are_compiled(tiny_generator, recorder):
    census = ShapeCensus()
    sizes = [(32 + 4 * i, 32) for i in range(4)]
    for s in sizes:
        census.plan(s, 4)
    plan = CompilePlan(census, "fp32", max_shapes=2)
    with TorchBackend(tiny_generator, "cpu", "fp32", channels_last=False, compile=plan) as be:
        for h, w in sizes:
            for _ in range(4):
                be.infer(_frames(1, h, w))
    assert sorted(set(recorder.shapes)) == [(1, 3, 32, 32), (1, 3, 36, 32)]
    assert recorder.compiles == 1  # static shapes: one compiled module serves both sizes
    assert len(recorder.shapes) == 4  # two compiled sizes, the images after each size's first two


def test_the_record_makes_a_later_estimate_warm(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    plan = CompilePlan(ShapeCensus(), "bf16")
    plan.arch = "resnet_9blocks_ngf64_transpose"
    shape = (1, 3, 256, 256)
    cold = plan.expected_compile_s(shape)
    assert cold == (compile_plan.COSTS["bf16"].cold_s, False)
    plan.compiled_in(shape, 37.0)
    again = CompilePlan(ShapeCensus(), "bf16")
    again.arch = plan.arch
    assert again.expected_compile_s(shape) == (min(37.0, compile_plan.COSTS["bf16"].warm_s), True)
    assert CompileRecord(tmp_path / "inductor").seconds(plan.key(shape)) == 37.0
    # another architecture or size is not warm
    again.arch = "resnet_6blocks_ngf32_resize"
    assert again.expected_compile_s(shape)[1] is False


def test_auto_plans_compiles_only_on_a_native_bf16_cpu_with_a_census(tmp_path, tiny_generator, monkeypatch):
    p = tmp_path / "g.pth"
    torch.save(tiny_generator.state_dict(), p)
    ref = ModelRef(p, "pytorch")
    census = ShapeCensus()
    monkeypatch.setattr(select, "cpu_has_native_bf16", lambda: True)
    assert isinstance(select.make_backend(ref, "auto", "cpu", census=census).plan, CompilePlan)
    assert select.make_backend(ref, "auto", "cpu").plan is None  # no census (a library call): eager
    assert select.make_backend(ref, "auto", "cpu", compile=False, census=census).compile is False
    be = select.make_backend(ref, "auto", "cpu", compile=True, census=census)
    assert be.compile and be.plan is None  # --compile: every size
    monkeypatch.setattr(select, "cpu_has_native_bf16", lambda: False)
    assert select.make_backend(ref, "auto", "cpu", census=census).plan is None  # fp32 there: eager


def test_the_census_counts_the_working_sizes_of_the_files_to_convert(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    Image.open(PHOTOS[0]).convert("RGB").resize((300, 200)).save(src / "a.jpg")
    Image.open(PHOTOS[0]).convert("RGB").resize((300, 200)).save(src / "b.png")
    turned = Image.open(PHOTOS[1]).convert("RGB").resize((120, 80))
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned by 90 degrees: 80 wide, 120 high
    turned.save(src / "c.jpg", exif=exif)
    (src / "broken.jpg").write_bytes(b"not a jpeg")
    assert probe_size(src / "c.jpg") == (120, 80)
    assert probe_size(src / "broken.jpg") is None

    stages_census = {}

    class Spy(ShapeCensus):
        def plan(self, shape, n=1):
            stages_census[shape] = stages_census.get(shape, 0) + n
            super().plan(shape, n)

    conv = Converter(ModelRef(tmp_path / "unused.pth", "pytorch"), ConvertOptions(output=tmp_path / "out", max_side=150))
    stages = ImageStages(conv, router=None, settings_key="k", census=Spy())
    stages.count_total([str(src)])
    # 300x200 -> 150x100 (height 100, width 152 once padded to a multiple of 4); the turned one is
    # 80 wide and 120 high upright, under --max-side; the broken file is not counted
    assert stages_census == {(100, 152): 2, (120, 80): 1}
    assert stages.census.complete.is_set() and stages.progress.total == 4


def test_ccv_convert_compiles_the_common_size_from_its_census(tmp_path, tiny_generator, recorder, monkeypatch):
    """The whole path: the converter's walk fills the census, auto hands it to the PyTorch backend,
    and the size with images left goes through the compiler; outputs equal an eager run's."""
    monkeypatch.setattr(select, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setitem(compile_plan.COSTS, "bf16", CompileCosts(speedup=0.5, cold_s=0.0, warm_s=0.0))
    p = tmp_path / "g.pth"
    torch.save(tiny_generator.state_dict(), p)
    src = tmp_path / "in"
    src.mkdir()
    for i in range(4):
        Image.open(PHOTOS[i % len(PHOTOS)]).convert("RGB").resize((64, 48)).save(src / f"{i}.png")
    notes = []
    conv = Converter(ModelRef(p, "pytorch"), ConvertOptions(output=tmp_path / "out", jobs=1),
                     on_message=lambda kind, text: notes.append(text))
    conv.run([str(src)])
    eager = Converter(ModelRef(p, "pytorch"), ConvertOptions(output=tmp_path / "eager", jobs=1, compile=False))
    eager.run([str(src)])
    # the counting walk races the first image: at least the last images went through the compiler
    assert recorder.shapes and set(recorder.shapes) == {(1, 3, 48, 64)}
    assert any(n.startswith("compiling the generator for 64x48") for n in notes)
    for i in range(4):
        assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / f"{i}.png")),
                              np.asarray(Image.open(tmp_path / "eager" / f"{i}.png")))


def test_ccv_video_compiles_its_frame_size_from_the_frame_count(tmp_path, tiny_generator, recorder, monkeypatch):
    """A video's frames are one size and their count is known: the plan compiles it after two frames;
    the output has every frame."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from videoclips import ClipSpec, make_clip, read_video

    from cyclegan_convert.video import VideoConverter, VideoOptions

    monkeypatch.setattr(select, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setitem(compile_plan.COSTS, "bf16", CompileCosts(speedup=0.5, cold_s=0.0, warm_s=0.0))
    p = tmp_path / "g.pth"
    torch.save(tiny_generator.state_dict(), p)
    clip = make_clip(tmp_path / "in.mp4", ClipSpec(size=(64, 48), frames=6, audio_streams=0))
    notes = []
    result = VideoConverter(ModelRef(p, "pytorch"), VideoOptions(output=tmp_path / "out.mp4"),
                            on_message=lambda kind, text: notes.append(text)).run(clip)
    assert len(read_video(result.output)["frames"]) == 6
    assert recorder.shapes == [(1, 3, 48, 64)] * 4  # frames 3 to 6
    assert any(n.startswith("compiling the generator for 64x48: 4 more image(s)") for n in notes), notes


def test_the_speed_up_follows_the_image_size_between_the_measured_ones():
    costs = compile_plan.COSTS["bf16"]
    small, (big_pixels, big) = costs.speedup, costs.large
    assert costs.speedup_at(128 * 128) == small and costs.speedup_at(2048 * 2048) == big  # held outside
    middle = costs.speedup_at(362 * 362)  # halfway in log pixels
    assert min(small, big) < middle < max(small, big) and abs(middle - (small + big) / 2) < 0.01
    assert CompileCosts(speedup=0.5, cold_s=0, warm_s=0).speedup_at(4096 * 4096) == 0.5
