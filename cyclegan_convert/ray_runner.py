"""`ccv convert --ray [ADDRESS]`: the stages of a local run (``image_stages.ImageStages``) executed
by Ray Data instead of ``pipeline.Pipeline``, on one machine or a cluster.

    driver         planning (``ImageStages.source``: the mirrored tree, the manifest's skips), in
                   windows of ``WINDOW`` jobs, so it never holds the whole listing nor any image
    tasks          ``read``: one file decoded at its working size
    actor pool     ``route`` + ``infer`` through the backend router (``num_gpus=1`` per actor where
                   the cluster has GPUs, one CPU actor per node otherwise); the model's bytes are put
                   in the object store once and written to a local file per node
    tasks          ``write_temp``: encoded into a temporary name beside the output
    driver         ``commit``: the manifest line, then the rename; failures, progress, summary

The driver is the only writer of each manifest (appends from many machines to one file on a
shared disk are not atomic), and it renames an output only after recording it, as a local run
does; a temporary file a killed worker leaves is a hidden ``.part`` file, removed by the next run.
Needs ``pip install 'cyclegan-convert[ray]'``; Ray is imported only here.
"""
from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import os
import pickle
import re
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

from .converter import ConvertOptions, Converter, close_manifests
from .errors import CcvError, ItemFailed, UsageError
from .files import plan_roots
from .image_stages import ConvertProgress, ImageStages, Summary, remove_partials
from .object_store import PROCESS_LOCAL, ObjectPath, fresh_listings, location
from .pipeline import PipelineStats, StageStats
from .resolve import ModelRef

RAY_INSTALL = "pip install 'cyclegan-convert[ray]'"
WINDOW = 20_000  # jobs per Ray Data run: bounds the driver's memory; each run starts its actor pool anew
FAULT_ENV = "CCV_RAY_FAULT_ONCE"  # tests: a marker file path; the first inference actor to see it missing exits
_LINE_END = re.compile(rb"\r\n?|\n")
RAY_LINE = re.compile(rb"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ([DIWEF]) \d+ \d+\] ")  # Ray's C++ log format


def import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise UsageError(f"--ray needs Ray Data, which is not installed: {RAY_INSTALL}") from None
    return ray


class RayConverter:
    """``RayConverter(ref, options, address).run(inputs)`` -> ``Summary``, as ``Converter.run``.
    ``address``: None or "local" starts a Ray instance here; "auto" or "ray://host:10001" joins a
    cluster. A Ray already initialised in this process (tests, notebooks) is used as it is."""

    def __init__(self, ref: ModelRef, options: ConvertOptions = ConvertOptions(), address: Optional[str] = None,
                 on_progress: Optional[Callable[[ConvertProgress], None]] = None,
                 on_message: Optional[Callable[[str, str], None]] = None):
        self.ref, self.opt, self.address = ref, options, address
        self.on_progress = on_progress or (lambda p: None)
        self.on_message = on_message or (lambda kind, text: None)
        self._stop = threading.Event()

    def stop(self) -> None:
        """Stops taking results; ``run`` returns with ``interrupted`` set (written files are kept)."""
        self._stop.set()

    def run(self, inputs: Sequence[str]) -> Summary:
        ray = import_ray()
        opt = self.opt
        fresh_listings([*inputs, opt.output])
        roots = plan_roots(inputs, self.ref.target, opt.output)  # usage errors before any work
        for where in [r.base for r in roots] + [r.out_root for r in roots]:
            if isinstance(where, ObjectPath) and where.protocol in PROCESS_LOCAL:
                raise UsageError(f"{where}: a {where.protocol}:// store lives in one process; Ray's workers cannot see it")
        conv = Converter(self.ref, opt, on_progress=self.on_progress, on_message=self.on_message)
        key = conv.settings_key()
        stages = ImageStages(conv, None, key)  # the driver's share: source, commit, counters
        stages.stats = PipelineStats(StageStats(), StageStats(), StageStats())  # rates per worker
        threading.Thread(target=stages.count_total, args=(inputs,), name="ccv-count", daemon=True).start()
        jobs = stages.source(inputs)
        split: dict[str, float] = {}
        interrupted = owned = False
        lines = contextlib.ExitStack()
        try:
            window = list(itertools.islice(jobs, WINDOW))
            if not window:  # all done already: no cluster needed
                stages.summary.backend = "none (nothing left to convert)"
            else:
                t0 = time.perf_counter()
                lines.enter_context(ray_lines_to(ray_log_path()))
                owned = _start_ray(ray, self.address)
                split["ray start"] = time.perf_counter() - t0
                run = _Run(ray, stages, _ActorPlan.of(ray, opt), _ModelShipment.of(ray, self.ref), self.on_message,
                           self._stop)
                while window and not interrupted:
                    interrupted = run.window(window)
                    window = [] if interrupted else list(itertools.islice(jobs, WINDOW))
                split.update(run.split)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            try:
                close_manifests(conv)
                if owned:
                    ray.shutdown()  # stops every task and actor of this run
            finally:
                lines.close()
        if not interrupted:
            for folder in stages.seen_dirs:  # temporary files of tasks retried after a worker died
                remove_partials(folder)
        stages.summary.time_split = split
        stages.tick(final=True)
        return stages.finish(interrupted)


