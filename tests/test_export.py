"""`ccv export` and its library: the exported graphs, their verification, caching, and the CLI.

One real export of a tiny generator (ngf 8, 2 blocks) is shared by all tests (tests/export_fixtures.py).
"""
from __future__ import annotations

import shutil

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from PIL import Image
from typer.testing import CliRunner

from cyclegan_convert.cli import app
from cyclegan_convert.errors import EngineBuildError, UsageError
from cyclegan_convert.export import ensure_onnx, tensorrt_available
from cyclegan_convert.export import pipeline
from cyclegan_convert.export.shapes import DEFAULT_PROFILE, Profile, Shape, make_profile, profile_for_sizes, scan_sizes
from cyclegan_convert.export.verify import check_graph, instance_norm_input_types, verify_onnx
from cyclegan_convert.resolve import ModelRef
from cyclegan_convert.store import ModelStore
from cyclegan_convert.weights import sha256_file
from export_fixtures import PHOTOS, install_tiny, tiny_export, tiny_generator

runner = CliRunner()
NO_TRT = not tensorrt_available()[0]


# -- the exported graphs --------------------------------------------------------------------------
def test_fp32_onnx_is_one_dynamic_file_with_metadata():
    exp = tiny_export()
    model = onnx.load(str(exp.fp32))
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [18]
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]
    assert model.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert not any(t.data_location == TensorProto.EXTERNAL for t in model.graph.initializer)
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["ccv.weights_sha256"] == sha256_file(exp.weights)
    assert meta["ccv.name"] == "tiny" and "[-1, 1]" in meta["ccv.input"] and "multiples of 4" in meta["ccv.input"]
    assert "torch" in meta["ccv.versions"] and meta["ccv.arch"] == "resnet_2blocks ngf 8"


def test_fp16_onnx_keeps_every_instance_norm_in_float32():
    model = onnx.load(str(tiny_export().fp16))
    inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    norms = instance_norm_input_types(inferred)
    assert len(norms) == 9  # 3 stem/down, 2 per block x 2, 2 up
    assert all(dtype == TensorProto.FLOAT for _, dtype in norms)
    # every conv in FP16 but the stem's (the first one, next to the input: see HalfPrecisionGenerator)
    convs = [n.input[1] for n in model.graph.node if n.op_type in ("Conv", "ConvTranspose")]
    types = {t.name: t.data_type for t in model.graph.initializer}
    assert [types[w] for w in convs] == [TensorProto.FLOAT] + [TensorProto.FLOAT16] * (len(convs) - 1)
    assert model.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT


def test_graph_check_refuses_a_half_precision_instance_norm(tmp_path):
    # what a naive FP16 conversion produces: InstanceNormalization on float16
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT16, [1, 2, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT16, [1, 2, 4, 4])
    scale = helper.make_tensor("s", TensorProto.FLOAT16, [2], [1.0, 1.0])
    bias = helper.make_tensor("b", TensorProto.FLOAT16, [2], [0.0, 0.0])
    node = helper.make_node("InstanceNormalization", ["x", "s", "b"], ["y"], name="norm16")
    model = helper.make_model(helper.make_graph([node], "g", [x], [y], [scale, bias]),
                              opset_imports=[helper.make_opsetid("", 18)])
    onnx.save(model, tmp_path / "bad.onnx")
    with pytest.raises(EngineBuildError, match="norm16"):
        check_graph(tmp_path / "bad.onnx", fp16=True)
    assert len(check_graph(tmp_path / "bad.onnx", fp16=False)) == 2  # valid ONNX, only the fp16 rule fails


# -- verification -----------------------------------------------------------------------------------
def test_verification_table_covers_batch_two_and_non_square_and_passes():
    fp32, fp16 = tiny_export().report.verifications
    for v in (fp32, fp16):
        shapes = [r.shape for r in v.rows]
        assert len(shapes) >= 3
        assert any(s.batch == 2 for s in shapes) and any(s.height != s.width for s in shapes)
        assert v.ok and all(r.finite for r in v.rows)
    assert max(r.max_abs for r in fp32.rows) <= 1e-4
    assert min(r.psnr_db for r in fp16.rows) >= 40.0
    assert max(r.max_abs for r in fp16.rows) > 0  # it really is half precision


def test_verification_fails_against_other_weights():
    exp = tiny_export()
    v = verify_onnx(exp.fp32, tiny_generator(seed=1), fp16=False, shapes=(Shape(1, 64, 64),))
    assert not v.ok
    assert "1x64x64: max abs" in v.failure()


