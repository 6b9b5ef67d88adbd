"""`ccv convert` with inputs and outputs in object stores: fsspec's in-memory store in this process
(fsspec comes with PyTorch, so these run everywhere), and S3 through a local moto server (skipped
unless s3fs and moto are installed: `pip install s3fs "moto[server]"`). A store run gives the same
bytes, names, failures and manifest records as a local run of the same photos, reruns convert
nothing, and no temporary key or unrecorded output is left."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from cyclegan_convert import manifest as manifest_mod
from cyclegan_convert.cli import app
from cyclegan_convert.converter import ConvertOptions, Converter
from cyclegan_convert.errors import UsageError
from cyclegan_convert.files import plan_roots
from cyclegan_convert.manifest import FAILURES_NAME, MANIFEST_NAME, PARTS_NAME, ObjectManifest, read_records
from cyclegan_convert.object_store import ObjectPath, filesystem, location
from cyclegan_convert.resolve import resolve_model

from conftest import PHOTOS, needs_ray, torch_threads


def _photo_bytes(i: int, size=(96, 72)) -> bytes:
    import io

    buf = io.BytesIO()
    Image.open(PHOTOS[i % len(PHOTOS)]).convert("RGB").resize(size).save(buf, "JPEG", quality=90)
    return buf.getvalue()


TREE = {"p0.jpg": 0, "p1.jpg": 1, "sub/IMG [2].jpg": 2, "sub/deeper/p3.jpg": 3}  # [ ] is a pattern to fsspec


def _fill(root, with_bad: bool = True) -> None:
    """The same small tree, in a local folder or a store: photos, a broken JPEG, OS clutter."""
    files = {name: _photo_bytes(i) for name, i in TREE.items()}
    if with_bad:
        files["broken.jpg"] = b"\xff\xd8\xff\xe0 not a jpeg"
    files[".DS_Store"] = b"clutter"
    for name, data in files.items():
        if isinstance(root, ObjectPath):
            (root / name).write_bytes(data)
        else:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(data)


def _objects(root: ObjectPath) -> dict[str, bytes]:
    fs = root.fs
    return {ObjectPath(f"{root.protocol}://{k}").relative_to(root).as_posix(): fs.cat_file(f"{root.protocol}://{k}")
            for k in fs.find(str(root))}


def _local(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def bucket(tmp_path):
    root = ObjectPath(f"memory://ccv-test-{tmp_path.name}")
    yield root
    fs = root.fs
    if fs.exists(str(root)):
        fs.rm(str(root), recursive=True)


@pytest.fixture
def model(tmp_path, tiny_generator):
    path = tmp_path / "tiny.pth"
    torch.save(tiny_generator.state_dict(), path)
    return resolve_model(model=path)


def test_object_paths_behave_as_paths_do():
    p = ObjectPath("s3://bucket/photos//2024/./a.JPG")
    assert str(p) == "s3://bucket/photos/2024/a.JPG"
    assert (p.name, p.stem, p.suffix) == ("a.JPG", "a", ".JPG")
    assert p.parent == ObjectPath("s3://bucket/photos/2024") and p.parent.parent.parent.parent == ObjectPath("s3://bucket")
    assert p.relative_to(ObjectPath("s3://bucket/photos")).as_posix() == "2024/a.JPG"
    assert ObjectPath("s3://bucket/photos") / Path("2024") / "a.JPG" == p
    with pytest.raises(ValueError):
        p.relative_to(ObjectPath("s3://bucket/photo"))  # a prefix of the name is not a folder
    with pytest.raises(TypeError):
        open(p)  # no __fspath__: never a local file of the same name
    assert isinstance(location("gs://b/k"), ObjectPath) and location("file:///tmp/x") == Path("/tmp/x")
    assert location("photos/2024") == Path("photos/2024")


def test_a_store_without_its_package_is_one_usage_line():
    import importlib.util

    if importlib.util.find_spec("gcsfs") is None:
        with pytest.raises(UsageError, match="pip install gcsfs"):
            filesystem("gs")
    with pytest.raises(UsageError, match="nosuchproto://: not a storage protocol"):
        plan_roots(["nosuchproto://bucket/photos"], "monet")


def test_a_store_run_writes_what_a_local_run_writes(tmp_path, bucket, model):
    src_local, src = tmp_path / "photos", bucket / "photos"
    _fill(src_local)
    _fill(src)
    before = _objects(src)
    local = Converter(model, ConvertOptions(output=tmp_path / "out")).run([str(src_local)])
    store = Converter(model, ConvertOptions(output=str(bucket / "out"))).run([str(src)])
    assert (local.converted, len(local.failed)) == (store.converted, len(store.failed)) == (4, 1)
    a, b = _local(tmp_path / "out"), _objects(bucket / "out")
    outputs = sorted(TREE)
    assert sorted(k for k in a if not k.startswith(".") and k != FAILURES_NAME) == outputs
    assert sorted(k for k in b if not k.startswith(".") and k != FAILURES_NAME) == outputs
    for name in outputs:
        assert a[name] == b[name], name  # same decode, same network, same encoder: the same bytes
    assert not any(".part" in k for k in b) and not any(k.startswith(PARTS_NAME) for k in b)
    failures = b[FAILURES_NAME].decode()
    assert failures.count("\n") == 1 and failures.startswith(f"{src / 'broken.jpg'}\t")
    assert failures.split("\t")[1] == a[FAILURES_NAME].decode().split("\t")[1].replace(str(src_local), str(src))
    records = manifest_mod._parse(b[MANIFEST_NAME].decode(), {})
    assert sorted(records) == outputs and records["sub/IMG [2].jpg"].src == str(src / "sub/IMG [2].jpg")
    assert _objects(src) == before  # inputs never written to


def test_reruns_convert_nothing_and_a_changed_source_is_redone(bucket, model):
    src, out = bucket / "photos", bucket / "out"
    _fill(src, with_bad=False)
    opts = ConvertOptions(output=out)
    assert Converter(model, opts).run([str(src)]).converted == 4
    first = _objects(out)
    again = Converter(model, opts).run([str(src)])
    assert (again.converted, again.skipped) == (0, 4) and _objects(out) == first
    (src / "p1.jpg").write_bytes(_photo_bytes(3))  # a new version of one source: a new ETag/stamp
    third = Converter(model, opts).run([str(src)])
    assert (third.converted, third.skipped) == (1, 3)
    assert _objects(out)["p1.jpg"] != first["p1.jpg"] and _objects(out)["p0.jpg"] == first["p0.jpg"]


def test_mixed_local_and_store_inputs_and_outputs(tmp_path, bucket, model, monkeypatch):
    local_src = tmp_path / "photos"
    _fill(local_src, with_bad=False)
    monkeypatch.chdir(tmp_path)  # a relative local input: recorded by its full path, as on a disk
    up = Converter(model, ConvertOptions(output=bucket / "up")).run(["photos"])
    assert up.converted == 4 and sorted(k for k in _objects(bucket / "up") if not k.startswith(".")) == sorted(TREE)
    (local_src / "p1.jpg").write_bytes(_photo_bytes(3))
    again = Converter(model, ConvertOptions(output=bucket / "up")).run(["photos"])
    assert (again.converted, again.skipped) == (1, 3)
    _fill(bucket / "photos", with_bad=False)
    down = Converter(model, ConvertOptions(output=tmp_path / "down")).run([str(bucket / "photos")])
    assert down.converted == 4 and sorted(k for k in _local(tmp_path / "down") if not k.startswith(".")) == sorted(TREE)
    assert read_records(tmp_path / "down" / MANIFEST_NAME)["p0.jpg"].src == str(bucket / "photos" / "p0.jpg")


def test_globs_single_objects_and_the_default_output_folder(bucket, model):
    src = bucket / "photos"
    _fill(src, with_bad=False)
    glob = Converter(model, ConvertOptions(output=bucket / "g")).run([f"{src}/sub/**/*.jpg"])
    assert glob.converted == 2 and sorted(k for k in _objects(bucket / "g") if not k.startswith(".")) == \
        ["IMG [2].jpg", "deeper/p3.jpg"]
    one = Converter(model, ConvertOptions()).run([str(src / "p0.jpg")])  # beside itself, with the target's suffix
    assert one.converted == 1 and (src / f"p0_{model.target}.jpg").exists()
    walked = Converter(model, ConvertOptions()).run([str(src)])  # a sibling folder; its own outputs are not inputs
    assert walked.out_roots == [bucket / f"photos_{model.target}"]
    assert sorted(k for k in _objects(bucket / f"photos_{model.target}") if not k.startswith(".")) == sorted(TREE)


def test_each_output_is_recorded_before_it_appears(bucket, model, monkeypatch):
    """The manifest's batch part is in the store before any output it records is moved into place."""
    src, out = bucket / "photos", bucket / "out"
    _fill(src, with_bad=False)
    seen = []
    copy = manifest_mod.copy_object

    def checked(tmp, dst):
        records, _ = manifest_mod.read_object_records(out)
        seen.append(dst.relative_to(out).as_posix() in records)
        copy(tmp, dst)

    monkeypatch.setattr(manifest_mod, "copy_object", checked)
    monkeypatch.setattr(ObjectManifest, "BATCH", 3)  # two batches: one full, one at close
    assert Converter(model, ConvertOptions(output=out)).run([str(src)]).converted == 4
    assert seen == [True] * 4


