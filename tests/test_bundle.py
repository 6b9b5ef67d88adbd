"""The maintainers' bundling step (cyclegan_convert.train.bundle): the card counts all the training
behind a fine-tuned model, resumed runs included, and --notch adds the fixed lattice filter."""
from __future__ import annotations

import json
import sys

import torch

from cyclegan_convert.networks import ResnetGenerator, init_weights
from cyclegan_convert.train import bundle
from cyclegan_convert.train.model import LOSS_NAMES
from cyclegan_convert.weights import load_generator, read_state_dict


def _run(folder, times, config, saved_at=None):
    """A run folder as ccv train leaves it: a loss log (``time`` restarts at each invocation) and the
    state of its last save (``saved_at``: step and wall time, default the log's last step)."""
    folder.mkdir()
    rows = [{"step": i + 1, "epoch": 1, "lr": 1e-4, "time": t, **{k: 0.5 for k in LOSS_NAMES}}
            for i, t in enumerate(times)]
    (folder / "loss_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    step, wall = saved_at or (len(times), bundle.wall_time(rows))
    torch.save({"config": config, "step": step, "wall_time": wall}, folder / "state.pth")


def test_wall_time_adds_the_segments_of_a_resumed_run():
    rows = [{"time": t} for t in (10.0, 20.0, 1.0, 5.0, 0.5, 2.0)]
    assert bundle.wall_time(rows) == 27.0
    assert bundle.wall_time(rows[:2]) == 20.0


def test_bundle_of_a_fine_tune_with_the_notch(tmp_path, monkeypatch):
    first, tune = tmp_path / "first", tmp_path / "tune"
    # its last save at step 2 (a kill logged step 3 after it): --init-from took step 2's weights
    _run(first, [100.0, 200.0, 300.0], {"lr": 2e-4, "dir_a": "x", "dir_b": "y"}, saved_at=(2, 200.0))
    _run(tune, [10.0, 20.0, 5.0, 7.0], {"lr": 1e-4, "grid_penalty": 100.0, "init_from": str(first)})
    torch.manual_seed(0)
    net = init_weights(ResnetGenerator(ngf=8, n_blocks=2, upsample="resize"))
    torch.save(net.state_dict(), tmp_path / "G_B.pth")
    monkeypatch.setattr(sys, "argv", ["bundle", str(tmp_path / "G_B.pth"), "--run", str(tune), "--step", "4",
                                      "--source", "photo", "--target", "monet", "--notch", "16",
                                      "--note", "by eye: fine", "--root", str(tmp_path / "pkg"),
                                      "--colors", "0.5", "--strokes", "0.5", "--highlights", "1"])
    bundle.main()
    folder = tmp_path / "pkg" / "models" / "photo2monet"
    meta = json.loads((folder / "model.json").read_text())
    card = meta["card"]
    assert meta["arch"] == "resnet_2blocks_resize_notch"
    assert meta["look"] == {"colors": 0.5, "strength": 1.0, "strokes": 0.5, "highlights": 1.0}  # the recommended look
    assert (card["step"], card["wall_time_s"]) == (4, 27.0)
    assert card["fine_tuned_from"]["run"] == "first" and card["fine_tuned_from"]["steps"] == 2
    assert card["fine_tuned_from"]["config"] == {"lr": 2e-4}  # local paths left out
    assert card["config"] == {"lr": 1e-4, "grid_penalty": 100.0}  # init_from is a local path too
    assert (card["steps_total"], card["wall_time_total_s"]) == (6, 227.0)
    assert "LatticeNotch (period 4, sigma 16 px)" in card["network"]
    sd = read_state_dict(folder / "generator.pth")
    assert all(v.dtype == torch.float16 for v in sd.values())
    loaded = load_generator(folder / "generator.pth")
    assert loaded.notch == (4, 16.0)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():  # the generator's own weights, then the notch
        want = loaded.model[-1](net.eval()(x))
        assert (loaded(x) - want).abs().max() < 0.02


def test_bundle_notch_replaces_a_notch_the_weights_already_have(tmp_path, monkeypatch):
    _run(tmp_path / "run", [1.0], {"lr": 1e-4})
    torch.manual_seed(0)
    net = init_weights(ResnetGenerator(ngf=8, n_blocks=2, upsample="resize", notch=(4, 8.0)))
    torch.save(net.state_dict(), tmp_path / "G.pth")
    monkeypatch.setattr(sys, "argv", ["bundle", str(tmp_path / "G.pth"), "--run", str(tmp_path / "run"), "--step", "1",
                                      "--source", "photo", "--target", "monet", "--notch", "16",
                                      "--root", str(tmp_path / "pkg")])
    bundle.main()
    folder = tmp_path / "pkg" / "models" / "photo2monet"
    assert "sigma 16 px" in json.loads((folder / "model.json").read_text())["card"]["network"]
    loaded = load_generator(folder / "generator.pth")
    assert loaded.notch == (4, 16.0) and loaded.model[-1].sigma == 16.0


def test_a_fine_tune_of_a_folder_without_ccvs_state_names_it_with_its_steps_unknown(tmp_path):
    (tmp_path / "original").mkdir()  # the original implementation's checkpoints folder: weights only
    out = bundle.lineage({"init_from": str(tmp_path / "original")}, 10, 5.0)
    assert out == {"fine_tuned_from": {"run": "original", "steps": None}, "steps_total": None,
                   "wall_time_total_s": None}


def test_lineage_follows_a_chain_of_fine_tunes(tmp_path):
    """scratch (100 steps) -> tuned (20 steps from it) -> this run (10): the card counts 130 steps and
    names both runs before it."""
    def state(folder, step, wall, **config):
        folder.mkdir()
        torch.save({"step": step, "wall_time": wall, "config": config}, folder / "state.pth")

    state(tmp_path / "scratch", 100, 50.0, lr=2e-4, dir_a="/somewhere")
    state(tmp_path / "tuned", 20, 10.0, lr=1e-4, init_from=str(tmp_path / "scratch"))
    out = bundle.lineage({"init_from": str(tmp_path / "tuned")}, 10, 5.0)
    assert out["steps_total"] == 130 and out["wall_time_total_s"] == 65.0
    tuned = out["fine_tuned_from"]
    assert (tuned["run"], tuned["steps"], tuned["config"]["lr"]) == ("tuned", 20, 1e-4)
    assert tuned["fine_tuned_from"]["run"] == "scratch" and tuned["fine_tuned_from"]["steps"] == 100
    assert "dir_a" not in tuned["fine_tuned_from"]["config"] and "init_from" not in tuned["config"]