def test_failed_verification_keeps_no_file(tmp_path, monkeypatch):
    exp = tiny_export()
    monkeypatch.setattr(pipeline, "export_onnx", lambda gen, path, **kw: shutil.copy(exp.fp32, path))
    wrong = tiny_generator(seed=1)  # the ONNX then does not match the PyTorch reference
    source = pipeline.source_of(ModelRef(exp.weights, "pytorch"))
    with pytest.raises(pipeline.VerificationFailed) as info:
        pipeline.export_verified(source, wrong, False, tmp_path / "generator.onnx", shapes=(Shape(1, 64, 64),))
    assert info.value.verification.rows[0].max_abs > 1e-4
    assert list(tmp_path.iterdir()) == []  # neither the file nor a temporary one


# -- caching ----------------------------------------------------------------------------------------
def test_ensure_onnx_reuses_current_files_and_reexports_stale_ones(ccv_home, monkeypatch):
    entry = install_tiny(ccv_home)
    calls = []
    monkeypatch.setattr(pipeline, "export_verified", lambda *a, **k: calls.append(a[3]))
    path = ensure_onnx(entry, fp16=True)
    assert path == entry.exports_dir / "generator.fp16.onnx" and calls == []
    # other weights under the same name: the cached ONNX no longer belongs to them
    other = ccv_home / "other.pth"
    torch.save(tiny_generator(seed=1).state_dict(), other)
    entry = ModelStore(ccv_home).add(entry, other)
    entry.exports_dir.mkdir()
    shutil.copy(tiny_export().fp32, entry.exports_dir / "generator.onnx")
    ensure_onnx(entry, fp16=False)
    assert calls == [entry.exports_dir / "generator.onnx"]


def test_ensure_onnx_for_a_model_file_uses_a_cache_folder(ccv_home, monkeypatch):
    exp = tiny_export()

    def fake_export(source, generator, fp16, target, **kw):
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(exp.fp16 if fp16 else exp.fp32, target)

    monkeypatch.setattr(pipeline, "export_verified", fake_export)
    path = ensure_onnx(ModelRef(exp.weights, "pytorch"), fp16=True)
    assert path.is_relative_to(ccv_home / "cache" / "exports") and path.name == "generator.fp16.onnx"
    onnx_ref = ModelRef(exp.fp32, "onnx")
    assert ensure_onnx(onnx_ref, fp16=False) == exp.fp32


# -- shapes and profiles ----------------------------------------------------------------------------
def test_shape_parsing_and_profiles():
    assert Shape.parse("2x512x768") == Shape(2, 512, 768)
    for bad in ("512x512", "1x510x512", "0x64x64", "axbxc"):
        with pytest.raises(UsageError):
            Shape.parse(bad)
    with pytest.raises(UsageError, match="min <= opt <= max"):
        Profile(Shape(1, 512, 512), Shape(1, 256, 256), Shape(1, 1024, 1024))
    p = make_profile(max_shape="2x256x256")
    assert p.max == Shape(2, 256, 256) and p.opt == Shape(1, 256, 256) and p.min == DEFAULT_PROFILE.min
    p = profile_for_sizes([(375, 500), (375, 500), (500, 375), (1080, 1920)])
    assert p.min == Shape(1, 376, 376) and p.opt == Shape(1, 376, 500) and p.max == Shape(3, 1080, 1920)
    assert profile_for_sizes([(3000, 4000)]).max == Shape(1, 3000, 4000)  # big photos: batch 1
    assert profile_for_sizes([(256, 256)]).max == Shape(4, 256, 256)


