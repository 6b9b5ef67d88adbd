"""`ccv pull`, `ccv import`, `ccv models`, `ccv models rm`: exit codes, messages and the store they leave."""
from __future__ import annotations

import json
import os
import pickle

import pytest
import torch
from typer.testing import CliRunner

from cyclegan_convert.cli import app
from cyclegan_convert.networks import NLayerDiscriminator
from cyclegan_convert.pretrained import BASE_URL_ENV
from cyclegan_convert.store import ModelStore

from pretrained_server import free_closed_port, serving, tiny_generator_bytes

GEN = tiny_generator_bytes(with_legacy_buffers=True)


@pytest.fixture(autouse=True)
def _wide_consoles(monkeypatch):
    """The CLI's consoles were made at import with the width of no terminal (80): widen them for tables."""
    import importlib

    app_mod = importlib.import_module("cyclegan_convert.cli.app")

    for c in (app_mod.console, app_mod.err_console):
        monkeypatch.setattr(c, "_width", 200)


def ccv(*args, input=None):
    return CliRunner().invoke(app, list(args), input=input, terminal_width=200)


@pytest.fixture
def gen_file(tmp_path):
    p = tmp_path / "latest_net_G_A.pth"
    p.write_bytes(GEN)
    return p


def test_pull_then_models_lists_it(monkeypatch):
    with serving({"style_monet.pth": GEN}) as srv:
        monkeypatch.setenv(BASE_URL_ENV, srv.url)
        r = ccv("pull", "style_monet")
        assert r.exit_code == 0, r.output
        assert "Installed style_monet as photo2monet" in r.output and "--to monet" in r.output
        r = ccv("pull", "style_monet")
        assert r.exit_code == 0 and "already installed" in r.output and len(srv.requests) == 1
    r = ccv("models")
    assert r.exit_code == 0
    row = next(line for line in r.output.splitlines() if "photo2monet" in line)
    assert all(s in row for s in ("monet", "photo", "pulled", "ngf 8", "MB"))


def test_pull_without_name_lists_the_catalogue():
    r = ccv("pull")
    assert r.exit_code == 0
    assert all(n in r.output for n in ("style_monet", "horse2zebra", "iphone2dslr_flower", "cityscapes_label2photo"))


def test_pull_unknown_and_offline_are_one_line_exit_2(monkeypatch):
    r = ccv("pull", "hors2zebra")
    assert r.exit_code == 2 and "Did you mean horse2zebra" in r.output
    monkeypatch.setenv(BASE_URL_ENV, f"http://127.0.0.1:{free_closed_port()}/x")
    r = ccv("pull", "horse2zebra")
    assert r.exit_code == 2 and "cannot reach" in r.output and "ccv import" in r.output
    assert len([line for line in r.output.splitlines() if line.strip()]) == 1


def test_pull_several_lists_failures_and_exits_1(monkeypatch):
    with serving({"horse2zebra.pth": GEN, "zebra2horse.pth": b"not a model" * 100}) as srv:
        monkeypatch.setenv(BASE_URL_ENV, srv.url)
        r = ccv("pull", "horse2zebra", "zebra2horse")
    assert r.exit_code == 1, r.output
    assert "Installed horse2zebra" in r.output and "1 of 2 not installed: zebra2horse" in r.output
    assert [e.id for e in ModelStore().entries()] == ["horse2zebra"]


def test_import_original_file_keeps_input_and_records_card(gen_file):
    r = ccv("import", str(gen_file), "--to", "ghibli")
    assert r.exit_code == 0, r.output
    assert "photo2ghibli" in r.output and "assumed" in r.output  # the default source is said, not hidden
    assert gen_file.read_bytes() == GEN  # input untouched
    e = ModelStore().find("ghibli")
    assert (e.origin, e.source, e.ngf) == ("imported", "photo", 8)
    assert e.card["original_file"] == "latest_net_G_A.pth" and e.card["sha256"] == e.sha256
    assert "InstanceNorm buffers" in e.card["format"]
    r = ccv("import", str(gen_file), "--to", "ghibli")
    assert r.exit_code == 2 and "already installed" in r.output
    assert ccv("import", str(gen_file), "--to", "ghibli", "--from", "sketch").exit_code == 0
    r = ccv("models")
    assert "photo2ghibli" in r.output and "sketch2ghibli" in r.output


def _write(tmp_path, name, data: bytes):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def _save(tmp_path, name, obj):
    p = tmp_path / name
    torch.save(obj, p)
    return p


