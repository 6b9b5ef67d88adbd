"""`ccv convert` end to end on a tiny generator: trees, names, skips, failures, metadata, sizes."""
from __future__ import annotations

import hashlib
import os
import re
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from cyclegan_convert.cli import app
from cyclegan_convert.converter import ConvertOptions, Converter
from cyclegan_convert.imaging import ORIENTATION_TAG, read_image
from cyclegan_convert.manifest import FAILURES_NAME, MANIFEST_NAME
from cyclegan_convert.resolve import resolve_model
from cyclegan_convert.store import ModelEntry, ModelStore

from conftest import PHOTOS


@pytest.fixture
def model(tmp_path, tiny_generator):
    path = tmp_path / "m.pth"
    torch.save(tiny_generator.state_dict(), path)
    return path


def _photo(path, w=64, h=48, mode="RGB", i=0, **save):
    img = Image.open(PHOTOS[i % len(PHOTOS)]).convert("RGB").resize((w, h))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.convert(mode).save(path, **save)
    return path


def _digest(folder):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def _ccv(*args):
    return CliRunner().invoke(app, ["convert", *map(str, args)], terminal_width=200)


def _outputs(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and p.name not in (MANIFEST_NAME, FAILURES_NAME))


@pytest.fixture
def tree(tmp_path):
    src = tmp_path / "in"
    _photo(src / "a.jpg", i=0)
    _photo(src / "sub" / "a.jpg", 50, 40, i=1)  # same name, other folder
    _photo(src / "sub" / "deeper" / "Ünï cødé name.PNG", 33, 27, i=2)  # odd size, non-ASCII, upper case
    _photo(src / "UPPER.JPG", 40, 64, i=3)
    (src / ".DS_Store").write_bytes(b"\0junk")
    (src / "._a.jpg").write_bytes(b"\0junk")
    (src / "Thumbs.db").write_bytes(b"\0junk")
    (src / "notes.txt").write_text("not an image")
    return src


EXPECTED = ["UPPER.JPG", "a.jpg", "sub/a.jpg", "sub/deeper/Ünï cødé name.PNG"]


def test_folder_to_mirrored_sibling_tree(tree, model):
    before = _digest(tree)
    r = _ccv(tree, "--model", model)
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[0].startswith("backend: PyTorch")
    out = tree.parent / "in_m"
    assert _outputs(out) == EXPECTED
    for rel in EXPECTED:
        with Image.open(tree / rel) as a, Image.open(out / rel) as b:
            assert a.size == b.size and a.format == b.format
    assert _digest(tree) == before  # inputs untouched, nothing written into the input tree
    assert not [p for p in out.rglob(".*part*")]
    umask = os.umask(0)
    os.umask(umask)
    assert (out / "a.jpg").stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's owner-only mode


def test_rerun_skips_only_same_model_and_settings(tree, model, tmp_path, tiny_generator):
    assert _ccv(tree, "--model", model, "--ext", "png").exit_code == 0
    out = tree.parent / "in_m"
    stamp = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}
    r = _ccv(tree, "--model", model, "--ext", "png")
    assert r.exit_code == 0 and re.search(r"converted\s*│\s*0\s", r.output) and re.search(r"skipped\s*│\s*4\s", r.output)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.png")} == stamp  # nothing rewritten
    # other settings: redone
    r = _ccv(tree, "--model", model, "--ext", "png", "--max-side", "32")
    assert r.exit_code == 0
    assert all(p.stat().st_mtime_ns != stamp[p] for p in stamp)
    # another model (same file name, other weights): redone
    with torch.no_grad():
        for prm in tiny_generator.parameters():
            prm.add_(0.01)
    torch.save(tiny_generator.state_dict(), model)
    stamp = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}
    conv = Converter(resolve_model(model=model), ConvertOptions(ext="png", max_side=32))
    s = conv.run([str(tree)])
    assert s.converted == 4 and s.skipped == 0
    # a changed source: only that one is redone
    _photo(tree / "a.jpg", 64, 48, i=2)
    s = Converter(resolve_model(model=model), ConvertOptions(ext="png", max_side=32)).run([str(tree)])
    assert (s.converted, s.skipped) == (1, 3)