def test_scan_sizes_reads_real_images_with_orientation(tmp_path):
    (tmp_path / "sub").mkdir()
    shutil.copy(PHOTOS[0], tmp_path / "a.jpg")
    img = Image.fromarray(np.zeros((40, 60, 3), np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated by 90 degrees
    img.save(tmp_path / "sub" / "rotated.JPG", exif=exif)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "empty.jpg").write_bytes(b"")  # left out with one line, not the end of the scan
    skipped = []
    assert sorted(scan_sizes(tmp_path, on_skip=skipped.append)) == [(60, 40), (256, 256)]
    assert len(skipped) == 1 and "empty.jpg" in skipped[0]
    with pytest.raises(UsageError):
        scan_sizes(tmp_path / "notes.txt")


# -- the CLI ----------------------------------------------------------------------------------------
@pytest.mark.skipif(not NO_TRT, reason="checks the messages shown without TensorRT")
def test_cli_without_tensorrt_reuses_exports_and_says_what_the_engine_needs(ccv_home):
    entry = install_tiny(ccv_home)
    result = runner.invoke(app, ["export", "--to", "tiny"])
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output
    assert "pip install 'cyclegan-convert[tensorrt]'" in result.output
    before = (entry.exports_dir / "generator.onnx").stat().st_mtime_ns
    result = runner.invoke(app, ["export", "--to", "tiny", "--engine"])
    assert result.exit_code == 2
    assert "--engine: TensorRT" in result.output and "cyclegan-convert[tensorrt]" in result.output
    assert (entry.exports_dir / "generator.onnx").stat().st_mtime_ns == before


def test_cli_usage_errors(ccv_home):
    install_tiny(ccv_home, with_exports=False)
    for args, needle in ((["--min-shape", "1x63x64"], "multiples of 4"),
                         (["--fp32", "--engine"], "FP16 ONNX"),
                         (["--for", str(ccv_home / "missing")], "--for"),
                         (["--to", "tinny"], "Did you mean tiny")):
        result = runner.invoke(app, ["export", *(["--to", "tiny"] if "--to" not in args else []), *args])
        assert result.exit_code == 2, (args, result.output)
        assert needle in result.output


def test_cli_out_that_cannot_be_a_folder_is_a_usage_error(tmp_path):
    exp = tiny_export()
    (tmp_path / "afile").write_text("")
    for out in (tmp_path / "afile", tmp_path / "afile" / "below"):
        result = runner.invoke(app, ["export", "--model", str(exp.weights), "--fp32", "--out", str(out)])
        assert result.exit_code == 2, result.output  # was a FileExistsError / NotADirectoryError traceback
        assert "--out" in result.output and "cannot be a folder" in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)


def test_cli_exports_a_model_file_and_prints_the_table(tmp_path):
    exp = tiny_export()
    result = runner.invoke(app, ["export", "--model", str(exp.weights), "--fp32", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "1x256x256" in result.output and "2x256x256" in result.output and "ok" in result.output
    made = tmp_path / "out" / "generator.onnx"
    assert made.is_file() and not (tmp_path / "out" / "generator.fp16.onnx").exists()
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["generator.onnx"]  # no temporary left
    # same graph as the session's export: ONNX Runtime gives the same numbers
    import onnxruntime as ort

    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 64, 96)).astype(np.float32)
    a = ort.InferenceSession(str(made), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    b = ort.InferenceSession(str(exp.fp32), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_cli_refuses_a_generator_that_is_not_rgb(tmp_path):
    """A 1-channel generator (the original trains them with --input_nc 1): one line, exit 2, nothing written."""
    from cyclegan_convert.networks import ResnetGenerator

    path = tmp_path / "gray.pth"
    torch.save(ResnetGenerator(1, 1, ngf=8, n_blocks=1).state_dict(), path)
    result = runner.invoke(app, ["export", "--model", str(path), "--fp32", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output  # was a RuntimeError from the exporter
    assert "maps 1 to 1 channels" in result.output
    assert not list((tmp_path / "out").glob("*.onnx"))


def test_a_generator_with_the_lattice_notch_exports_to_fp16_with_the_notch_in_fp32(tmp_path):
    """The notch (ccv's own models, see networks.LatticeNotch) is plain convolutions: the FP16 file
    passes the graph checks and matches PyTorch on real photos, the notch's convolutions in FP32."""
    from cyclegan_convert.export.onnx_export import export_onnx
    from cyclegan_convert.networks import ResnetGenerator, init_weights

    torch.manual_seed(0)
    net = init_weights(ResnetGenerator(ngf=8, n_blocks=2, upsample="resize", notch=(4, 16.0))).eval()
    path = tmp_path / "g.onnx"
    export_onnx(net, path, fp16=True, metadata={})
    assert check_graph(path, fp16=True)
    v = verify_onnx(path, net, fp16=True, shapes=(Shape(2, 64, 96), Shape(1, 132, 68)))  # dynamic: not the traced one
    assert v.ok, v.failure()
    inferred = onnx.shape_inference.infer_shapes(onnx.load(str(path)), check_type=True, strict_mode=True)
    types = {vi.name: vi.type.tensor_type.elem_type for vi in inferred.graph.value_info}
    types.update({t.name: t.data_type for t in inferred.graph.initializer})
    # the notch's Gaussian passes are the graph's only grouped (depthwise) convolutions
    notch = [n for n in inferred.graph.node if n.op_type == "Conv"
             and any(a.name == "group" and a.i > 1 for a in n.attribute)]
    assert len(notch) >= 4
    assert all(types[n.input[0]] == types[n.input[1]] == TensorProto.FLOAT for n in notch)