def test_encoders_go_on_while_batches_are_published_up_to_in_flight(bucket, monkeypatch):
    """commit_later hands a full batch to the publishing thread and returns: a slow store holds back
    no encoder until IN_FLIGHT batches wait for it (the one being published included); then each
    commit waits for a batch to finish. The store here copies one object each time the test lets it;
    after each, the encoder is let run until it blocks."""
    import threading
    import time

    limit = ObjectManifest.IN_FLIGHT
    n = limit + 2  # two more than fit: the encoder blocks, and blocks again
    src, out = bucket / "photos", bucket / "out"
    _fill(src, with_bad=False)
    for i in range(n):
        (out / f".p{i}.jpg.x.part.jpg").write_bytes(b"encoded photo %d" % i)
    gate, copied = threading.Semaphore(0), []
    copy = manifest_mod.copy_object

    def held_back(tmp, dst):
        assert gate.acquire(timeout=30)
        copy(tmp, dst)
        copied.append(dst)

    monkeypatch.setattr(manifest_mod, "copy_object", held_back)
    monkeypatch.setattr(ObjectManifest, "BATCH", 1)  # each output a batch of its own
    m, done, returned = ObjectManifest(out), [], []

    def encoder():
        for i in range(n):
            m.commit_later(f"p{i}.jpg", "key", src / "p0.jpg", False, out / f".p{i}.jpg.x.part.jpg", out / f"p{i}.jpg",
                           done=lambda: done.append(1), failed=done.append)
            returned.append(i)

    def settle(at_least: int) -> int:
        """How many commits returned, once ``at_least`` have and a moment has passed for more."""
        deadline = time.monotonic() + 30
        while len(returned) < at_least and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)  # room to go past the limit, if nothing held it
        return len(returned)

    threading.Thread(target=encoder, daemon=True).start()
    waiting = []  # batches handed to the publisher and not yet copied, whenever the encoder stood still
    for k in range(n):
        waiting.append(settle(min(n, k + limit)) - len(copied))
        gate.release()  # the store copies one more
    m.close()  # waits for the publisher
    assert waiting == [min(limit, n - k) for k in range(n)]  # the limit reached, and never passed
    assert done == [1] * n and len(copied) == n and (out / "p0.jpg").read_bytes() == b"encoded photo 0"
    assert set(manifest_mod.read_object_records(out)[0]) == {f"p{i}.jpg" for i in range(n)}