def test_existing_file_not_made_by_ccv_is_kept_unless_overwrite(tree, model):
    out = tree.parent / "in_m"
    mine = out / "a.jpg"
    mine.parent.mkdir()
    mine.write_bytes(b"the user's own file")
    r = _ccv(tree, "--model", model)
    assert r.exit_code == 0 and "not made by ccv" in r.output
    assert mine.read_bytes() == b"the user's own file"
    assert _ccv(tree, "--model", model, "--on-exists", "overwrite").exit_code == 0
    with Image.open(mine) as im:
        assert im.size == (64, 48)


def test_output_made_from_another_source_is_kept_unless_overwrite(tmp_path, model):
    """Two folders converted into one -o, each with a.jpg: the second run replaced the first one's
    output (the manifest said "made by ccv", so it was taken for an out-of-date output)."""
    first, second, out = tmp_path / "first", tmp_path / "second", tmp_path / "out"
    _photo(first / "a.jpg", 64, 48, i=0)
    _photo(second / "a.jpg", 40, 40, i=1)
    assert _ccv(first, "--model", model, "-o", out).exit_code == 0
    made = (out / "a.jpg").read_bytes()
    r = _ccv(second, "--model", model, "-o", out)
    assert r.exit_code == 0 and "made by ccv from" in r.output
    assert (out / "a.jpg").read_bytes() == made
    assert _ccv(second, "--model", model, "-o", out, "--on-exists", "overwrite").exit_code == 0
    with Image.open(out / "a.jpg") as im:
        assert im.size == (40, 40)
    # once the recorded source is gone (moved or deleted), another source may redo the output
    first.rename(tmp_path / "moved")
    (second / "a.jpg").unlink()
    s = Converter(resolve_model(model=model), ConvertOptions(output=str(out))).run([str(tmp_path / "moved")])
    assert (s.converted, s.skipped) == (1, 0)
    with Image.open(out / "a.jpg") as im:
        assert im.size == (64, 48)