@pytest.mark.parametrize("make, expect", [
    (lambda t: _save(t, "latest_net_D_A.pth", NLayerDiscriminator().state_dict()), "discriminator"),
    (lambda t: _save(t, "unet.pth", {"model.model.0.weight": torch.zeros(64, 3, 4, 4),
                                      "model.model.1.model.1.weight": torch.zeros(128, 64, 4, 4)}), "U-Net"),
    (lambda t: _save(t, "numbers.pth", {"a": [1, 2, 3]}), "not a state_dict"),
    (lambda t: _write(t, "photo.jpg", b"\xff\xd8\xff\xe0 not weights"), "not a PyTorch weights file"),
    (lambda t: _write(t, "hello.pth", b"hello" * 10), "not written by torch.save, or damaged"),
    # a log saved under a .pth name: its first byte ('d') is a pickle opcode the safe loader refuses,
    # which is no reason to say it holds pickled objects
    (lambda t: _write(t, "log.pth", b"data: 4 images of monet\n"), "not written by torch.save, or damaged"),
], ids=["discriminator", "unet", "random-pickle", "not-torch", "text", "text-pickle-opcode"])
def test_import_refuses_what_is_not_a_generator(tmp_path, make, expect):
    path = make(tmp_path)
    r = ccv("import", str(path), "--to", "x")
    assert r.exit_code == 2, r.output
    assert expect in r.output and "ccv import` takes a CycleGAN generator" in r.output
    assert ModelStore().entries() == []