class ClientError(Exception):
    """As botocore's ClientError: a store client's error that is not an OSError."""


@pytest.mark.parametrize("op", ["get_file", "put_file"])  # reading a source; uploading its output
def test_a_store_client_error_that_is_not_an_oserror_fails_that_file_alone_in_one_line(bucket, model, monkeypatch, op):
    """The write relies on ``object_store.store_errors`` turning it into an OSError (without it the
    run stops: tried); the read is caught again by the converter's reader, which names the object."""
    src, out = bucket / "photos", bucket / "out"
    _fill(src, with_bad=False)
    fs = bucket.fs
    real = getattr(fs, op)

    def refusing(path1, path2, *args, **kwargs):
        remote = str(path1 if op == "get_file" else path2)  # get_file(rpath, lpath), put_file(lpath, rpath)
        if "p1.jpg" in remote:
            raise ClientError(f"An error occurred (AccessDenied) when calling the {op} operation: Access Denied")
        return real(path1, path2, *args, **kwargs)

    monkeypatch.setattr(fs, op, refusing)  # the process's one memory filesystem, for this test only
    result = CliRunner().invoke(app, ["convert", str(src), "-o", str(out), "--model", str(model.path)])
    assert result.exit_code == 1, result.output
    objects = _objects(out)
    assert sorted(k for k in objects if not k.startswith(".") and k != FAILURES_NAME) == sorted(set(TREE) - {"p1.jpg"})
    what = f"{src / 'p1.jpg'}: cannot read" if op == "get_file" else f"{out / 'p1.jpg'}: cannot write"
    line = f"{what} (An error occurred (AccessDenied) when calling the {op} operation: Access Denied)"
    assert objects[FAILURES_NAME].decode() == f"{src / 'p1.jpg'}\t{line}\n"
    said = [s for s in result.output.splitlines() if "p1.jpg" in s]  # as it happens, and in the summary
    assert said and all(s.endswith(line) for s in said), result.output
    assert "Traceback" not in result.output and "ClientError" not in result.output


