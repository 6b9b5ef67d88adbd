"""`ccv train` end to end on tiny networks: checkpoints, the model store, exact resume, Ctrl-C."""
from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from cyclegan_convert.cli.app import app
from cyclegan_convert.store import ModelStore
from cyclegan_convert.weights import load_generator, sha256_file
from cyclegan_convert.train.config import RunOptions, TrainConfig
from cyclegan_convert.train.loop import _loading_worker_lost, train

from conftest import PAINTINGS, PHOTOS

TINY = ["--load-size", "36", "--crop-size", "32", "--ngf", "8", "--ndf", "8", "--blocks", "1"]
runner = CliRunner()



@pytest.fixture
def dataroot(tmp_path) -> Path:
    """monet2photo/trainA (3 paintings, one in a subfolder), trainB (4 photos, names with spaces)."""
    root = tmp_path / "data" / "monet2photo"
    (root / "trainA" / "more").mkdir(parents=True)
    (root / "trainB").mkdir()
    for i, p in enumerate(PAINTINGS):
        shutil.copy(p, root / "trainA" / ("more" if i == 0 else "") / p.name)
    for p in PHOTOS:
        shutil.copy(p, root / "trainB" / p.name)
    return root


def _invoke(args, cwd: Path):
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd)
        return runner.invoke(app, ["train", *args])


def _states(folder: Path) -> dict:
    return torch.load(folder / "state.pth", weights_only=True)