def test_bad_files_listed_run_goes_on_exit_1(tree, model):
    (tree / "empty.png").write_bytes(b"")
    (tree / "sub" / "text.jpg").write_text("hello")
    data = (tree / "a.jpg").read_bytes()
    (tree / "cut.jpg").write_bytes(data[: len(data) // 2])
    r = _ccv(tree, "--model", model)
    assert r.exit_code == 1, r.output
    out = tree.parent / "in_m"
    assert _outputs(out) == EXPECTED  # every good file converted
    failures = (out / FAILURES_NAME).read_text(encoding="utf-8")
    for name in ("empty.png", "text.jpg", "cut.jpg"):
        assert name in failures and name in r.output
    assert "3 file(s) failed" in r.output
    # fixed: the failures file goes away on the next clean run
    for name in ("empty.png", "sub/text.jpg", "cut.jpg"):
        (tree / name).unlink()
    assert _ccv(tree, "--model", model).exit_code == 0
    assert not (out / FAILURES_NAME).exists()


def test_ext_suffix_and_collisions_in_dry_run(tmp_path, model):
    src = tmp_path / "pics"
    _photo(src / "x.jpg")
    _photo(src / "x.png")
    r = _ccv(src, "--model", model, "--ext", "webp", "--suffix", "_art", "--dry-run")
    assert r.exit_code == 0
    assert "x_jpg_art.webp" in r.output and "x_png_art.webp" in r.output and "renamed" in r.output
    assert not (tmp_path / "pics_m").exists()  # a dry run writes nothing
    assert _ccv(src, "--model", model, "--ext", "webp", "--suffix", "_art", "--quality", "70").exit_code == 0
    assert _outputs(tmp_path / "pics_m") == ["x_jpg_art.webp", "x_png_art.webp"]
    with Image.open(tmp_path / "pics_m" / "x_jpg_art.webp") as im:
        assert im.format == "WEBP"


def test_every_file_is_accounted_for_and_a_3d_mpo_converts_to_a_jpeg(tmp_path, model):
    """A Nintendo 3DS .mpo and a GoPro .GPR vanished from the counts (neither converted, skipped,
    failed nor listed), also in --dry-run; `--ext tiff` was refused though `--ext same` wrote TIFF."""
    src = tmp_path / "card"
    _photo(src / "a.jpg")
    left, right = (Image.open(PHOTOS[i]).convert("RGB").resize((64, 48)) for i in (0, 1))
    (src / "3ds").mkdir()
    left.save(src / "3ds" / "HNI_0001.MPO", save_all=True, append_images=[right])  # two views, as a 3DS writes
    for name in ("GOPR0001.GPR", "clip.MOV", "3ds/readme.txt", "3ds/more.txt"):
        (src / name).write_bytes(b"\0not a photo")
    r = _ccv(src, "--model", model, "--dry-run")
    assert r.exit_code == 0, r.output
    assert "HNI_0001.jpg" in r.output and "2 convert" in r.output
    assert "ignored 4 files that are not images ccv reads (.txt 2, .gpr 1, .mov 1)" in r.output
    r = _ccv(src, "--model", model, "--ext", "tiff")
    assert r.exit_code == 0, r.output
    assert "4 files that are not images ccv reads" in r.output and "2 views in one MPO file" in r.output
    assert _outputs(tmp_path / "card_m") == ["3ds/HNI_0001.tiff", "a.tiff"]
    r = _ccv(src, "--model", model, "-o", tmp_path / "same")
    assert r.exit_code == 0, r.output
    with Image.open(tmp_path / "same" / "3ds" / "HNI_0001.jpg") as im:
        assert im.format == "JPEG" and im.size == (64, 48)


def test_file_inputs_beside_themselves_and_globs(tree, model, tmp_path):
    r = _ccv(tree / "a.jpg", "--model", model)
    assert r.exit_code == 0
    assert (tree / "a_m.jpg").is_file()  # beside the input, never over it
    # later folder and glob runs over that folder leave the output written beside its source out
    r = _ccv(f"{tree}/**/*.jpg", "-o", tmp_path / "out", "--model", model)
    assert r.exit_code == 0, r.output
    assert _outputs(tmp_path / "out") == ["a.jpg", "sub/a.jpg"]
    r = _ccv(tree, "-o", tmp_path / "out2", "--model", model)
    assert r.exit_code == 0, r.output
    assert "a_m.jpg" not in _outputs(tmp_path / "out2") and "a.jpg" in _outputs(tmp_path / "out2")
    # a mirrored output tree is another matter: converting it back on purpose takes every file
    r = _ccv(tmp_path / "out2", "-o", tmp_path / "back", "--model", model)
    assert r.exit_code == 0, r.output
    assert _outputs(tmp_path / "back") == _outputs(tmp_path / "out2")
    # an explicitly named output file is converted like any file
    r = _ccv(tree / "a_m.jpg", "-o", tmp_path / "again", "--model", model)
    assert r.exit_code == 0 and _outputs(tmp_path / "again") == ["a_m.jpg"]
    r = _ccv(tree / "nope", "--model", model)
    assert r.exit_code == 2 and "no such file" in r.output


def test_max_side_scales_back_or_keeps_work_size(tmp_path, model):
    src = _photo(tmp_path / "big" / "p.jpg", 200, 100)
    assert _ccv(src.parent, "--model", model, "--max-side", "64", "-o", tmp_path / "a").exit_code == 0
    assert _ccv(src.parent, "--model", model, "--max-side", "64", "--work-size", "-o", tmp_path / "b").exit_code == 0
    with Image.open(tmp_path / "a" / "p.jpg") as a, Image.open(tmp_path / "b" / "p.jpg") as b:
        assert a.size == (200, 100) and b.size == (64, 32)


@pytest.mark.parametrize("option", [["--backend", "tensorflow"], ["--device", "gpu"], ["--precision", "int8"],
                                    ["--compile", "--backend", "onnxruntime"]])
def test_unknown_engine_options_are_usage_errors_even_in_a_dry_run(tree, model, option):
    r = _ccv(tree, "--model", model, "--dry-run", *option)
    assert r.exit_code == 2 and option[1] in r.output


def test_tiny_and_thin_images_convert_at_their_size(tmp_path, model):
    sizes = [(1, 1), (5, 5), (3, 200), (200, 6)]  # the generator needs sides of 8 after padding
    for w, h in sizes:
        _photo(tmp_path / "in" / f"t{w}x{h}.png", w, h, format="PNG")
    r = _ccv(tmp_path / "in", "--model", model, "-o", tmp_path / "out")
    assert r.exit_code == 0, r.output
    for w, h in sizes:
        with Image.open(tmp_path / "out" / f"t{w}x{h}.png") as im:
            assert im.size == (w, h)


def test_tiles_match_the_whole_image(tmp_path, model):
    src = _photo(tmp_path / "t" / "p.png", 160, 120, format="PNG")
    assert _ccv(src.parent, "--model", model, "-o", tmp_path / "whole").exit_code == 0
    assert _ccv(src.parent, "--model", model, "--tile", "64", "-o", tmp_path / "tiled").exit_code == 0
    a = np.asarray(Image.open(tmp_path / "whole" / "p.png")).astype(float)
    b = np.asarray(Image.open(tmp_path / "tiled" / "p.png")).astype(float)
    assert a.shape == b.shape == (120, 160, 3)
    assert 10 * np.log10(255**2 / ((a - b) ** 2).mean()) > 25


def test_metadata_alpha_and_orientation(tmp_path, model):
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = 6
    exif[0x010F] = "TestCam"
    src = tmp_path / "m"
    _photo(src / "rot.jpg", 64, 40, exif=exif.tobytes(), icc_profile=icc)
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><!-- rated 5 --></x:xmpmeta>'
    _photo(src / "print.jpg", 64, 40, dpi=(300, 300), xmp=xmp)  # a print master: no EXIF, JFIF density + XMP
    rgba = Image.open(PHOTOS[0]).convert("RGBA").resize((48, 32))
    rgba.putalpha(Image.linear_gradient("L").resize((48, 32)))
    rgba.save(src / "alpha.png")
    assert _ccv(src, "--model", model, "-o", tmp_path / "keep").exit_code == 0
    with Image.open(tmp_path / "keep" / "rot.jpg") as im:
        assert im.size == (40, 64)  # upright
        assert im.getexif()[ORIENTATION_TAG] == 1 and im.getexif()[0x010F] == "TestCam"
        assert im.info.get("icc_profile") == icc
    with Image.open(tmp_path / "keep" / "print.jpg") as im:
        assert im.info.get("dpi") == (300, 300) and im.info.get("xmp") == xmp
    with Image.open(tmp_path / "keep" / "alpha.png") as im:
        assert im.mode == "RGBA" and np.array_equal(np.asarray(im)[..., 3], np.asarray(rgba)[..., 3])
    assert _ccv(src, "--model", model, "-o", tmp_path / "strip", "--metadata", "strip").exit_code == 0
    with Image.open(tmp_path / "strip" / "rot.jpg") as im:
        assert im.size == (40, 64) and not im.info.get("icc_profile") and len(im.getexif()) == 0
    with Image.open(tmp_path / "strip" / "print.jpg") as im:
        assert not im.info.get("xmp") and im.info.get("dpi") == (300, 300)  # the print size is no private data


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without a GPU")
def test_cuda_without_gpu_is_an_error(tree, model):
    r = _ccv(tree, "--model", model, "--device", "cuda")
    assert r.exit_code == 2 and "no CUDA GPU" in r.output
    assert not (tree.parent / "in_m").exists()


@pytest.mark.skipif(sys.platform == "win32", reason="symbolic links")
def test_symlink_loop_and_output_inside_input(tree, model):
    os.symlink(tree, tree / "sub" / "loop")
    r = _ccv(tree, "--model", model, "-o", tree / "converted")
    assert r.exit_code == 0, r.output
    assert _outputs(tree / "converted") == EXPECTED  # each real folder once, the output not re-read
    r = _ccv(tree, "--model", model, "-o", tree / "converted")
    assert r.exit_code == 0 and _outputs(tree / "converted") == EXPECTED
    r = _ccv(tree, "--model", model, "-o", tree)
    assert r.exit_code == 2 and "output folder is the input folder" in r.output


def test_store_model_by_name_and_api_progress(tree, tmp_path, tiny_generator):
    w = tmp_path / "g.pth"
    torch.save(tiny_generator.state_dict(), w)
    ModelStore().add(ModelEntry(target="monet", source="photo", origin="imported", ngf=8), w)
    seen = []
    messages = []
    conv = Converter(resolve_model(to="monet"), ConvertOptions(batch_size=2),
                     on_progress=lambda p: seen.append((p.done, p.total)), on_message=lambda k, t: messages.append(k))
    s = conv.run([str(tree)])
    assert s.converted == 4 and not s.failed and s.out_roots == [tree.parent / "in_monet"]
    assert messages[0] == "backend"
    assert seen[-1] == (4, 4)
    assert s.stats.infer.items == 4 and s.stats.decode.rate > 0


def test_file_and_its_folder_together_and_glob_skips_its_output(tree, model, tmp_path):
    from cyclegan_convert.files import Naming, iter_jobs, plan_roots

    roots = plan_roots([str(tree / "a.jpg"), str(tree)], "m")
    dsts = [j.dst for j in iter_jobs(roots, Naming(), Naming(suffix="_m"))]
    assert tree / "a_m.jpg" in dsts and tree.parent / "in_m" / "sub" / "a.jpg" in dsts and len(dsts) == 5
    roots = plan_roots([f"{tree}/**/*.jpg"], "m", tree / "out")
    (tree / "out").mkdir()
    _photo(tree / "out" / "old.jpg")
    assert all("out" not in j.src.relative_to(tree).parts for j in iter_jobs(roots, Naming()))


def test_first_use_download_of_the_default_model_is_announced(tmp_path, monkeypatch):
    from cyclegan_convert import pretrained as pt
    from pretrained_server import serving, tiny_generator_bytes

    _photo(tmp_path / "in" / "a.jpg")
    with serving({"style_monet.pth": tiny_generator_bytes(with_legacy_buffers=True)}) as srv:
        monkeypatch.setenv(pt.BASE_URL_ENV, srv.url)
        r = _ccv(tmp_path / "in", "--dry-run")
    assert r.exit_code == 0, r.output
    assert "style_monet" in r.output.splitlines()[0]  # the notice, on the CLI's stream, before the plan


def test_names_differing_only_in_case_never_share_an_output(tmp_path):
    """a.jpg, a.JPG and a.png with --ext png: three distinct outputs even on case-insensitive disks."""
    from cyclegan_convert.files import Naming, _named

    files = [tmp_path / n for n in ("a.JPG", "a.jpg", "a.png")]
    names = [j.dst.name for j in _named(files, tmp_path / "out", Naming(ext="png"), tmp_path / "out")]
    assert len({n.lower() for n in names}) == 3 and all(n.endswith(".png") for n in names)


@pytest.mark.skipif(sys.platform == "win32", reason="symbolic links need privileges on Windows")
def test_outputs_beside_linked_sources_are_left_out_and_torn_manifests_read(tmp_path, model):
    real = _photo(tmp_path / "elsewhere" / "real.jpg")
    folder = tmp_path / "shots"
    folder.mkdir()
    (folder / "link.jpg").symlink_to(real)
    _photo(folder / "café.jpg", i=1)
    assert _ccv(folder / "link.jpg", "--model", model).exit_code == 0
    assert (folder / "link_m.jpg").is_file()
    # a later kill tore a line inside a multi-byte character
    with open(folder / MANIFEST_NAME, "ab") as f:
        f.write('{"out": "café_m.jpg", "key": "x", "src": "/x/caf'.encode() + "é".encode()[:1])
    r = _ccv(folder, "-o", tmp_path / "out", "--model", model)
    assert r.exit_code == 0, r.output
    assert _outputs(tmp_path / "out") == ["café.jpg", "link.jpg"]


def test_output_folder_that_is_a_file_is_a_usage_error(tree, model, tmp_path):
    """-o naming an existing file (or a folder under one) failed every image, then crashed with a
    traceback writing the failures file."""
    (tmp_path / "notes.txt").write_text("mine")
    for out in (tmp_path / "notes.txt", tmp_path / "notes.txt" / "sub"):
        for extra in ([], ["--dry-run"]):
            r = _ccv(tree, "--model", model, "-o", out, *extra)
            assert r.exit_code == 2, r.output
            assert "is a file" in r.output and "Traceback" not in r.output and "failed:" not in r.output
            assert r.output.startswith("error:")  # alone: no empty progress bar drawn before it
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_failures_file_that_cannot_be_written_is_a_note_not_a_crash(tree, model):
    (tree / "empty.jpg").write_bytes(b"")
    out = tree.parent / "in_m"
    (out / FAILURES_NAME).mkdir(parents=True)  # stands in for an output folder that refuses writes
    r = _ccv(tree, "--model", model)
    assert r.exit_code == 1 and (r.exception is None or isinstance(r.exception, SystemExit)), r.output
    assert "cannot write the list of failures" in r.output and "1 file(s) failed; listed above" in r.output
    assert _outputs(out) == EXPECTED


def test_the_same_input_twice_is_converted_once(tree, model, tmp_path):
    """`ccv convert photos photos/` converted every file twice into the same outputs (two encoders
    racing on one name); a file named twice got a second, renamed copy (a_jpg_m.jpg, a_jpg_m_2.jpg)."""
    r = _ccv(tree, f"{tree}/", tree / "sub" / "..", "--model", model)
    assert r.exit_code == 0 and re.search(r"converted\s*│\s*4\b", r.output), r.output
    assert _outputs(tree.parent / "in_m") == EXPECTED
    r = _ccv(tree / "a.jpg", tree / "sub" / ".." / "a.jpg", "--model", model, "--dry-run")
    assert r.exit_code == 0 and r.output.count("convert ") == 1 and "a_m.jpg" in r.output, r.output
    r = _ccv(tree, "-o", tmp_path / "o", tree, "--model", model, "--dry-run")  # one input: fills -o itself
    assert "o/UPPER.JPG" in r.output and "o/in/" not in r.output and "in_2" not in r.output, r.output
    r = _ccv(tree, f"{tree}/*.jpg", "--model", model, "--dry-run")  # a folder and a glob in it
    assert r.output.count("a.jpg ->") == 2, r.output  # a.jpg and sub/a.jpg, once each
    r = _ccv(tree, f"{tree}/*.jpg", "-o", tmp_path / "o2", "--model", model, "--dry-run")  # the same with -o
    assert r.output.count("a.jpg ->") == 2 and "in_2" not in r.output, r.output


@pytest.mark.skipif(sys.platform == "win32", reason="symbolic links")
def test_a_folder_reached_through_a_link_is_mirrored_under_its_own_name(tmp_path, model):
    """best-of -> trip sorts before trip: the walk entered the link first and mirrored trip/x.jpg as
    best-of/x.jpg, leaving no trip/ in the output."""
    src = tmp_path / "shots"
    _photo(src / "trip" / "x.jpg")
    (src / "best-of").symlink_to("trip", target_is_directory=True)
    r = _ccv(src, "--model", model, "-o", tmp_path / "out")
    assert r.exit_code == 0, r.output
    assert _outputs(tmp_path / "out") == ["trip/x.jpg"]


def test_overwrite_never_replaces_a_photo_of_the_input_tree(tree, model):
    """-o pointing at a folder of the input that holds photos, with --on-exists overwrite: in/a.jpg's
    output replaced the photo in/sub/a.jpg ("inputs are never written to")."""
    before = _digest(tree)
    r = _ccv(tree, "--model", model, "-o", tree / "sub", "--on-exists", "overwrite")
    assert r.exit_code == 1 and "input folder" in r.output, r.output
    after = {p: d for p, d in _digest(tree).items() if p.name not in (MANIFEST_NAME, FAILURES_NAME)}
    assert all(after[p] == d for p, d in before.items())  # every original byte for byte
    # outputs ccv made there itself are still replaced on request
    assert (tree / "sub" / "UPPER.JPG").is_file()
    r = _ccv(tree, "--model", model, "-o", tree / "sub", "--on-exists", "overwrite")
    assert "UPPER.JPG: the output" not in r.output and "a.jpg: the output" in r.output, r.output


def test_animated_and_multi_page_files_say_only_the_first_frame_is_converted(tmp_path, model):
    src = tmp_path / "anim"
    frame = Image.open(PHOTOS[0]).convert("RGB").resize((32, 24))
    src.mkdir()
    frame.save(src / "a.webp", save_all=True, append_images=[frame.rotate(180)], duration=100)
    frame.save(src / "pages.tif", save_all=True, append_images=[frame.rotate(180)])
    _photo(src / "still.png", 32, 24)
    r = _ccv(src, "--model", model)
    assert r.exit_code == 0, r.output
    assert "a.webp: 2 frames or pages; only the first is converted" in r.output
    assert "pages.tif: 2 frames" in r.output and "still.png: " not in r.output


def test_max_side_decodes_large_jpegs_smaller_and_writes_them_at_their_size(tmp_path, model, monkeypatch):
    """--max-side 512: a 3000x2000 JPEG is decoded at 1/4 (libjpeg's DCT scaling) and its output still
    has the original size; a sideways one (EXIF orientation 6) comes out upright; a PNG is read whole."""
    from cyclegan_convert import image_stages

    decoded = {}  # name: (rgb shape as decoded, full_size)

    def spy(path, *a, **kw):
        img = read_image(path, *a, **kw)
        decoded[path.name] = (img.size, img.full_size)
        return img

    monkeypatch.setattr(image_stages, "read_image", spy)
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = 6
    exif[0x010F] = "TestCam"
    src = tmp_path / "in"
    _photo(src / "big.jpg", 3000, 2000, quality=92)
    _photo(src / "rot.jpg", 3000, 2000, i=1, quality=92, exif=exif.tobytes())
    _photo(src / "flat.png", 300, 200)
    r = _ccv(src, "--model", model, "--max-side", "512", "-o", tmp_path / "out")
    assert r.exit_code == 0, r.output
    assert decoded == {"big.jpg": ((500, 750), (2000, 3000)), "rot.jpg": ((750, 500), (3000, 2000)),
                       "flat.png": ((200, 300), None)}
    with Image.open(tmp_path / "out" / "big.jpg") as im:
        assert im.size == (3000, 2000)
    with Image.open(tmp_path / "out" / "rot.jpg") as im:
        assert im.size == (2000, 3000) and im.getexif()[ORIENTATION_TAG] == 1  # upright
    with Image.open(tmp_path / "out" / "flat.png") as im:
        assert im.size == (300, 200)