def test_a_killed_run_leaves_parts_and_temporary_keys_the_next_run_folds_and_removes(bucket, model):
    src, out = bucket / "photos", bucket / "out"
    _fill(src, with_bad=False)
    opts = ConvertOptions(output=out)
    assert Converter(model, opts).run([str(src / "p0.jpg"), str(src / "p1.jpg")]).converted == 2
    killed = ObjectManifest(out)  # a run killed after writing a batch part and before closing
    tmp = out / ".p9.jpg.deadbeef.part.jpg"
    tmp.write_bytes(b"half an upload")
    killed.commit_later("p9.jpg", "key", src / "p0.jpg", False, out / ".p9b.jpg.cafe.part.jpg", out / "p9.jpg",
                        done=lambda: None, failed=lambda e: None)
    killed._publish(killed._take())  # the part is written (the copy fails: that temporary key never existed)
    assert any(k.startswith(PARTS_NAME) for k in _objects(out))
    rerun = Converter(model, opts).run([str(src)])
    assert (rerun.converted, rerun.skipped) == (2, 2)
    left = _objects(out)
    assert not any(".part" in k for k in left) and not any(k.startswith(PARTS_NAME) for k in left)
    records = manifest_mod._parse(left[MANIFEST_NAME].decode(), {})
    assert set(records) == set(TREE)  # p9.jpg's copy failed: its record was taken back


def test_an_output_folder_named_with_brackets_is_left_clean(bucket, model):
    """fsspec reads [ ] * ? in a bulk delete as patterns; the manifest's parts and the temporary
    keys in such a folder must still go."""
    src, out = bucket / "photos", bucket / "out [final]"
    _fill(src, with_bad=False)
    assert Converter(model, ConvertOptions(output=out)).run([str(src)]).converted == 4
    left = _objects(out)
    assert sorted(k for k in left if not k.startswith(".")) == sorted(TREE)
    assert not any(".part" in k or k.startswith(PARTS_NAME) for k in left) and MANIFEST_NAME in left