def ray_log_path() -> Path:
    from .store import data_home

    return data_home() / "logs" / "ray-driver.log"


@contextlib.contextmanager
def ray_lines_to(log: Path):
    """Ray's C++ core writes its lines straight to the driver's stderr (file descriptor 2), whatever
    Python's logging says: a warning about actor restarts on every run with an actor pool
    (ray-project/ray#57733), for one. While Ray runs, descriptor 2 goes through a pipe: Ray's
    routine lines (``is_routine``) are appended to ``log``; everything else, Ray's other errors and
    fatal lines included, goes on to the terminal as it comes. Descriptor 2 is restored on the way
    out, whatever happened."""
    try:
        terminal = os.dup(2)
    except OSError:  # no stderr to protect
        yield
        return
    pump = None
    try:
        r, w = os.pipe()
        try:
            pump = threading.Thread(target=_pump, args=(r, terminal, log), name="ccv-ray-stderr", daemon=True)
            pump.start()
        except BaseException:
            os.close(r)
            os.close(w)
            raise
        os.dup2(w, 2)
        os.close(w)
        yield
    finally:
        os.dup2(terminal, 2)  # closes the pipe's last write end (unless a child kept it): the pump ends
        if pump is not None:
            pump.join(timeout=5)
        if pump is None or not pump.is_alive():
            os.close(terminal)  # a pump still running keeps writing to it: left open then


def is_routine(line: bytes) -> bool:
    """A line of Ray's C++ log format that is debug, info or warning, or the actor-restart warning
    (an ERROR line that every Ray Data actor pool prints, harmless here: the driver holds the
    arguments for the whole run)."""
    m = RAY_LINE.match(line)
    return bool(m) and (m.group(1) in b"DIW" or b"has constructor arguments in the object store" in line)


def _pump(r: int, terminal: int, log: Path) -> None:
    """Copies the pipe to the terminal, routine Ray lines to ``log``, until the pipe's end. A log
    that cannot be written sends its lines to the terminal; nothing ends the loop but the pipe."""
    kept = None
    pending, at_start = b"", True

    def show(data: bytes) -> None:
        try:
            while data:
                data = data[os.write(terminal, data):]
        except OSError:
            pass  # a closed terminal: keep draining the pipe so writers never block

    try:
        while True:
            try:
                chunk = os.read(r, 65536)
            except InterruptedError:
                continue
            except OSError:
                break
            pending += chunk
            while pending:
                end = _LINE_END.search(pending)  # a progress line redrawn after a carriage return ends one too
                if at_start and pending[:1] == b"[" and end is None and chunk and len(pending) < 8192:
                    break  # a line that may be Ray's: wait for its end
                cut = end.end() if end else len(pending)
                line, pending = pending[:cut], pending[cut:]
                if at_start and is_routine(line):
                    try:
                        if kept is None:
                            log.parent.mkdir(parents=True, exist_ok=True)
                            kept = open(log, "ab", buffering=0)
                        kept.write(line)
                    except OSError:
                        show(line)
                else:
                    show(line)
                at_start = end is not None
            if not chunk:
                break
    finally:
        os.close(r)
        if kept is not None:
            kept.close()


def _start_ray(ray, address: Optional[str]) -> bool:
    """Connects (or starts) Ray with its own logs and progress bars off; True when this call did."""
    if ray.is_initialized():
        owned = False
    else:
        kwargs = dict(log_to_driver=False, logging_level=logging.ERROR, configure_logging=True)
        if address in (None, "local"):
            kwargs["include_dashboard"] = False
        else:
            kwargs["address"] = address
        try:
            ray.init(**kwargs)
        except ConnectionError as e:
            raise UsageError(f"--ray {address}: cannot connect to a Ray cluster ({e})") from None
        owned = True
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # one bar: ours
    ctx.print_on_execution_start = False
    ctx.verbose_stats_logs = False
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)
    return owned