class _Payload:
    """Unpickling this runs os.mkdir(marker): proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (self.marker,)


@pytest.mark.parametrize("fmt", ["torch", "plain-pickle"])
def test_import_never_executes_pickled_code(tmp_path, fmt):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    payload = {"model.1.weight": _Payload(str(marker))}
    if fmt == "torch":
        torch.save(payload, evil)
    else:
        evil.write_bytes(pickle.dumps(payload, protocol=2))
    # the payload is live: an unsafe load would run it
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps({"x": _Payload(str(probe))}))
    assert probe.is_dir()
    r = ccv("import", str(evil), "--to", "x")
    assert r.exit_code == 2 and "not a PyTorch weights file" in r.output
    # says why in our words, not torch's advice to load it with weights_only=False
    assert "pickled Python objects" in r.output and "weights_only" not in r.output
    assert "mkdir" in r.output  # names what it would have run
    assert not marker.exists()
    assert ModelStore().entries() == []


def test_models_shows_exported_artifacts(gen_file):
    ccv("import", str(gen_file), "--to", "zebra", "--from", "horse")
    e = ModelStore().find("zebra")
    (e.exports_dir / "engines").mkdir(parents=True)
    (e.exports_dir / "generator.onnx").write_bytes(b"o")
    (e.exports_dir / "generator.fp16.onnx").write_bytes(b"h")
    (e.exports_dir / "engines" / "k1.engine").write_bytes(b"e")
    (e.exports_dir / "engines" / "k1.json").write_text(json.dumps({"gpu": "NVIDIA H100", "compute_capability": "9.0"}))
    (e.exports_dir / "engines" / "k2.engine").write_bytes(b"e")
    l4 = {"gpu_name": "NVIDIA L4", "compute_capability": [8, 9], "precision": "fp16"}  # the export's own keys
    (e.exports_dir / "engines" / "k2.json").write_text(json.dumps(l4))
    r = ccv("models")
    assert "onnx, fp16 onnx, engine (NVIDIA H100, sm90), fp16 engine (NVIDIA L4, sm89)" in r.output


def test_models_rm_asks_then_removes_with_exports(gen_file):
    ccv("import", str(gen_file), "--to", "zebra", "--from", "horse")
    e = ModelStore().find("zebra")
    e.exports_dir.mkdir()
    (e.exports_dir / "generator.onnx").write_bytes(b"o")
    r = ccv("models", "rm", "zebra", input="n\n")
    assert r.exit_code == 0 and "Nothing removed" in r.output and e.path.is_dir()
    r = ccv("models", "rm", "zebra")  # no answer at all (stdin closed): keep it
    assert r.exit_code == 0 and e.path.is_dir()
    r = ccv("models", "rm", "zebra", "--from", "horse", input="y\n")
    assert r.exit_code == 0 and "Removed horse2zebra" in r.output
    assert not e.path.exists() and ModelStore().entries() == []
    assert list(ModelStore().models_dir.iterdir()) == []


def test_models_rm_by_id_with_yes_and_unknown_name(gen_file):
    ccv("import", str(gen_file), "--to", "zebra", "--from", "horse")
    r = ccv("models", "rm", "zebr", "--yes")
    assert r.exit_code == 2 and "Did you mean zebra" in r.output
    assert ccv("models", "rm", "horse2zebra", "--yes").exit_code == 0
    assert ModelStore().entries() == []


def test_models_rm_refuses_bundled(tmp_path, gen_file, monkeypatch):
    from cyclegan_convert import store as store_mod
    from cyclegan_convert.store import ModelEntry

    pkg = ModelStore(root=tmp_path / "pkg", bundled_root=None)
    pkg.add(ModelEntry(target="monet", source="photo", origin="bundled", ngf=8), gen_file)
    monkeypatch.setattr(store_mod, "BUNDLED_ROOT", pkg.models_dir)
    r = ccv("models", "rm", "monet", "--yes")
    assert r.exit_code == 2 and "bundled" in r.output
    assert (pkg.models_dir / "photo2monet" / "generator.pth").is_file()


def test_damaged_folder_is_listed_and_removable(gen_file):
    ccv("import", str(gen_file), "--to", "zebra", "--from", "horse")
    broken = ModelStore().models_dir / "photo2broken"
    broken.mkdir()
    (broken / "model.json").write_text("{not json")
    (broken / "generator.pth").write_bytes(b"x")
    r = ccv("models")
    assert "damaged model folder" in r.output and "ccv models rm photo2broken" in r.output
    r = ccv("models", "rm", "photo2broken", "--yes")
    assert r.exit_code == 0 and not broken.exists()
    assert [e.id for e in ModelStore().entries()] == ["horse2zebra"]
    assert ccv("models", "rm", "../..", "--yes").exit_code == 2  # never a path outside the store


def test_import_hint_is_ready_to_paste(gen_file):
    """Domain names may hold spaces (training on two folders 'my photos' and 'oil paintings'): the
    printed --to/--from must survive the shell, and --from appears once another model makes the target."""
    import shlex

    r = ccv("import", str(gen_file), "--to", "oil paintings", "--from", "my photos")
    assert r.exit_code == 0, r.output
    assert "use --to 'oil paintings'" in r.output
    r = ccv("import", str(gen_file), "--to", "oil paintings", "--from", "sketch")
    assert r.exit_code == 0, r.output
    hint = r.output.split("use ", 1)[1].splitlines()[0]
    assert shlex.split(hint) == ["--to", "oil paintings", "--from", "sketch"]


def test_import_into_a_store_that_cannot_be_written_is_one_line(tmp_path, tiny_generator, monkeypatch):
    import torch
    from typer.testing import CliRunner

    from cyclegan_convert.cli import app

    home = tmp_path / "afile"
    home.write_text("")
    monkeypatch.setenv("CCV_HOME", str(home))
    w = tmp_path / "g.pth"
    torch.save(tiny_generator.state_dict(), w)
    r = CliRunner().invoke(app, ["import", str(w), "--to", "ghibli"])
    assert r.exit_code == 2 and "cannot write the model store" in r.output, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)


def test_import_of_a_training_state_points_at_the_generator_files(tmp_path, tiny_generator):
    import torch
    from typer.testing import CliRunner

    from cyclegan_convert.cli import app

    state = tmp_path / "state.pth"
    torch.save({"version": 1, "config": {"ngf": 8}, "step": 3, "epoch": 1,
                "model": {"G_A": tiny_generator.state_dict()}}, state)
    r = CliRunner().invoke(app, ["import", str(state), "--to", "ghibli"])
    assert r.exit_code == 2 and "latest_net_G_A.pth" in r.output and "ccv train" in r.output, r.output


def test_import_whose_id_collides_with_another_model_is_refused_even_with_force(tmp_path, tiny_generator):
    import torch
    from typer.testing import CliRunner

    from cyclegan_convert.cli import app

    w = tmp_path / "g.pth"
    torch.save(tiny_generator.state_dict(), w)
    runner = CliRunner()
    assert runner.invoke(app, ["import", str(w), "--to", "y", "--from", "x2monet"]).exit_code == 0
    r = runner.invoke(app, ["import", str(w), "--to", "monet2y", "--from", "x", "--force"])
    assert r.exit_code == 2 and "another model" in r.output, r.output
    assert runner.invoke(app, ["convert", "--help"]).exit_code == 0
    from cyclegan_convert.store import ModelStore
    assert [(e.source, e.target) for e in ModelStore(bundled_root=None).entries()] == [("x2monet", "y")]