def test_a_failed_copy_fails_that_file_alone_and_the_next_run_makes_it(bucket, model, monkeypatch):
    """The record went into the store before the copy; a copy that fails takes it back."""
    src, out = bucket / "photos", bucket / "out"
    _fill(src, with_bad=False)
    copy = manifest_mod.copy_object

    def flaky(tmp, dst):
        if dst.name == "p1.jpg":
            raise OSError("SlowDown: please reduce your request rate")
        copy(tmp, dst)

    monkeypatch.setattr(manifest_mod, "copy_object", flaky)
    first = Converter(model, ConvertOptions(output=out)).run([str(src)])
    assert first.converted == 3 and [str(p) for p, _ in first.failed] == [str(src / "p1.jpg")]
    assert first.failed[0][1] == f"{out / 'p1.jpg'}: cannot write (SlowDown: please reduce your request rate)"
    left = _objects(out)
    assert "p1.jpg" not in left and not any(".part" in k for k in left)
    assert "p1.jpg" not in manifest_mod._parse(left[MANIFEST_NAME].decode(), {})
    monkeypatch.setattr(manifest_mod, "copy_object", copy)
    second = Converter(model, ConvertOptions(output=out)).run([str(src)])
    assert (second.converted, second.skipped) == (1, 3) and "p1.jpg" in _objects(out)


def test_a_folder_that_cannot_be_listed_stops_the_run_with_one_line(bucket, model, monkeypatch):
    src = bucket / "photos"
    _fill(src, with_bad=False)
    listing = ObjectPath.entries

    def denied(self, refresh=False):
        if self.name == "deeper":
            raise PermissionError("AccessDenied")
        return listing(self, refresh)

    monkeypatch.setattr(ObjectPath, "entries", denied)
    with pytest.raises(UsageError, match=r"photos/sub/deeper: cannot list \(AccessDenied\)"):
        Converter(model, ConvertOptions(output=bucket / "out")).run([str(src)])


def test_an_output_prefix_that_is_an_object_is_a_usage_error(bucket):
    _fill(bucket / "photos", with_bad=False)
    (bucket / "taken").write_bytes(b"an object, not a folder")
    with pytest.raises(UsageError, match="is an object"):
        plan_roots([str(bucket / "photos")], "monet", str(bucket / "taken"))
    with pytest.raises(UsageError, match="no such file or folder"):
        plan_roots([str(bucket / "nothing-here")], "monet", str(bucket / "out"))
    with pytest.raises(UsageError, match="a whole bucket needs an output folder"):
        plan_roots([str(bucket)], "monet")


def test_the_cli_takes_store_urls(bucket, model):
    _fill(bucket / "photos")
    out = bucket / "out"
    result = CliRunner().invoke(app, ["convert", str(bucket / "photos"), "-o", str(out), "--model", str(model.path)])
    assert result.exit_code == 1, result.output  # the broken file fails alone
    assert f"{bucket / 'photos' / 'broken.jpg'}" in result.output and str(out / FAILURES_NAME) in result.output
    assert sorted(k for k in _objects(out) if not k.startswith(".") and k != FAILURES_NAME) == sorted(TREE)


# -- S3, through a local moto server --------------------------------------------------------------------------
def _have_s3() -> bool:
    try:
        import moto.server  # noqa: F401
        import s3fs  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def s3_env():
    if not _have_s3():
        pytest.skip("s3fs and moto are not installed: pip install s3fs 'moto[server]' to run the S3 tests")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
           "FSSPEC_S3_ENDPOINT_URL": f"http://{host}:{port}"}
    try:
        yield env
    finally:
        server.stop()


def _s3_cli(env, *args, timeout=600):
    full = {**os.environ, **env}
    return subprocess.run([sys.executable, "-m", "cyclegan_convert", "convert", *map(str, args)], env=full,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def s3_photos(s3_env, tmp_path_factory):
    """The test tree in s3://ccv-bucket/photos, and a local run's outputs of the same photos."""
    code = ("import sys, fsspec; from cyclegan_convert.object_store import ObjectPath; "
            "sys.path.insert(0, sys.argv[1]); from test_object_store import _fill; "
            "fsspec.filesystem('s3').mkdir('ccv-bucket'); _fill(ObjectPath('s3://ccv-bucket/photos'))")
    subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent)], env={**os.environ, **s3_env},
                   check=True, timeout=120)
    return "s3://ccv-bucket/photos"


def _s3fs(env):
    import s3fs  # this process reaches the server itself (fsspec read its FSSPEC_* settings at import)

    return s3fs.S3FileSystem(key="test", secret="test", endpoint_url=env["FSSPEC_S3_ENDPOINT_URL"],
                             skip_instance_cache=True)