def test_train_end_to_end_checkpoints_and_store(dataroot, tmp_path, ccv_home):
    data = PHOTOS[0].read_bytes()
    (dataroot / "trainA" / "broken.jpg").write_bytes(data[: len(data) // 3])  # fails only when decoded
    (dataroot / "trainA" / "empty.png").write_bytes(b"")
    r = _invoke([str(dataroot), *TINY, "--epochs", "1", "--epochs-decay", "1", "--save-every", "3",
                 "--save-epoch-every", "1", "--workers", "0"], tmp_path)
    assert r.exit_code == 0, r.output
    run = tmp_path / "checkpoints" / "monet2photo"
    # 4 steps per epoch (max(|A|, |B|) = 4), 2 epochs
    log = [json.loads(line) for line in (run / "loss_log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == list(range(1, 9))
    assert [e["lr"] for e in log] == [2e-4] * 4 + [1e-4] * 4  # epoch 2 = first decay epoch of 1: 1 - 1/2
    assert set(log[0]) >= {"G_A", "G_B", "cycle_A", "cycle_B", "idt_A", "idt_B", "D_A", "D_B"}
    for label in ("latest", "1", "2"):
        for net in ("G_A", "G_B", "D_A", "D_B"):
            assert (run / f"{label}_net_{net}.pth").is_file(), (label, net)
    g = load_generator(run / "latest_net_G_A.pth")  # strict keys, plain state_dict
    assert g.ngf == 8 and g.n_blocks == 1
    d_sd = torch.load(run / "2_net_D_A.pth", weights_only=True)
    assert sorted(d_sd) == sorted(f"model.{i}.{p}" for i in (0, 2, 5, 8, 11) for p in ("weight", "bias"))
    assert not list(run.glob("*.part*")) and not list(run.glob(".*"))  # no temporary files left
    # sample grids at saves (every 3 steps, and epoch ends 4, 8): 2 rows x 3 columns of 32 px
    grids = sorted((run / "samples").glob("*.png"))
    assert [p.name for p in grids] == [f"step_{s:07d}.png" for s in (3, 4, 6, 8)]
    with Image.open(grids[-1]) as im:
        assert im.size == (96, 64) and im.mode == "RGB"
    # both generators in the store, under their target domains
    store = ModelStore(ccv_home)
    to_photo, to_monet = store.find("photo"), store.find("monet")
    assert (to_photo.source, to_monet.source) == ("monet", "photo")
    assert to_photo.origin == to_monet.origin == "trained" and to_photo.arch == "resnet_1blocks"
    assert to_photo.sha256 == sha256_file(run / "latest_net_G_A.pth") == sha256_file(to_photo.weights)
    assert to_monet.sha256 == sha256_file(run / "latest_net_G_B.pth")
    card = to_monet.card
    assert card["steps"] == 8 and card["epochs"] == 2 and card["data"]["A"]["images"] == 4  # broken.jpg counted
    assert card["data"]["B"]["images"] == 4 and card["config"]["ngf"] == 8 and "G_B" in card["network"]
    assert set(card["losses_mean_last_100_steps"]) == {"G_A", "G_B", "cycle_A", "cycle_B", "idt_A", "idt_B",
                                                        "D_A", "D_B"}
    load_generator(to_monet.weights)
    assert "ccv convert --to photo" in r.output and "finished at step 8" in r.output
    # no terminal (a log file, nohup): plain progress lines, the last step's included, each ending a line
    assert "step 1/8 epoch 1/2" in r.output and "\nstep 8/8 epoch 2/2" in r.output
    assert "\nfinished at step 8" in r.output
    # bad files reported once each (broken.jpg is drawn in both epochs), training went on
    assert r.output.count("empty.png: empty file") == 1
    assert r.output.count("broken.jpg: cannot decode") == 1


def _tiny_config(root: Path, **kw) -> TrainConfig:
    return TrainConfig(dir_a=str(root / "trainA"), dir_b=str(root / "trainB"), a_name="monet", b_name="photo",
                       load_size=36, crop_size=32, ngf=8, ndf=8, n_blocks=1, n_epochs=1, n_epochs_decay=1,
                       pool_size=2, seed=5, **kw)


def test_resume_is_exact(dataroot, tmp_path):
    """3 steps, stop, resume, 3 more == 6 uninterrupted (across an epoch boundary and an lr change,
    with a pool that fills and swaps, and a different number of loader workers)."""
    args = [str(dataroot), *TINY, "--epochs", "1", "--epochs-decay", "1", "--pool-size", "2", "--seed", "5",
            "--workers", "0", "--no-register"]
    r = _invoke([*args, "--max-steps", "3"], tmp_path)
    assert r.exit_code == 0, r.output
    assert "--resume" in r.output
    r = _invoke(["--name", "monet2photo", "--resume", "--max-steps", "6", "--workers", "0", "--no-register"], tmp_path)
    assert r.exit_code == 0, r.output
    split = tmp_path / "checkpoints" / "monet2photo"

    whole = train(_tiny_config(dataroot), RunOptions(name="whole", checkpoints_dir=str(tmp_path / "w"), workers=2,
                                                     max_steps=6, register=False))
    assert whole.step == 6 and whole.stopped == "max_steps"
    a, b = _states(split), _states(whole.folder)
    assert (a["step"], a["epoch"], a["epoch_step"]) == (b["step"], b["epoch"], b["epoch_step"]) == (6, 2, 2)
    for net in ("G_A", "G_B", "D_A", "D_B"):
        for k, v in a["model"]["nets"][net].items():
            assert torch.equal(v, b["model"]["nets"][net][k]), (net, k)
    for opt in ("opt_G", "opt_D"):
        sa, sb = a["model"][opt]["state"], b["model"][opt]["state"]
        assert all(torch.equal(sa[i]["exp_avg_sq"], sb[i]["exp_avg_sq"]) for i in sa)
    assert len(a["model"]["pool_fake_A"]["images"]) == 2
    log = [json.loads(line) for line in (split / "loss_log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == [1, 2, 3, 4, 5, 6]
    whole_log = [json.loads(line) for line in (whole.folder / "loss_log.jsonl").read_text().splitlines()]
    assert [e["G_A"] for e in log] == [e["G_A"] for e in whole_log]


def test_resume_refuses_a_different_recipe_and_new_run_refuses_existing(dataroot, tmp_path):
    base = [str(dataroot), *TINY, "--workers", "0", "--no-register"]
    assert _invoke([*base, "--max-steps", "1"], tmp_path).exit_code == 0
    r = _invoke([*base, "--max-steps", "2"], tmp_path)
    assert r.exit_code == 2 and "--resume" in r.output
    r = _invoke(["--name", "monet2photo", "--resume", "--ngf", "16", "--max-steps", "2"], tmp_path)
    assert r.exit_code == 2 and "ngf 16" in r.output and "checkpoint: 8" in r.output
    # the differences are named by the options the user typed, not by the config's field names
    r = _invoke(["--name", "monet2photo", "--resume", "--epochs", "7", "--blocks", "2"], tmp_path)
    assert r.exit_code == 2 and "--epochs 7 (checkpoint: 100)" in r.output, r.output
    assert "--blocks 2 (checkpoint: 1)" in r.output and "n_epochs" not in r.output
    r = _invoke(["--name", "other", "--resume"], tmp_path)
    assert r.exit_code == 2 and "no checkpoint" in r.output


def _after_step(monkeypatch, n: int, action) -> dict:
    """Makes training call ``action()`` right after its n-th step; returns the step counter."""
    from cyclegan_convert.train import model as model_mod

    real_step = model_mod.CycleGAN.train_step
    calls = {"n": 0}

    def step_then_act(self, a, b):
        out = real_step(self, a, b)
        calls["n"] += 1
        if calls["n"] == n:
            action()
        return out

    monkeypatch.setattr(model_mod.CycleGAN, "train_step", step_then_act)
    return calls


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["ctrl-c", "sigterm", "sighup"])
def test_ctrl_c_saves_and_exits_130(dataroot, tmp_path, monkeypatch, request, sig):
    """Ctrl-C, SIGTERM (kill, docker stop, preemption) and SIGHUP (a closed terminal or SSH session)
    alike: the run saves, then stops."""
    # as a terminal's Ctrl-C (or a kill) would, mid-run
    calls = _after_step(monkeypatch, 2, lambda: signal.raise_signal(sig))
    if sig != signal.SIGINT and signal.getsignal(sig) is signal.SIG_IGN:
        # nohup or a job runner ignores it in this test run (and ccv train rightly leaves an ignored
        # signal alone): give the run the default a terminal session has, restored afterwards
        original = signal.signal(sig, signal.SIG_DFL)
        request.addfinalizer(lambda: signal.signal(sig, original))
    before = signal.getsignal(sig)  # SIG_IGN for SIGINT when the suite runs as a background job
    r = _invoke([str(dataroot), *TINY, "--workers", "0"], tmp_path)
    assert r.exit_code == 130, r.output
    run = tmp_path / "checkpoints" / "monet2photo"
    assert _states(run)["step"] == 2 and calls["n"] == 2
    load_generator(run / "latest_net_G_B.pth")
    assert ModelStore().find("monet").card["steps"] == 2
    assert signal.getsignal(sig) is before  # handler restored


def test_bad_data_and_usage_errors(tmp_path, dataroot):
    r = _invoke([str(tmp_path / "missing"), "--workers", "0"], tmp_path)
    assert r.exit_code == 2 and "no such folder" in r.output
    shutil.rmtree(dataroot / "trainB")
    (dataroot / "trainB").mkdir()
    r = _invoke([str(dataroot), *TINY, "--workers", "0"], tmp_path)
    assert r.exit_code == 2 and "no images for domain photo" in r.output
    assert not (tmp_path / "checkpoints").exists()  # nothing started
    plain = tmp_path / "plain"
    shutil.copytree(dataroot, plain)
    shutil.copytree(dataroot / "trainA", plain / "trainB", dirs_exist_ok=True)
    r = _invoke([str(plain), *TINY, "--workers", "0"], tmp_path)
    assert r.exit_code == 2 and "--a-name" in r.output
    r = _invoke([str(plain), *TINY, "--a-name", "x", "--b-name", "x"], tmp_path)
    assert r.exit_code == 2 and "both domains" in r.output
    r = _invoke([str(plain), "--max-time", "soon"], tmp_path)
    assert r.exit_code == 2 and "--max-time" in r.output


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error shown when no GPU is present")
def test_cuda_without_gpu_is_an_error(dataroot, tmp_path):
    r = _invoke([str(dataroot), *TINY, "--device", "cuda", "--workers", "0"], tmp_path)
    assert r.exit_code == 2 and "no CUDA GPU" in r.output


def test_two_folders_and_max_time(tmp_path):
    a, b = tmp_path / "paintings", tmp_path / "photos"
    a.mkdir(), b.mkdir()
    for p in PAINTINGS[:2]:
        shutil.copy(p, a / p.name)
    for p in PHOTOS[:2]:
        shutil.copy(p, b / p.name)
    r = _invoke([str(a), str(b), *TINY, "--max-time", "0", "--workers", "0"], tmp_path)
    assert r.exit_code == 0, r.output
    assert "max time at step 1" in r.output
    assert ModelStore().find("paintings").source == "photos"
    assert (tmp_path / "checkpoints" / "paintings2photos" / "state.pth").is_file()


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid``, from /proc (children first found, grandchildren after)."""
    import os

    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        kids = parents.get(todo.pop(), [])
        out += kids
        todo += kids
    return out


def _kill_tree(proc) -> None:
    """torchrun starts each worker in a session of its own (torch.distributed.elastic's
    SubprocessHandler), so killing torchrun's group leaves the `ccv train` workers running. Every
    descendant is stopped first (a stopped process starts no data loader), until no new one
    appears, then all are killed."""
    import os
    import signal

    frozen: set[int] = set()
    while True:
        new = [p for p in [proc.pid, *_descendants(proc.pid)] if p not in frozen]
        if not new:
            break
        for pid in new:
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                pass
        frozen.update(new)
    for pid in frozen:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def _start_torchrun(args, tmp_path, ccv_home):
    import os
    import subprocess
    import sys

    ccv = Path(sys.executable).with_name("ccv")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CCV_HOME": str(ccv_home)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(ccv),
           "train", *args, "--device", "cpu"]
    return subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _torchrun(args, tmp_path, ccv_home) -> str:
    import subprocess

    proc = _start_torchrun(args, tmp_path, ccv_home)
    try:
        out, _ = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        _kill_tree(proc)
        raise
    assert proc.returncode == 0, out
    return out


@pytest.mark.slow
def test_a_killed_torchrun_leaves_no_worker_behind(dataroot, tmp_path, ccv_home):
    """A hung run is killed when the test times out: its `ccv train` workers must go too (two
    orphans were seen while only torchrun's process group was killed)."""
    import os
    import time

    proc = _start_torchrun([str(dataroot), "--name", "hang", "--ngf", "4", "--ndf", "4", "--blocks", "1",
                            "--no-register"], tmp_path, ccv_home)
    deadline = time.monotonic() + 300  # two training processes starting on a busy machine
    log = tmp_path / "checkpoints" / "hang" / "loss_log.jsonl"
    try:
        while not (log.exists() and log.read_text().count("\n") >= 2):  # both workers and their loaders run
            assert proc.poll() is None and time.monotonic() < deadline, "torchrun ended or did not start in 300 s"
            time.sleep(0.2)
        workers = [p for p in _descendants(proc.pid) if _cmdline_has(str(p), str(dataroot))]
        assert len(workers) >= 2
    finally:
        _kill_tree(proc)  # whatever happened above: a failing test must not leave workers either
    time.sleep(1.0)  # the killed are reaped by init
    assert [p for p in os.listdir("/proc") if p.isdigit() and _cmdline_has(p, str(dataroot))] == []


def _cmdline_has(pid: str, text: str) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return text.encode() in f.read()
    except OSError:
        return False


@pytest.mark.slow
def test_two_processes_with_torchrun_on_cpu(dataroot, tmp_path, ccv_home):
    """The DistributedDataParallel path on the CPU (gloo): ranks split each epoch, stop together, rank 0
    alone saves what is shared, rank 1 its own pools; 3 steps + resume + 2 steps == 5 steps.
    (NCCL on GPUs is the same code with another backend; not run here.)"""
    base = [str(dataroot), *TINY, "--workers", "0", "--pool-size", "2"]
    out = _torchrun([*base, "--max-steps", "3"], tmp_path, ccv_home)
    assert "2 steps per epoch per process, 2 processes" in out
    assert out.count("max steps at step 3") == 1  # rank 0 reports, rank 1 does not
    run = tmp_path / "checkpoints" / "monet2photo"
    assert _states(run)["step"] == 3 and _states(run)["epoch"] == 2
    assert len((run / "loss_log.jsonl").read_text().splitlines()) == 3
    load_generator(run / "latest_net_G_A.pth")
    assert ModelStore().find("photo").card["processes"] == 2
    own = torch.load(run / "state_rank1.pth", weights_only=True)
    assert own["step"] == 3 and own["world"] == 2 and not list(run.glob("state_rank0*"))

    out = _torchrun([*base, "--resume", "--max-steps", "5"], tmp_path, ccv_home)
    assert "resumed" in out and "not exact" not in out
    out = _torchrun([*base, "--name", "straight", "--max-steps", "5", "--no-register"], tmp_path, ccv_home)
    resumed, straight = _states(run)["model"]["nets"], _states(tmp_path / "checkpoints" / "straight")["model"]["nets"]
    for net in resumed:
        for k, v in resumed[net].items():
            assert torch.equal(v, straight[net][k]), (net, k)


def test_a_new_run_does_not_silently_replace_another_runs_or_an_imported_model(dataroot, tmp_path, ccv_home):
    base = [str(dataroot), *TINY, "--workers", "0", "--max-steps", "1"]
    assert _invoke(base, tmp_path).exit_code == 0
    before = {e.id: e.sha256 for e in ModelStore().entries()}
    assert set(before) == {"monet2photo", "photo2monet"}
    r = _invoke([*base, "--name", "second"], tmp_path)
    assert r.exit_code == 2 and "already holds monet2photo (trained by run monet2photo)" in r.output
    assert "--no-register" in r.output and not (tmp_path / "checkpoints" / "second").exists()
    assert {e.id: e.sha256 for e in ModelStore().entries()} == before
    # the run that made them may go on saving over them, and --no-register trains without the store
    assert _invoke(["--name", "monet2photo", "--resume", "--max-steps", "2", "--workers", "0"], tmp_path).exit_code == 0
    assert _invoke([*base, "--name", "second", "--no-register"], tmp_path).exit_code == 0


def test_csv_loss_log_resumes_at_the_checkpoint_step(dataroot, tmp_path, ccv_home):
    from cyclegan_convert.train.losslog import COLUMNS, read_log

    base = [str(dataroot), *TINY, "--workers", "0", "--save-every", "2", "--no-register"]
    assert _invoke([*base, "--log-format", "csv", "--max-steps", "3"], tmp_path).exit_code == 0  # saved at 2 and 3
    run = tmp_path / "checkpoints" / "monet2photo"
    path = run / "loss_log.csv"
    assert path.read_text().splitlines()[0] == ",".join(COLUMNS) and not (run / "loss_log.jsonl").exists()
    # a crash after the save at step 3 left a line for step 4 and a torn one: both go on resume
    with open(path, "a") as f:
        f.write("4,1.0,0.0002,9.9," + ",".join(["1.5"] * 8) + "\n5,1.2,0.00")
    r = _invoke([*base, "--resume", "--name", "monet2photo", "--max-steps", "5", "--log-format", "jsonl"], tmp_path)
    assert r.exit_code == 2 and "loss_log.csv" in r.output  # would split the history in two files
    r = _invoke([*base, "--resume", "--name", "monet2photo", "--max-steps", "5"], tmp_path)  # keeps csv
    assert r.exit_code == 0, r.output
    assert not (run / "loss_log.jsonl").exists()
    log = read_log(path)
    assert [e["step"] for e in log] == [1, 2, 3, 4, 5]
    assert log[3]["G_A"] != 1.5 and all(isinstance(e["D_B"], float) and e["D_B"] > 0 for e in log)
    assert _invoke([*base, "--log-format", "xml", "--max-steps", "1"], tmp_path).exit_code == 2


def test_resuming_with_another_number_of_processes_says_it_is_not_exact(dataroot, tmp_path, ccv_home):
    base = [str(dataroot), *TINY, "--workers", "0", "--no-register"]
    assert _invoke([*base, "--max-steps", "2"], tmp_path).exit_code == 0
    run = tmp_path / "checkpoints" / "monet2photo"
    assert _states(run)["extra"] == {"world": 1, "images": [3, 4]}
    r = _invoke([*base, "--resume", "--max-steps", "3"], tmp_path)
    assert r.exit_code == 0 and "not exact" not in r.output
    state = _states(run)
    state["extra"]["world"] = 2  # as if saved by two processes
    torch.save(state, run / "state.pth")
    r = _invoke([*base, "--resume", "--max-steps", "4"], tmp_path)
    assert r.exit_code == 0, r.output
    assert "saved with 2 process(es) and resumes with 1" in r.output and "not exact" in r.output


def test_the_printed_resume_command_works_as_printed(dataroot, tmp_path, ccv_home):
    """'continue with:' is one unwrapped line, quoted for the shell, and keeps --no-register, --amp
    and the save cadence (none is saved in the checkpoint: without them the resume would fill the
    store the user kept out of it, go on in another precision, or save every 1000 steps where the run
    saved every 300)."""
    import shlex

    ck = tmp_path / "my checkpoints" / ("deep" * 20)  # a space, and longer than a console line
    r = _invoke([str(dataroot), *TINY, "--workers", "0", "--no-register", "--amp", "--max-steps", "1",
                 "--save-every", "2", "--checkpoints-dir", str(ck)], tmp_path)
    assert r.exit_code == 0, r.output
    line = next(x for x in r.output.splitlines() if x.startswith("continue with: "))
    argv = shlex.split(line[len("continue with: "):])
    assert argv[:2] == ["ccv", "train"] and "--no-register" in argv and "--amp" in argv and str(ck) in argv
    assert argv[argv.index("--save-every") + 1] == "2" and argv[argv.index("--workers") + 1] == "0"
    assert "--sample-every" not in argv and "--save-epoch-every" not in argv  # left at their defaults
    r = _invoke([*argv[2:], "--max-steps", "3"], tmp_path)
    assert r.exit_code == 0 and "AMP bf16" in r.output, r.output
    assert _states(ck / "monet2photo")["step"] == 3
    assert (ck / "monet2photo" / "samples" / "step_0000002.png").exists()  # saved at 2: the cadence kept
    assert ModelStore(ccv_home).entries() == [] or all(e.origin == "bundled" for e in ModelStore(ccv_home).entries())


@pytest.mark.parametrize("sizes, expect", [
    (["--load-size", "36", "--crop-size", "30"], "multiple of 4"),  # was a RuntimeError from torch.cat
    (["--load-size", "36", "--crop-size", "20"], "at least 24"),    # was a ValueError from InstanceNorm
    (["--load-size", "16", "--crop-size", "32"], "larger than --load-size"),
], ids=["not-multiple-of-4", "too-small-for-D", "crop-above-load"])
def test_crop_sizes_the_networks_cannot_take_are_usage_errors(dataroot, tmp_path, sizes, expect):
    r = _invoke([str(dataroot), "--ngf", "8", "--ndf", "8", "--blocks", "1", *sizes, "--max-steps", "1",
                 "--workers", "0", "--no-register"], tmp_path)
    assert r.exit_code == 2 and expect in r.output, r.output
    assert "Traceback" not in r.output and not (tmp_path / "checkpoints").exists()


def test_smallest_allowed_crop_trains(dataroot, tmp_path):
    r = _invoke([str(dataroot), "--ngf", "8", "--ndf", "8", "--blocks", "1", "--load-size", "24", "--crop-size",
                 "24", "--max-steps", "1", "--workers", "0", "--no-register", "-b", "2"], tmp_path)
    assert r.exit_code == 0, r.output


def test_checkpoints_dir_that_cannot_be_a_folder_is_a_usage_error(dataroot, tmp_path):
    (tmp_path / "afile").write_text("")
    r = _invoke([str(dataroot), *TINY, "--max-steps", "1", "--workers", "0", "--no-register",
                 "--checkpoints-dir", str(tmp_path / "afile")], tmp_path)
    assert r.exit_code == 2 and "cannot create the run folder" in r.output, r.output


def test_resume_after_the_data_moved_says_to_give_it_again(dataroot, tmp_path):
    assert _invoke([str(dataroot), *TINY, "--max-steps", "1", "--workers", "0", "--no-register"], tmp_path).exit_code == 0
    moved = dataroot.rename(tmp_path / "moved")
    r = _invoke(["--name", "monet2photo", "--resume", "--max-steps", "2", "--workers", "0", "--no-register"], tmp_path)
    assert r.exit_code == 2 and "not there any more" in r.output and "--resume" in r.output, r.output
    r = _invoke([str(moved), "--name", "monet2photo", "--resume", "--max-steps", "2", "--workers", "0",
                 "--no-register"], tmp_path)
    assert r.exit_code == 0, r.output


def test_zero_epochs_is_a_usage_error_and_registers_nothing(dataroot, tmp_path, ccv_home):
    r = _invoke([str(dataroot), *TINY, "--epochs", "0", "--epochs-decay", "0", "--workers", "0"], tmp_path)
    assert r.exit_code == 2 and "nothing to train" in r.output, r.output
    assert ModelStore(ccv_home, bundled_root=None).entries() == []  # no untrained generators as models
    assert not (tmp_path / "checkpoints").exists()


def test_a_failing_save_is_one_line_and_the_last_save_stays_usable(dataroot, tmp_path, monkeypatch):
    import errno

    from cyclegan_convert.train import checkpoint as ckpt

    real = ckpt.save_state
    calls = {"n": 0}

    def full_disk_on_second(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*a, **kw)

    monkeypatch.setattr(ckpt, "save_state", full_disk_on_second)
    r = _invoke([str(dataroot), *TINY, "--save-every", "2", "--max-steps", "6", "--workers", "0", "--no-register"],
                tmp_path)
    assert r.exit_code == 2, r.output  # was an OSError traceback (exit 1)
    assert "No space left on device" in r.output and "step 2" in r.output and "Traceback" not in r.output
    assert _states(tmp_path / "checkpoints" / "monet2photo")["step"] == 2


def test_a_run_that_is_already_running_is_refused_and_its_files_untouched(dataroot, tmp_path):
    import fcntl
    import os

    args = [*TINY, "--workers", "0", "--no-register"]
    assert _invoke([str(dataroot), *args, "--max-steps", "2"], tmp_path).exit_code == 0
    run = tmp_path / "checkpoints" / "monet2photo"
    log_before = (run / "loss_log.jsonl").read_bytes()
    fd = os.open(run, os.O_RDONLY)  # what a running `ccv train` of this run holds
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        r = _invoke(["--name", "monet2photo", "--resume", *args, "--max-steps", "4"], tmp_path)
        assert r.exit_code == 2 and "another `ccv train` is running" in r.output, r.output
        assert (run / "loss_log.jsonl").read_bytes() == log_before and _states(run)["step"] == 2
    finally:
        os.close(fd)
    r = _invoke(["--name", "monet2photo", "--resume", *args, "--max-steps", "4"], tmp_path)
    assert r.exit_code == 0, r.output  # the lock went with its holder
    assert _states(run)["step"] == 4
    assert not list(run.glob(".*"))  # no lock file left behind


def test_printed_convert_commands_name_the_source_when_another_model_makes_the_target(dataroot, tmp_path,
                                                                                      ccv_home):
    from cyclegan_convert.networks import ResnetGenerator

    other = tmp_path / "label2photo.pth"
    torch.save(ResnetGenerator(ngf=8, n_blocks=1).state_dict(), other)
    assert runner.invoke(app, ["import", str(other), "--to", "photo", "--from", "label"]).exit_code == 0
    r = _invoke([str(dataroot), *TINY, "--max-steps", "1", "--workers", "0"], tmp_path)
    assert r.exit_code == 0, r.output
    # `ccv convert --to photo` alone would now be ambiguous (label2photo, monet2photo)
    assert "ccv convert --to photo --from monet (G_A" in r.output and "ccv convert --to monet (G_B" in r.output


def test_a_model_store_that_cannot_be_written_is_refused_before_training(dataroot, tmp_path, monkeypatch):
    """Was: hours of training, then an error at the first save that blamed the checkpoint folder and
    said that nothing was saved (state.pth was)."""
    home = tmp_path / "afile"
    home.write_text("")
    monkeypatch.setenv("CCV_HOME", str(home))
    r = _invoke([str(dataroot), *TINY, "--max-steps", "2", "--workers", "0"], tmp_path)
    assert r.exit_code == 2 and "cannot write the model store" in r.output and "--no-register" in r.output, r.output
    assert not (tmp_path / "checkpoints" / "monet2photo" / "state.pth").exists()
    r = _invoke([str(dataroot), *TINY, "--max-steps", "1", "--workers", "0", "--no-register"], tmp_path)
    assert r.exit_code == 0, r.output


def test_resume_on_data_with_another_number_of_images_says_it_is_not_exact(dataroot, tmp_path):
    args = [*TINY, "--workers", "0", "--no-register"]
    assert _invoke([str(dataroot), *args, "--max-steps", "1"], tmp_path).exit_code == 0
    r = _invoke([str(dataroot), "--name", "monet2photo", "--resume", *args, "--max-steps", "2"], tmp_path)
    assert r.exit_code == 0 and "data changed" not in r.output, r.output
    next(p for p in (dataroot / "trainB").iterdir()).unlink()
    r = _invoke([str(dataroot), "--name", "monet2photo", "--resume", *args, "--max-steps", "3"], tmp_path)
    assert r.exit_code == 0 and "data changed" in r.output and "not exact" in r.output, r.output


def test_resuming_a_finished_run_or_past_max_steps_says_there_is_nothing_to_train(dataroot, tmp_path):
    args = [*TINY, "--workers", "0", "--no-register"]
    assert _invoke([str(dataroot), *args, "--max-steps", "2"], tmp_path).exit_code == 0
    r = _invoke(["--name", "monet2photo", "--resume", *args, "--max-steps", "1"], tmp_path)
    assert r.exit_code == 0 and "nothing to train" in r.output and "--max-steps" in r.output, r.output
    assert _invoke([str(dataroot), *args, "--name", "done", "--epochs", "1", "--epochs-decay", "0"],
                   tmp_path).exit_code == 0
    r = _invoke(["--name", "done", "--resume", *args], tmp_path)
    assert r.exit_code == 0 and "already finished all 1 epochs" in r.output, r.output


def test_refused_resume_shows_whole_values():
    """A domain name with spaces was cut to its last word in the message ("checkpoint: paintings")."""
    from cyclegan_convert.errors import UsageError
    from cyclegan_convert.train.config import TrainConfig
    from cyclegan_convert.train.loop import check_resume_config

    with pytest.raises(UsageError) as e:
        check_resume_config(TrainConfig(a_name="oil paintings", flip=True), TrainConfig(a_name="monet", flip=False))
    assert "--a-name monet (checkpoint: oil paintings)" in str(e.value)
    assert "--no-flip (checkpoint: flips)" in str(e.value)


def test_resume_refused_when_the_run_saved_after_it_read_the_state(tmp_path):
    """A second process that read state.pth, then got the run lock after the first one saved again
    and exited, resumed from the older state and overwrote the newer checkpoints."""
    import os

    from cyclegan_convert.errors import UsageError
    from cyclegan_convert.train.loop import _RunLock, _stamp

    state = tmp_path / "state.pth"
    state.write_bytes(b"step 10")
    read_at = _stamp(state)
    _RunLock(tmp_path, fresh=False, resumed_stamp=read_at).release()  # unchanged: fine
    state.write_bytes(b"step 20, saved by the other run")
    os.utime(state, ns=(read_at[0] + 10**9, read_at[0] + 10**9))
    with pytest.raises(UsageError, match="saved again"):
        _RunLock(tmp_path, fresh=False, resumed_stamp=read_at)


def test_sample_every_adds_grids_between_saves(dataroot, tmp_path):
    """--sample-every writes a grid at its steps besides those of the saves, one per step at most."""
    r = _invoke([str(dataroot), *TINY, "--workers", "0", "--no-register", "--save-every", "3", "--sample-every", "2",
                 "--max-steps", "5"], tmp_path)
    assert r.exit_code == 0, r.output
    run = tmp_path / "checkpoints" / "monet2photo"
    assert [p.name for p in sorted((run / "samples").glob("*.png"))] == [f"step_{s:07d}.png" for s in (2, 3, 4, 5)]
    assert _states(run)["step"] == 5


def test_a_save_that_fails_before_any_other_says_nothing_was_saved(dataroot, tmp_path, monkeypatch):
    import errno

    from cyclegan_convert.train import checkpoint as ckpt

    def full_disk(*a, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt, "save_state", full_disk)
    r = _invoke([str(dataroot), *TINY, "--save-every", "2", "--max-steps", "4", "--workers", "0", "--no-register"],
                tmp_path)
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert "at step 2 (No space left on device); nothing was saved yet" in r.output, r.output
    assert not (tmp_path / "checkpoints" / "monet2photo" / "state.pth").exists()


def test_messages_of_a_run_and_of_its_resume(dataroot, tmp_path):
    """What the run says about its data and device, and where a resume picks up (--amp may change)."""
    args = [*TINY, "--workers", "0", "--no-register", "--device", "cpu"]
    r = _invoke([str(dataroot), *args, "--max-steps", "2"], tmp_path)
    assert r.exit_code == 0, r.output
    a, b = (dataroot / "trainA").resolve(), (dataroot / "trainB").resolve()
    assert f"data: 3 images of monet ({a}), 4 of photo ({b}); 4 steps per epoch\n" in r.output, r.output
    assert "device: CPU, fp32 (seconds per step at 256 px, months for the full recipe: real training needs a GPU)" \
        in r.output and "resumed" not in r.output
    r = _invoke(["--name", "monet2photo", "--resume", *args, "--amp", "--max-steps", "3"], tmp_path)
    assert r.exit_code == 0, r.output
    assert "resumed checkpoints/monet2photo at step 2 (epoch 1, step 2 of it)\n" in r.output, r.output
    assert "device: CPU, AMP bf16 (" in r.output and "not exact" not in r.output
    assert _states(tmp_path / "checkpoints" / "monet2photo")["step"] == 3


def test_the_run_lock_is_released_when_the_loss_log_cannot_be_opened(dataroot, tmp_path):
    from cyclegan_convert.train.loop import _RunLock, _stamp

    options = RunOptions(name="run", checkpoints_dir=str(tmp_path / "ck"), workers=0, max_steps=1, register=False)
    done = train(_tiny_config(dataroot), options)
    log = done.folder / "loss_log.jsonl"
    log.unlink()
    log.mkdir()  # the resume cannot rewrite it
    with pytest.raises(IsADirectoryError):
        train(None, RunOptions(**{**options.__dict__, "max_steps": 2}), resume=True)
    # the failed resume let go of the run: the next one may take it
    _RunLock(done.folder, fresh=False, resumed_stamp=_stamp(done.folder / "state.pth")).release()


def _nets(folder: Path) -> dict[str, dict[str, torch.Tensor]]:
    return {n: torch.load(folder / f"latest_net_{n}.pth", weights_only=True) for n in ("G_A", "G_B", "D_A", "D_B")}


def test_init_from_starts_all_four_networks_from_the_runs_latest_and_a_resize_run_may_start_a_bilinear_one(
        dataroot, tmp_path):
    base = [str(dataroot), *TINY, "--workers", "0", "--no-register"]
    assert _invoke([*base, "--name", "src", "--upsample", "resize", "--max-steps", "1"], tmp_path).exit_code == 0
    src = tmp_path / "checkpoints" / "src"
    # one step at lr 0 changes no weight, so what it saves is what the run started from; another
    # seed, so its own initial weights differ from src's
    r = _invoke([*base, "--name", "tuned", "--upsample", "bilinear", "--init-from", str(src), "--lr", "0",
                 "--seed", "3", "--max-steps", "1"], tmp_path)
    assert r.exit_code == 0, r.output
    assert f"networks start from {src.resolve()}" in r.output
    tuned = tmp_path / "checkpoints" / "tuned"
    start, want = _nets(tuned), _nets(src)
    for net in want:
        # the resize convolutions' weights, under the bilinear ones' names
        assert {k.replace(".bilinear_conv.", ".conv."): v for k, v in start[net].items()}.keys() == want[net].keys()
        for k, v in start[net].items():
            assert torch.equal(v, want[net][k.replace(".bilinear_conv.", ".conv.")]), (net, k)
    assert any(".bilinear_conv." in k for k in start["G_A"])
    assert load_generator(tuned / "latest_net_G_B.pth").upsample == "bilinear"
    assert _states(tuned)["config"]["init_from"] == str(src.resolve())  # part of the recipe


def test_init_from_refuses_a_folder_without_weights_and_networks_of_another_shape(dataroot, tmp_path, ccv_home):
    base = [str(dataroot), *TINY, "--workers", "0", "--max-steps", "1"]
    assert _invoke([*base, "--name", "src", "--no-register"], tmp_path).exit_code == 0
    src = tmp_path / "checkpoints" / "src"
    (tmp_path / "empty").mkdir()
    r = _invoke([*base, "--name", "tuned", "--init-from", str(tmp_path / "empty")], tmp_path)
    assert r.exit_code == 2 and "no latest_net_G_A.pth there" in r.output, r.output
    assert not (tmp_path / "checkpoints" / "tuned").exists()  # refused before anything started
    r = _invoke([*base, "--name", "tuned", "--init-from", str(tmp_path / "missing")], tmp_path)
    assert r.exit_code == 2 and "not a folder" in r.output, r.output
    for other in (["--ngf", "16"], ["--upsample", "resize"]):  # another width; another upsampling
        r = _invoke([*base, "--name", "tuned", "--init-from", str(src), *other], tmp_path)
        assert r.exit_code == 2 and "Traceback" not in r.output, r.output
        error = [line for line in r.output.splitlines() if "error" in line.lower()]
        assert len(error) == 1 and f"{src.resolve() / 'latest_net_G_A.pth'}: " in error[0], r.output
        if other[0] == "--ngf":
            assert "does not fit" in error[0] and "size mismatch" in error[0] and "--ngf" in error[0]
        else:  # the upsampling is named as the difference
            assert "a transpose generator cannot start a --upsample resize run" in error[0], r.output
    assert not (tmp_path / "checkpoints" / "tuned").exists()  # refused before the run folder was made
    # nothing the refused runs left behind stops the right one: no "already holds a run", no store conflict
    tuned = tmp_path / "checkpoints" / "tuned"
    assert not (tuned / "state.pth").exists() and ModelStore(ccv_home, bundled_root=None).entries() == []
    r = _invoke([*base, "--name", "tuned", "--init-from", str(src)], tmp_path)
    assert r.exit_code == 0 and "networks start from" in r.output, r.output
    assert _states(tuned)["step"] == 1 and ModelStore(ccv_home).find("photo").origin == "trained"


def test_resuming_a_fine_tuned_run_continues_its_checkpoint_without_the_init_folder(dataroot, tmp_path):
    """--init-from starts a run; a resume takes everything from the run's own checkpoint (the init
    weights are not loaded over it, the init folder may be gone) and is exact: 2 + resume + 1 == 3."""
    base = [str(dataroot), *TINY, "--workers", "0", "--no-register"]
    assert _invoke([*base, "--name", "src", "--max-steps", "1"], tmp_path).exit_code == 0
    src = tmp_path / "checkpoints" / "src"
    tuned = [*base, "--init-from", str(src)]
    assert _invoke([*tuned, "--name", "straight", "--max-steps", "3"], tmp_path).exit_code == 0
    assert _invoke([*tuned, "--name", "split", "--max-steps", "2"], tmp_path).exit_code == 0
    shutil.rmtree(src)
    r = _invoke(["--name", "split", "--resume", "--workers", "0", "--no-register", "--max-steps", "3"], tmp_path)
    assert r.exit_code == 0, r.output
    assert "resumed" in r.output and "networks start from" not in r.output and "not exact" not in r.output
    split, straight = _states(tmp_path / "checkpoints" / "split"), _states(tmp_path / "checkpoints" / "straight")
    assert split["step"] == straight["step"] == 3
    for net, sd in straight["model"]["nets"].items():
        for k, v in sd.items():
            assert torch.equal(split["model"]["nets"][net][k], v), (net, k)


def test_notch_trains_inside_the_generators_and_init_from_moves_between_runs_with_and_without_it(dataroot, tmp_path):
    """--notch puts networks.LatticeNotch after the generators' tanh: the saved generators carry it
    (loaders rebuild it from the file), the discriminators do not; a run without it may start from
    one with it and the other way round (the filter has no weights)."""
    base = [str(dataroot), *TINY, "--workers", "0", "--no-register", "--max-steps", "1"]
    r = _invoke([*base, "--name", "notched", "--upsample", "resize", "--notch", "8"], tmp_path)
    assert r.exit_code == 0, r.output
    notched = tmp_path / "checkpoints" / "notched"
    g = load_generator(notched / "latest_net_G_B.pth")
    assert g.notch == (4, 8.0) and _states(notched)["config"]["notch"] == 8.0
    assert not any(k.endswith(".notch") for k in _nets(notched)["D_A"])
    r = _invoke([*base, "--name", "plain", "--upsample", "resize", "--init-from", str(notched), "--lr", "0"], tmp_path)
    assert r.exit_code == 0, r.output
    plain = _nets(tmp_path / "checkpoints" / "plain")["G_B"]
    assert not any(k.endswith(".notch") for k in plain)
    assert all(torch.equal(v, _nets(notched)["G_B"][k]) for k, v in plain.items())  # lr 0: the same weights
    r = _invoke([*base, "--name", "again", "--upsample", "resize", "--notch", "16", "--init-from",
                 str(tmp_path / "checkpoints" / "plain")], tmp_path)
    assert r.exit_code == 0, r.output
    assert load_generator(tmp_path / "checkpoints" / "again" / "latest_net_G_B.pth").notch == (4, 16.0)
    r = _invoke([*base, "--name", "wider", "--upsample", "resize", "--notch", "16", "--init-from", str(notched)],
                tmp_path)  # from a notch of sigma 8: this run's 16, in the filter and in the file
    assert r.exit_code == 0, r.output
    wider = load_generator(tmp_path / "checkpoints" / "wider" / "latest_net_G_B.pth")
    assert wider.notch == (4, 16.0) and wider.model[-1].notch.tolist() == [4.0, 16.0]
    r = _invoke([*base, "--name", "huge", "--notch", "300"], tmp_path)  # more than loaders accept: refused first
    assert r.exit_code == 2 and not (tmp_path / "checkpoints" / "huge").exists(), r.output


def test_a_killed_loading_worker_saves_the_run_where_it_was(dataroot, tmp_path, monkeypatch):
    """A kill of the whole process group (a session's end) reaches the DataLoader's workers, whose
    SIGTERM is left at its default: the run crashed on "DataLoader worker ... killed by signal" and
    lost every step since its last save. It now saves at its last step and can be resumed."""
    import os

    def kill_the_workers():
        children = [int(c) for t in Path(f"/proc/{os.getpid()}/task").iterdir()
                    for c in (t / "children").read_text().split()]
        assert children, "no loading worker to stop"
        for pid in children:
            os.kill(pid, signal.SIGTERM)

    _after_step(monkeypatch, 2, kill_the_workers)
    result = train(_tiny_config(dataroot), RunOptions(name="killed", checkpoints_dir=str(tmp_path / "c"), workers=1,
                                                      register=False, save_every=1000))
    assert result.stopped == "interrupted" and 2 <= result.step <= 3, (result.stopped, result.step)
    assert _states(result.folder)["step"] == result.step


def test_only_a_lost_loading_worker_counts_as_one():
    """A worker killed while it hands over a batch fails the main process's receive of the batch's
    shared memory with "Connection reset by peer" (seen under load: the run crashed without saving).
    That error from inside PyTorch's loading counts as a lost worker; the same error elsewhere does not."""
    import os

    assert _loading_worker_lost(RuntimeError("DataLoader worker (pid 12) is killed by signal: Terminated. "))
    assert not _loading_worker_lost(RuntimeError("Expected all tensors to be on the same device"))
    raise_it = "raise ConnectionResetError(104, 'Connection reset by peer')"
    for filename, lost in ((os.path.join("torch", "multiprocessing", "reductions.py"), True),
                           (os.path.join("cyclegan_convert", "store.py"), False)):
        try:
            exec(compile(raise_it, filename, "exec"))
        except ConnectionResetError as e:
            assert _loading_worker_lost(e) is lost, filename


def _resume_keeps_and_refuses_another(name: str, field: str, value, other: str, tmp_path: Path) -> None:
    """Run ``name`` (saved at step 1 with recipe ``field`` = ``value``): a plain --resume takes a step
    and keeps it; a --resume that gives the option another value is refused, naming both values."""
    r = _invoke(["--name", name, "--resume", "--max-steps", "2", "--workers", "0", "--no-register"], tmp_path)
    assert r.exit_code == 0, r.output
    state = _states(tmp_path / "checkpoints" / name)
    assert state["step"] == 2 and state["config"][field] == value
    option = "--" + field.replace("_", "-")
    r = _invoke(["--name", name, "--resume", option, other, "--max-steps", "3", "--workers", "0"], tmp_path)
    assert r.exit_code == 2 and f"{option} {type(value)(other)} (checkpoint: {value})" in r.output, r.output


def test_discriminator_scales_resume_exactly_and_start_from_a_single_scale_run(dataroot, tmp_path):
    """--d-scales 2 is recorded in the run (a resume keeps it, a different value is refused), and
    --init-from a single-scale run starts scale 0 with that run's PatchGAN, the coarser one fresh."""
    args = [str(dataroot), "--load-size", "72", "--crop-size", "64", "--ngf", "8", "--ndf", "8", "--blocks", "1",
            "--epochs", "1", "--epochs-decay", "1", "--pool-size", "2", "--seed", "5", "--workers", "0", "--no-register"]
    r = _invoke([*args, "--name", "small", "--d-scales", "3"], tmp_path)  # 16 px at the third scale
    assert r.exit_code == 2 and "--crop-size 128" in r.output, r.output
    assert _invoke([*args, "--name", "single", "--max-steps", "1"], tmp_path).exit_code == 0
    single = tmp_path / "checkpoints" / "single"
    r = _invoke([*args, "--name", "multi", "--d-scales", "2", "--init-from", str(single), "--max-steps", "1"], tmp_path)
    assert r.exit_code == 0, r.output
    multi = tmp_path / "checkpoints" / "multi"
    assert _states(multi)["config"]["d_scales"] == 2
    _resume_keeps_and_refuses_another("multi", "d_scales", 2, "3", tmp_path)

    # a fresh multi-scale run from the single one, no step taken: what it loaded
    from cyclegan_convert.train.checkpoint import load_init_nets
    from cyclegan_convert.train.model import CycleGAN

    m = CycleGAN(_tiny_config(dataroot, d_scales=2).with_(crop_size=64, seed=9))
    fresh = {k: v.clone() for k, v in m.D_A.state_dict().items()}
    load_init_nets(single, m.nets)
    src = torch.load(single / "latest_net_D_A.pth", weights_only=True)
    got = m.D_A.state_dict()
    assert all(torch.equal(got[f"scales.0.{k}"], v) for k, v in src.items())
    assert all(torch.equal(got[k], v) for k, v in fresh.items() if k.startswith("scales.1."))
    back = CycleGAN(_tiny_config(dataroot).with_(seed=9))  # and a single-scale run from the multi-scale one
    load_init_nets(multi, back.nets)
    saved = torch.load(multi / "latest_net_D_A.pth", weights_only=True)
    assert all(torch.equal(v, saved[f"scales.0.{k}"]) for k, v in back.D_A.state_dict().items())


def test_zoom_b_is_part_of_the_recipe(dataroot, tmp_path):
    """--zoom-b is recorded in the run; a resume keeps it and refuses another value; below 1 is a usage error."""
    args = [str(dataroot), *TINY, "--epochs", "1", "--epochs-decay", "1", "--workers", "0", "--no-register"]
    assert _invoke([*args, "--name", "z", "--zoom-b", "0.5"], tmp_path).exit_code == 2
    r = _invoke([*args, "--name", "z", "--zoom-b", "3", "--max-steps", "1"], tmp_path)
    assert r.exit_code == 0, r.output
    run = tmp_path / "checkpoints" / "z"
    assert _states(run)["config"]["zoom_b"] == 3.0
    _resume_keeps_and_refuses_another("z", "zoom_b", 3.0, "2", tmp_path)


def test_generator_average_is_saved_resumed_exactly_and_restarted_by_init_from(dataroot, tmp_path):
    """With --g-average, latest_net_G_* are the averages (not the trained weights), a resumed run's
    averages equal an uninterrupted run's, and --init-from starts the averages at the weights it loads."""
    args = [str(dataroot), *TINY, "--epochs", "1", "--epochs-decay", "1", "--pool-size", "2", "--seed", "5",
            "--workers", "0", "--no-register", "--g-average", "0.5"]
    assert _invoke([*args, "--max-steps", "2"], tmp_path).exit_code == 0
    r = _invoke(["--name", "monet2photo", "--resume", "--max-steps", "4", "--workers", "0", "--no-register"], tmp_path)
    assert r.exit_code == 0, r.output
    assert _invoke([*args, "--name", "straight", "--max-steps", "4"], tmp_path).exit_code == 0
    run, straight = tmp_path / "checkpoints" / "monet2photo", tmp_path / "checkpoints" / "straight"
    a, b = _states(run)["model"], _states(straight)["model"]
    for g in ("G_A", "G_B"):
        latest = torch.load(run / f"latest_net_{g}.pth", weights_only=True)
        for k, v in a["averages"][g].items():
            assert torch.equal(v, b["averages"][g][k]), (g, k)
            assert torch.equal(latest[k], v)
        assert any(not torch.equal(latest[k], a["nets"][g][k]) for k in latest)
    latest_D = torch.load(run / "latest_net_D_A.pth", weights_only=True)
    assert all(torch.equal(latest_D[k], v) for k, v in a["nets"]["D_A"].items())

    r = _invoke([*args, "--name", "tuned", "--init-from", str(run), "--max-steps", "1"], tmp_path)
    assert r.exit_code == 0, r.output
    tuned = _states(tmp_path / "checkpoints" / "tuned")["model"]
    start = torch.load(run / "latest_net_G_A.pth", weights_only=True)  # the loaded weights
    for k, v in tuned["averages"]["G_A"].items():  # one step from them: halfway to the trained weights
        torch.testing.assert_close(v, 0.5 * start[k] + 0.5 * tuned["nets"]["G_A"][k], rtol=0, atol=1e-6)
