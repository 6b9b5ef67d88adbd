"""The model store: lookup by target domain, atomic installs, bundled models, listing."""
from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from cyclegan_convert.cli import app
from cyclegan_convert.errors import UnknownModelError, UsageError
from cyclegan_convert.store import ModelEntry, ModelStore, data_home


def _install(store, tmp_path, tiny_generator, source, target, origin="imported"):
    w = tmp_path / f"{source}2{target}.pth"
    torch.save(tiny_generator.state_dict(), w)
    return store.add(ModelEntry(target=target, source=source, origin=origin, ngf=8), w)


def test_ccv_home_overrides_data_folder(ccv_home):
    assert data_home() == ccv_home


def test_find_by_target_and_ambiguity(tmp_path, tiny_generator):
    store = ModelStore(bundled_root=None)
    _install(store, tmp_path, tiny_generator, "photo", "monet")
    assert store.find("monet").id == "photo2monet"
    _install(store, tmp_path, tiny_generator, "sketch", "monet")
    with pytest.raises(UsageError, match="--from"):
        store.find("monet")
    assert store.find("monet", "sketch").id == "sketch2monet"
    with pytest.raises(UnknownModelError, match="Did you mean monet"):
        store.find("mone")


def test_add_replaces_and_remove_deletes(tmp_path, tiny_generator):
    store = ModelStore(bundled_root=None)
    e = _install(store, tmp_path, tiny_generator, "photo", "monet")
    (e.exports_dir).mkdir()
    (e.exports_dir / "old.onnx").write_bytes(b"x")
    e2 = _install(store, tmp_path, tiny_generator, "photo", "monet", origin="trained")
    assert e2.origin == "trained" and not (e2.exports_dir / "old.onnx").exists()
    assert [p.name for p in store.models_dir.iterdir()] == ["photo2monet"]  # no staging left behind
    store.remove(e2)
    assert store.entries() == []


def test_user_store_overrides_bundled(tmp_path, tiny_generator):
    bundled = ModelStore(root=tmp_path / "pkg", bundled_root=None)
    _install(bundled, tmp_path, tiny_generator, "photo", "monet", origin="bundled")
    store = ModelStore(bundled_root=bundled.models_dir)
    assert store.find("monet").origin == "bundled"
    with pytest.raises(UsageError, match="bundled"):
        store.remove(store.find("monet"))
    _install(store, tmp_path, tiny_generator, "photo", "monet", origin="trained")
    assert store.find("monet").origin == "trained"


def test_cli_models_lists(tmp_path, tiny_generator):
    _install(ModelStore(), tmp_path, tiny_generator, "photo", "monet")
    result = CliRunner().invoke(app, ["models"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "photo2monet" in result.output and "imported" in result.output


@pytest.mark.parametrize("text", ["[]", '"photo2monet"', '{"target": 5, "source": "photo", "origin": "pulled"}',
                                  "\udcff"], ids=["list", "string", "wrong-types", "not-utf8"])
def test_a_model_json_that_is_no_description_is_a_damaged_folder(tmp_path, tiny_generator, text):
    """Valid JSON of the wrong shape used to raise AttributeError from every command that reads the store."""
    store = ModelStore(bundled_root=None)
    _install(store, tmp_path, tiny_generator, "photo", "monet")
    bad = _install(store, tmp_path, tiny_generator, "photo", "zebra")
    (bad.path / "model.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    assert [e.id for e in store.entries()] == ["photo2monet"]
    result = CliRunner().invoke(app, ["models"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "damaged model folder" in result.output and "photo2zebra" in result.output
    result = CliRunner().invoke(app, ["models", "rm", "photo2zebra", "--yes"])
    assert result.exit_code == 0 and not bad.path.exists()


def test_unwritable_store_is_one_clear_error(tmp_path, tiny_generator):
    """CCV_HOME pointing at a file (or a read-only mount): a UsageError naming the store, not an OSError."""
    home = tmp_path / "afile"
    home.write_text("x")
    with pytest.raises(UsageError, match="cannot write the model store"):
        _install(ModelStore(home, bundled_root=None), tmp_path, tiny_generator, "photo", "monet")


def test_find_with_a_wrong_source_names_the_sources_there(tmp_path, tiny_generator):
    store = ModelStore(bundled_root=None)
    _install(store, tmp_path, tiny_generator, "photo", "monet")
    with pytest.raises(UnknownModelError) as info:
        store.find("monet", "sketch")
    assert "Did you mean monet" not in str(info.value) and "--from photo" in str(info.value)


def test_a_replace_that_fails_between_the_renames_keeps_the_old_model(tmp_path, tiny_generator, monkeypatch):
    """Was: the model being replaced was left in a hidden .<id>.old folder, gone from the store."""
    import os as _os

    import cyclegan_convert.store as store_mod

    store = ModelStore(bundled_root=None)
    first = _install(store, tmp_path, tiny_generator, "photo", "monet", origin="pulled")
    real = _os.replace

    def fail_staging_to_final(src, dst):
        if str(src).startswith(str(store.models_dir / ".photo2monet.")) and not str(src).endswith(".old"):
            raise KeyboardInterrupt  # a second Ctrl-C during a training save
        return real(src, dst)

    monkeypatch.setattr(store_mod.os, "replace", fail_staging_to_final)
    with pytest.raises(KeyboardInterrupt):
        _install(store, tmp_path, tiny_generator, "photo", "monet", origin="trained")
    monkeypatch.setattr(store_mod.os, "replace", real)
    assert store.find("monet").origin == "pulled" and store.find("monet").path == first.path
    assert [p.name for p in store.models_dir.iterdir()] == ["photo2monet"]


def test_ids_that_collide_never_replace_another_model(tmp_path, tiny_generator):
    """x -> monet2y and x2monet -> y are both stored as x2monet2y: the second replaced the first."""
    store = ModelStore(bundled_root=None)
    _install(store, tmp_path, tiny_generator, "x2monet", "y")
    with pytest.raises(UsageError, match="another model"):
        _install(store, tmp_path, tiny_generator, "x", "monet2y")
    assert [(e.source, e.target) for e in store.entries()] == [("x2monet", "y")]
