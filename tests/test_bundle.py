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


def _run(folder, times, config):
    """A run folder as ccv train leaves it: a loss log (``time`` restarts at each invocation) and state."""
    folder.mkdir()
    rows = [{"step": i + 1, "epoch": 1, "lr": 1e-4, "time": t, **{k: 0.5 for k in LOSS_NAMES}}
            for i, t in enumerate(times)]
    (folder / "loss_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    torch.save({"config": config}, folder / "state.pth")


def test_wall_time_adds_the_segments_of_a_resumed_run():
    rows = [{"time": t} for t in (10.0, 20.0, 1.0, 5.0, 0.5, 2.0)]
    assert bundle.wall_time(rows) == 27.0
    assert bundle.wall_time(rows[:2]) == 20.0


def test_bundle_of_a_fine_tune_with_the_notch(tmp_path, monkeypatch):
    first, tune = tmp_path / "first", tmp_path / "tune"
    _run(first, [100.0, 200.0, 300.0], {"lr": 2e-4, "dir_a": "x", "dir_b": "y"})
    _run(tune, [10.0, 20.0, 5.0, 7.0], {"lr": 1e-4, "grid_penalty": 100.0, "init_from": str(first)})
    torch.manual_seed(0)
    net = init_weights(ResnetGenerator(ngf=8, n_blocks=2, upsample="resize"))
    torch.save(net.state_dict(), tmp_path / "G_B.pth")
    monkeypatch.setattr(sys, "argv", ["bundle", str(tmp_path / "G_B.pth"), "--run", str(tune), "--step", "4",
                                      "--source", "photo", "--target", "monet", "--notch", "16",
                                      "--note", "by eye: fine", "--root", str(tmp_path / "pkg")])
    bundle.main()
    folder = tmp_path / "pkg" / "models" / "photo2monet"
    meta = json.loads((folder / "model.json").read_text())
    card = meta["card"]
    assert meta["arch"] == "resnet_2blocks_resize_notch"
    assert (card["step"], card["wall_time_s"]) == (4, 27.0)
    assert card["fine_tuned_from"]["run"] == "first" and card["fine_tuned_from"]["steps"] == 3
    assert card["fine_tuned_from"]["config"] == {"lr": 2e-4}  # local paths left out
    assert (card["steps_total"], card["wall_time_total_s"]) == (7, 327.0)
    assert "LatticeNotch (period 4, sigma 16 px)" in card["network"]
    sd = read_state_dict(folder / "generator.pth")
    assert all(v.dtype == torch.float16 for v in sd.values())
    loaded = load_generator(folder / "generator.pth")
    assert loaded.notch == (4, 16.0)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():  # the generator's own weights, then the notch
        want = loaded.model[-1](net.eval()(x))
        assert (loaded(x) - want).abs().max() < 0.02