def _s3_objects(env, prefix: str) -> dict[str, bytes]:
    fs = _s3fs(env)
    return {k.removeprefix(f"{prefix}/"): fs.cat_file(k) for k in fs.find(prefix)}


def _local_run(tmp_path, model) -> dict[str, bytes]:
    """As a command run here would make them: PyTorch with this machine's default threads (the
    subprocesses compared with it use those too; the outputs are byte-equal only then)."""
    _fill(tmp_path / "photos")
    with torch_threads(os.cpu_count() or 1):
        local = CliRunner().invoke(app, ["convert", str(tmp_path / "photos"), "-o", str(tmp_path / "out"),
                                         "--model", str(model.path)])
    assert local.exit_code == 1, local.output
    return _local(tmp_path / "out")


def test_s3_runs_match_a_local_run_and_rerun_nothing(tmp_path, s3_env, s3_photos, model):
    """A real S3 API: copies for renames, ETags for stamps, batched deletes, listings by prefix."""
    mine = _local_run(tmp_path, model)
    first = _s3_cli(s3_env, s3_photos, "-o", "s3://ccv-bucket/out", "--model", model.path)
    assert first.returncode == 1, first.stdout + first.stderr
    assert "s3://ccv-bucket/photos/broken.jpg" in first.stdout + first.stderr
    assert _summary(first.stdout)[:2] == (4, 0), first.stdout  # no other failure
    again = _s3_cli(s3_env, s3_photos, "-o", "s3://ccv-bucket/out", "--model", model.path)
    assert again.returncode == 1 and "skipped" in again.stdout
    out = _s3_objects(s3_env, "ccv-bucket/out")
    for name in TREE:
        assert out[name] == mine[name], name
    assert not any(".part" in k or k.startswith(PARTS_NAME) for k in out)
    records = manifest_mod._parse(out[MANIFEST_NAME].decode(), {})
    assert sorted(records) == sorted(TREE) and all(r.stamp.split(":")[1] for r in records.values())  # ETags
    assert _summary(again.stdout)[:2] == (0, 4), again.stdout  # converted 0, skipped 4: nothing rewritten


def _summary(text: str) -> tuple[int, ...]:
    """(converted, skipped) from the summary table."""
    import re

    return tuple(int(re.search(rf"{word}\s*│\s*(\d+)", text).group(1)) for word in ("converted", "skipped"))


@needs_ray
def test_s3_with_ray_writes_what_a_local_run_writes(tmp_path, s3_env, s3_photos, model):
    """Read tasks fetch from the store, write tasks upload temporary keys, the driver records and moves."""
    mine = _local_run(tmp_path, model)
    run = _s3_cli(s3_env, s3_photos, "-o", "s3://ccv-bucket/ray", "--model", model.path, "--ray")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Ray actor" in run.stdout and "s3://ccv-bucket/photos/broken.jpg" in run.stdout
    out = _s3_objects(s3_env, "ccv-bucket/ray")
    for name in TREE:
        assert out[name] == mine[name], name
    assert not any(".part" in k or k.startswith(PARTS_NAME) for k in out)
    assert sorted(manifest_mod._parse(out[MANIFEST_NAME].decode(), {})) == sorted(TREE)
    assert out[FAILURES_NAME].decode().count("\n") == 1  # the broken file alone
    # a new photo in a folder the driver has listed: its worker's upload is not in that listing
    _s3_put(s3_env, "ccv-bucket/photos/sub/new.jpg", _photo_bytes(1))
    again = _s3_cli(s3_env, s3_photos, "-o", "s3://ccv-bucket/ray", "--model", model.path, "--ray")
    assert again.returncode == 1 and _summary(again.stdout)[:2] == (1, 4), again.stdout + again.stderr
    after = _s3_objects(s3_env, "ccv-bucket/ray")
    assert "sub/new.jpg" in after and all(after[k] == out[k] for k in TREE)
    _s3_rm(s3_env, "ccv-bucket/photos/sub/new.jpg")


def _s3_put(env, key: str, data: bytes) -> None:
    _s3fs(env).pipe_file(key, data)


def _s3_rm(env, key: str) -> None:
    _s3fs(env).rm_file(key)