class _ActorPlan:
    """How many inference actors, with what resources."""

    def __init__(self, actors: int, resources: dict, batch_size: int, threads: int):
        self.actors, self.resources, self.batch_size, self.threads = actors, resources, batch_size, threads

    @property
    def gpu(self) -> bool:
        return "num_gpus" in self.resources

    @classmethod
    def of(cls, ray, opt: ConvertOptions) -> "_ActorPlan":
        total = ray.cluster_resources()
        gpus = int(total.get("GPU", 0))
        if gpus and opt.backend_choice.device.kind != "cpu":
            return cls(gpus, {"num_gpus": 1}, opt.batch_size or 4, 0)
        # CPU inference: one actor per node that reserves half its cores, so Ray leaves the rest to the
        # read and write tasks, but runs torch on all of them: decoding and encoding are light next to
        # the model (as in a local run)
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        per_node = min(int(n["Resources"].get("CPU", 1)) for n in nodes) if nodes else 1
        return cls(max(1, len(nodes)), {"num_cpus": max(1, per_node // 2)}, opt.batch_size or 1, per_node)


class _ModelShipment:
    """The model file's bytes, put in the object store once; each node writes them to a local file
    named by their hash (engine caches keyed by the file stay valid across runs)."""

    def __init__(self, obj, kind: str, suffix: str, sha: str):
        self.obj, self.kind, self.suffix, self.sha = obj, kind, suffix, sha

    @classmethod
    def of(cls, ray, ref: ModelRef) -> "_ModelShipment":
        data = ref.path.read_bytes()
        return cls([ray.put(data)], ref.kind, ref.path.suffix, hashlib.sha256(data).hexdigest())

    def local_ref(self, ray) -> ModelRef:
        from .atomic import atomic_write_bytes

        path = Path(tempfile.gettempdir()) / "ccv-ray-models" / f"{self.sha[:32]}{self.suffix}"
        if not path.is_file():
            atomic_write_bytes(path, ray.get(self.obj[0]))
        return ModelRef(path, self.kind)


def _worker_stages(ref: ModelRef, opt: ConvertOptions, key: str, notes: list, router=None) -> ImageStages:
    """The stage object on a worker; its messages are collected for the driver to show."""
    conv = Converter(ref, opt, on_message=lambda kind, text: notes.append(text))
    return ImageStages(conv, router, key)


def _read_row(row: dict, ref: ModelRef, opt: ConvertOptions, key: str) -> dict:
    notes: list[str] = []
    t0 = time.perf_counter()
    try:
        work = _worker_stages(ref, opt, key, notes).read(pickle.loads(row["job"]))
        payload, error = pickle.dumps(work, protocol=5), ""
    except ItemFailed as e:
        payload, error = b"", str(e)
    return {"i": row["i"], "work": payload, "error": error, "notes": "\n".join(notes),
            "read_s": time.perf_counter() - t0, "infer_s": 0.0, "backend": ""}


class _InferActor:
    """The router on one device, opened once per actor; batches regrouped by shape key."""

    def __init__(self, model: _ModelShipment, opt: ConvertOptions, key: str, threads: int, gpu: bool):
        from dataclasses import replace

        import ray

        from .backends.router import BackendRouter
        from .converter import export_artifacts

        if threads:
            import torch

            torch.set_num_threads(threads)  # Ray sets OMP_NUM_THREADS to the actor's CPUs; say it to torch too
        if gpu:
            opt = replace(opt, device="cuda")  # the actor's one GPU (Ray sets CUDA_VISIBLE_DEVICES), whatever cuda:N said
        self.notes: list[str] = []
        ref = model.local_ref(ray)
        self.router = BackendRouter(ref, opt.backend_choice, artifacts=export_artifacts(),
                                    on_note=self.notes.append).open()
        self.stages = _worker_stages(ref, opt, key, self.notes, self.router)
        self.backend = self.router.describe()

    def __call__(self, batch: dict) -> dict:
        _fault_once()
        n = len(batch["i"])
        errors, works = list(batch["error"]), [b""] * n
        infer_s = [0.0] * n
        groups: dict = {}
        for j in range(n):
            if errors[j]:
                continue
            try:
                work = self.stages.route(pickle.loads(batch["work"][j]))
            except ItemFailed as e:
                errors[j] = str(e)
                continue
            groups.setdefault(self.stages.shape_key(work), []).append((j, work))
        for members in groups.values():
            t0 = time.perf_counter()
            try:
                self.stages.infer([w for _, w in members])
            except ItemFailed as e:
                for j, _ in members:
                    errors[j] = str(e)
                continue
            share = (time.perf_counter() - t0) / len(members)
            for j, w in members:
                w.image.rgb = w.image.rgb[:0]  # encode needs the result, not the input's pixels
                works[j], infer_s[j] = pickle.dumps(w, protocol=5), share
        notes = list(batch["notes"])
        if self.notes and n:
            notes[0] = "\n".join(filter(None, [notes[0], *self.notes]))
            self.notes.clear()
        return {"i": batch["i"], "work": works, "error": errors, "notes": notes, "read_s": batch["read_s"],
                "infer_s": infer_s, "backend": [self.backend] * n}


def _write_row(row: dict, ref: ModelRef, opt: ConvertOptions, key: str) -> dict:
    notes: list[str] = []
    t0 = time.perf_counter()
    tmp, error = "", row["error"]
    if not error:
        try:
            tmp = str(_worker_stages(ref, opt, key, notes).write_temp(pickle.loads(row["work"])))
        except ItemFailed as e:
            error = str(e)
    return {"i": row["i"], "tmp": tmp, "error": error, "notes": "\n".join(filter(None, [row["notes"], *notes])),
            "read_s": row["read_s"], "infer_s": row["infer_s"], "write_s": time.perf_counter() - t0,
            "backend": row["backend"]}


def _ccv_error_in(e: BaseException) -> Optional[CcvError]:
    """The ``CcvError`` a worker raised (a missing GPU, an engine that cannot be made), out of the
    wrappers Ray puts around it, so the CLI shows its one line and exit code."""
    for _ in range(20):  # the chain is short; never loop on a cycle
        if e is None:
            return None
        inner = getattr(e, "cause", None)  # RayTaskError: the exception the worker raised
        if isinstance(inner, BaseException) and inner is not e:
            e = inner
        elif isinstance(e, CcvError):
            return e
        else:
            e = e.__cause__ or e.__context__
    return None


def _fault_once() -> None:
    """Test hook (``FAULT_ENV``): the process dies on its first batch, once per marker file, so
    the tests can show Ray restarting the actor and retrying the batch."""
    marker = os.environ.get(FAULT_ENV)
    if marker:
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.close(fd)
        os._exit(1)


class _Run:
    """Runs windows of jobs through Ray Data and commits what comes back, on the driver."""

    def __init__(self, ray, stages: ImageStages, plan: _ActorPlan, model: _ModelShipment,
                 on_message: Callable[[str, str], None], stop: threading.Event):
        self.ray, self.stages, self.plan, self.model = ray, stages, plan, model
        self.on_message, self.stop = on_message, stop
        self.split = {"read": 0.0, "infer": 0.0, "write": 0.0, "commit": 0.0}
        self._said: set[str] = set()
        self._backend = ""

    def window(self, jobs: list) -> bool:
        """Converts ``jobs``; True when stopped (Ctrl-C or ``stop``) before the end."""
        ray, st, plan = self.ray, self.stages, self.plan
        args = dict(ref=st.conv.ref, opt=st.opt, key=st.key)
        ds = ray.data.from_items([{"i": i, "job": pickle.dumps(j, protocol=5)} for i, j in enumerate(jobs)],
                                 override_num_blocks=min(len(jobs), max(len(jobs) // 10, 64)))  # ~10 files a read task
        ds = ds.map(_read_row, fn_kwargs=args)
        ds = ds.map_batches(_InferActor, batch_size=plan.batch_size, batch_format="numpy", concurrency=plan.actors,
                            fn_constructor_kwargs=dict(model=self.model, opt=st.opt, key=st.key, threads=plan.threads,
                                                          gpu=plan.gpu),
                            **plan.resources)  # actors restart and retry without limit: Ray Data's default
        ds = ds.map(_write_row, fn_kwargs=args)
        last_tick = 0.0
        try:
            for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
                for j in range(len(batch["i"])):
                    self._take({k: v[j] for k, v in batch.items()}, jobs)
                if time.perf_counter() - last_tick > 0.2:
                    last_tick = time.perf_counter()
                    st.tick()
                if self.stop.is_set():
                    return True
        except KeyboardInterrupt:
            return True
        except Exception as e:  # noqa: BLE001  (a worker's usage or environment error: its own line)
            raise _ccv_error_in(e) or e
        return False

    def _take(self, row: dict, jobs: list) -> None:
        st, stats = self.stages, self.stages.stats
        job = jobs[int(row["i"])]
        if row["backend"] and not self._backend:
            self._backend = st.summary.backend = f"{row['backend']} in {self.plan.actors} Ray actor(s)"
            self.on_message("backend", self._backend)
        for text in filter(None, str(row["notes"]).split("\n")):
            if text not in self._said:
                self._said.add(text)
                self.on_message("note", text)
        for name, stage in (("read", stats.decode), ("infer", stats.infer), ("write", stats.encode)):
            seconds = float(row[f"{name}_s"])
            if seconds:
                stage.items += 1
                stage.busy_s += seconds
                self.split[name] += seconds
        if row["error"]:
            st.fail(job, str(row["error"]))
            return
        t0 = time.perf_counter()
        try:
            st.commit(job, location(str(row["tmp"])))  # a temporary key when the output is in an object store
        except ItemFailed as e:
            st.fail(job, str(e))
        self.split["commit"] += time.perf_counter() - t0
