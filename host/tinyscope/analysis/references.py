"""Desktop references run out of process, computed once per set of inputs and cached.

The int8 references (TFLM, LiteRT ``BUILTIN_REF``, LiteRT default/XNNPACK) are C++ libraries
that ``abort()`` on a model their kernels cannot prepare (a softmax whose
``beta * input_scale`` is out of range). Run in our process, that takes tinyscope down with
the user's capture unreported. Here each runs in a worker process:

* one worker runs the int8 references one after the other, writing each result to its own
  ``.npz`` before starting the next; if it dies by a signal, the reference it had started is
  recorded as failed (:class:`ReferenceError`, with our runtime's diagnosis when its prepare
  refuses the model too) and a new worker runs the ones left;
* the float Keras model runs in a second worker at the same time (TensorFlow can abort too).

:func:`compute` returns a :class:`References`: the stacked tensors of every reference that
ran (``{tensor_index: (N, ...)}``) and, for each that did not, why. With ``cache_dir`` the
results are stored there (``references/``) keyed by the model, the inputs and the float
model, so compare, drift and saliency reuse them instead of running the references again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinyscope.analysis import reference_cache
from tinyscope.analysis.reference_cache import CACHE_DIRNAME, TensorDict
from tinyscope.errors import TinyscopeError

# Reference key -> how reports name it.
LABELS: dict[str, str] = {
    "tflm": "TFLM (tflite-micro Python interpreter)",
    "litert_ref": "LiteRT BUILTIN_REF",
    "xnnpack": "LiteRT default (XNNPACK)",
    "float": "float Keras model",
}
# Worker jobs that are not one of the report's references: verify.py's TFLM digests.
JOB_LABELS: dict[str, str] = {**LABELS, "tflm_digests": "TFLM (digests for a verified capture)"}
INT8_REFERENCES = ("tflm", "litert_ref", "xnnpack")
WORKER_TIMEOUT_S = 3600.0
FAULT_ENV = "TINYSCOPE_REFERENCE_FAULT"


class ReferenceError(TinyscopeError):  # noqa: A001 (the name says what failed)
    """A desktop reference could not compute the model (its process died or it refused)."""

    def __init__(self, reference: str, message: str, *, op_index: int | None = None,
                 op: str | None = None, runtime_refuses: bool | None = None) -> None:
        super().__init__(message)
        self.reference = reference
        self.op_index = op_index
        self.op = op
        self.runtime_refuses = runtime_refuses


@dataclass
class References:
    """Stacked tensors of the references that ran; why the others did not."""

    tensors: dict[str, TensorDict] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    cached: bool = False

    def get(self, kind: str) -> TensorDict | None:
        return self.tensors.get(kind)

    def require(self, kind: str) -> TensorDict:
        if kind not in self.tensors:
            raise ReferenceError(kind, self.missing.get(kind, f"{LABELS[kind]} was not run"))
        return self.tensors[kind]

    def status(self, every: bool = False) -> dict[str, dict]:
        """Each reference asked for (all with ``every``): label, whether it ran, why not."""
        return {kind: {"label": label, "available": kind in self.tensors,
                       **({"missing": self.missing[kind]} if kind in self.missing else {})}
                for kind, label in LABELS.items()
                if every or kind in self.tensors or kind in self.missing}

    def wait(self) -> References:
        """Themselves: references found in the cache are already complete (see :func:`start`)."""
        return self


# --------------------------------------------------------------------------- the worker


def _compute_one(kind: str, job: dict, work: Path) -> TensorDict:
    from tinyscope.analysis import floatref, reference

    if kind in job.get("fault", []):  # fault injection for the tests: die as a C abort does
        os.abort()

    model = (work / "model.tflite").read_bytes()
    if kind == "float":
        x = np.load(work / "x.npy")
        keras_model = _keras_model(job["keras"])
        return floatref.float_tensors(keras_model, model, x)
    q = np.load(work / "q.npy")
    if kind == "tflm_digests":
        from tinyscope.analysis import digests

        return digests.worker_digests(model, q, job["out_tensors"])
    if kind == "tflm":
        return floatref.stack(reference.tflm_tensors(model, q))
    resolver = {"litert_ref": "ref", "xnnpack": "default"}[kind]
    return floatref.stack(reference.litert_tensors(model, q, resolver=resolver))


_KERAS_MODELS: dict[tuple[str, int, int], object] = {}


def _keras_model(path: str):
    """The Keras model at ``path``, loaded once per worker (while the file is unchanged)."""
    from tinyscope.convert.model import load_model

    st = Path(path).stat()
    key = (str(Path(path).resolve()), st.st_mtime_ns, st.st_size)
    if key not in _KERAS_MODELS:
        _KERAS_MODELS.clear()
        _KERAS_MODELS[key] = load_model(path)
    return _KERAS_MODELS[key]


def worker_main(work_dir: str) -> int:
    """Run the references listed in ``WORK/job.json``; one ``KIND.npz`` or ``KIND.error``
    each, ``KIND.started`` written first (so a death names the reference it happened in)."""
    work = Path(work_dir)
    job = json.loads((work / "job.json").read_text())
    for kind in job["kinds"]:
        if (work / f"{kind}.npz").exists() or (work / f"{kind}.error").exists():
            continue
        (work / f"{kind}.started").write_text(str(time.monotonic()))
        t0 = time.monotonic()
        try:
            tensors = _compute_one(kind, job, work)
        except Exception as err:  # a Python-level failure is reported, not a crash
            (work / f"{kind}.error").write_text(f"{type(err).__name__}: {err}")
            continue
        reference_cache.save_npz(work / f"{kind}.npz", tensors)
        (work / f"{kind}.seconds").write_text(f"{time.monotonic() - t0:.3f}")
    return 0


# --------------------------------------------------------------------------- the parent


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def _diagnose(kind: str, model: bytes, how: str) -> ReferenceError:
    """Why a reference died: our runtime's prepare names the operator when it refuses too."""
    from tinyscope.convert import check

    label = JOB_LABELS[kind]
    try:
        refusal = check.check_model(model)
    except TinyscopeError as err:
        return ReferenceError(kind, f"{label} {how}; the tinyscope runtime could not be asked "
                              f"why ({err})")
    if refusal is None:
        return ReferenceError(
            kind, f"{label} {how}; the tinyscope runtime accepts this model, so this is a "
            "fault of the reference (its column is left out)", runtime_refuses=False)
    where = (f" preparing {refusal.op} op {refusal.op_index}"
             if refusal.op_index is not None else "")
    text = f"{label} {how}{where}: {refusal.reason}"
    if refusal.detail:
        text += f" ({refusal.detail})"
    text += "; the device refuses this model too"
    if refusal.advice:
        text += f". What to do: {refusal.advice}"
    return ReferenceError(kind, text, op_index=refusal.op_index, op=refusal.op,
                          runtime_refuses=True)


def _worker_env() -> dict[str, str]:
    pkg_root = str(Path(__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": pkg_root + (os.pathsep + path if path else ""),
            "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}


class _Worker:
    """A worker process that runs jobs (work directories named on its stdin) one at a time,
    kept for the next job; a new one is started when it has died."""

    def __init__(self, name: str) -> None:
        import threading

        self.name = name
        self.proc: subprocess.Popen | None = None
        self.lock = threading.Lock()

    def run(self, work: Path) -> int:
        """0 when the worker finished the job; else its exit status (negative: a signal)."""
        import select

        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tinyscope.analysis.references", "--serve"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                env=_worker_env(),
            )
        proc = self.proc
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(f"{work}\n".encode())
            proc.stdin.flush()
            ready, _, _ = select.select([proc.stdout], [], [], WORKER_TIMEOUT_S)
            line = proc.stdout.readline() if ready else b""
        except BrokenPipeError:
            line = b""
        except BaseException:
            self.close(kill=True)
            raise
        if line.strip() == b"done":
            return 0
        if not ready:
            self.close(kill=True)
            return -signal.SIGKILL
        code = proc.wait()
        self.proc = None
        return code if code != 0 else 1

    def close(self, kill: bool = False) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if kill:
            proc.kill()
        elif proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


_WORKERS: dict[str, _Worker] = {}


def _worker(name: str) -> _Worker:
    if not _WORKERS:
        import atexit

        atexit.register(shutdown_workers)
    return _WORKERS.setdefault(name, _Worker(name))


def shutdown_workers() -> None:
    """Stop the worker processes (they also stop when this process ends)."""
    for w in list(_WORKERS.values()):
        w.close()


def serve() -> int:
    """The worker loop: run each job directory read from stdin, answer "done" on the
    original stdout; the job's own output (C libraries print) goes to its worker.log."""
    proto = os.fdopen(os.dup(1), "w")
    for line in sys.stdin:
        work = Path(line.strip())
        log = os.open(work / "worker.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        worker_main(str(work))
        sys.stdout.flush()
        sys.stderr.flush()
        proto.write("done\n")
        proto.flush()
    return 0


def _run_group(work: Path, kinds: list[str], model: bytes, result: References,
               on_done: Callable[[str], None], worker: _Worker) -> None:
    """Run ``kinds`` in ``worker`` until each has a result or a reason."""
    left = list(kinds)
    tries = 0
    log_path = work / "worker.log"
    while left and tries <= len(kinds):
        tries += 1
        (work / "job.json").write_text(json.dumps({**_job(work), "kinds": left}))
        with worker.lock:
            code = worker.run(work)
        for kind in list(left):
            npz, err = work / f"{kind}.npz", work / f"{kind}.error"
            if npz.exists():
                result.tensors[kind] = reference_cache.load_npz(npz)
                sec = work / f"{kind}.seconds"
                if sec.exists():
                    result.seconds[kind] = float(sec.read_text())
            elif err.exists():
                result.missing[kind] = f"{JOB_LABELS[kind]} failed: {err.read_text().strip()}"
            elif (work / f"{kind}.started").exists() and code != 0:
                how = (f"aborted ({_signal_name(code)})" if code < 0
                       else f"exited with status {code}")
                tail = []
                if log_path.exists():
                    tail = log_path.read_text(errors="replace").strip().splitlines()[-1:]
                diag = _diagnose(kind, model, how)
                msg = str(diag)
                if tail and not diag.runtime_refuses and "Traceback" not in tail[0]:
                    msg += f" [last output: {tail[0][:200]}]"
                result.missing[kind] = msg
            else:
                continue  # not reached by this worker: the next one runs it
            left.remove(kind)
            on_done(kind)
        if code == 0 and left:  # a finished job leaves nothing pending
            for kind in left:
                result.missing[kind] = f"{JOB_LABELS[kind]} produced no result"
            left = []


def run_job(kind: str, tflite_bytes: bytes, q: np.ndarray, work: Path, job: dict,
            worker: str) -> TensorDict:
    """One job of ``kind`` (e.g. ``tflm_digests`` of a batch) in the worker process named
    ``worker`` (started once, kept for the next job), in the directory ``work``; a worker
    that dies or fails raises :class:`ReferenceError` with the diagnosis, never takes this
    process down."""
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "model.tflite").is_file():
        (work / "model.tflite").write_bytes(bytes(tflite_bytes))
    np.save(work / "q.npy", q)
    for old in work.glob(f"{kind}.*"):  # the previous batch's result in this directory
        old.unlink()
    (work / "job.json").write_text(json.dumps({**job, "kinds": [kind],
                                               "fault": _injected_faults()}))
    result = References()
    _run_group(work, [kind], tflite_bytes, result, lambda _kind: None, _worker(worker))
    if kind not in result.tensors:
        raise ReferenceError(kind, result.missing.get(kind, f"{JOB_LABELS[kind]} did not run"))
    return result.tensors[kind]


def _job(work: Path) -> dict:
    path = work / "job.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _injected_faults() -> list[str]:
    """References to kill on purpose (``TINYSCOPE_REFERENCE_FAULT=tflm,float``; tests only)."""
    return [k for k in os.environ.get(FAULT_ENV, "").split(",") if k]


class Pending:
    """References being computed in worker processes; :meth:`wait` returns them."""

    def __init__(self, model: bytes, q: np.ndarray, x: np.ndarray | None, keras: str | None,
                 wanted: list[str], key: str, cache: Path | None,
                 on_done: Callable[[str], None]) -> None:
        import threading

        self.result = References()
        self._key, self._cache, self._done = key, cache, on_done
        self._errors: list[BaseException] = []
        self._tmp = tempfile.TemporaryDirectory(prefix="tinyscope-refs-")
        root = Path(self._tmp.name)
        self._threads = []
        for n, group in enumerate([[k for k in wanted if k != "float"],
                                   [k for k in wanted if k == "float"]]):
            if not group:
                continue
            work = root / f"w{n}"
            work.mkdir()
            (work / "model.tflite").write_bytes(bytes(model))
            np.save(work / "q.npy", q)
            if x is not None and "float" in group:
                np.save(work / "x.npy", np.asarray(x, np.float32))
            (work / "job.json").write_text(json.dumps({"kinds": group, "keras": keras,
                                                       "fault": _injected_faults()}))
            name = "float" if group == ["float"] else "int8"
            t = threading.Thread(target=self._run, args=(work, group, model, _worker(name)),
                                 daemon=True)
            self._threads.append(t)
            t.start()

    def _run(self, work: Path, group: list[str], model: bytes, worker: _Worker) -> None:
        try:
            _run_group(work, group, model, self.result, self._done, worker)
        except BaseException as err:  # re-raised by wait() in the caller's thread
            self._errors.append(err)

    def status(self, every: bool = False) -> dict[str, dict]:
        """Each reference asked for (all with ``every``): label, whether it ran, why not."""
        return {kind: {"label": label, "available": kind in self.tensors,
                       **({"missing": self.missing[kind]} if kind in self.missing else {})}
                for kind, label in LABELS.items()
                if every or kind in self.tensors or kind in self.missing}

    def wait(self) -> References:
        for t in self._threads:
            t.join()
        self._tmp.cleanup()
        if self._errors:
            raise self._errors[0]
        if self._cache is not None:
            reference_cache.store(self._cache, self._key, self.result.tensors,
                                  self.result.missing, self.result.seconds, LABELS)
        return self.result


def start(
    model: bytes,
    q: np.ndarray,
    x: np.ndarray | None = None,
    keras_path: str | os.PathLike | None = None,
    *,
    kinds: tuple[str, ...] = (*INT8_REFERENCES, "float"),
    cache_dir: str | os.PathLike | None = None,
    on_done: Callable[[str], None] | None = None,
) -> Pending | References:
    """Start every reference in ``kinds`` on the int8 inputs ``q`` (and the float inputs
    ``x`` for the float model at ``keras_path``), each out of process, and return at once
    (a cache hit returns the :class:`References` themselves). ``.wait()`` on either gives the
    :class:`References`; a reference that cannot run is in their ``missing``."""
    q = np.asarray(q)
    if q.dtype not in (np.int8, np.float32):  # float32: a model with a float32 input edge
        raise TinyscopeError(f"the int8 references need int8 or float32 inputs, got {q.dtype}")
    wanted = [k for k in kinds if k in LABELS]
    keras = str(keras_path) if keras_path else None
    if "float" in wanted and (x is None or keras is None):
        wanted.remove("float")
    done = on_done or (lambda kind: None)
    with_float = "float" in wanted
    key = reference_cache.key(model, q, x if with_float else None, keras if with_float else None)
    cache = Path(cache_dir) / CACHE_DIRNAME if cache_dir is not None else None
    if cache is not None:
        hit = reference_cache.load(cache, key, wanted)
        if hit is not None:
            for kind in wanted:
                done(kind)
            return References(tensors=hit[0], missing=hit[1], cached=True)
    return Pending(model, q, x, keras, wanted, key, cache, done)


def compute(model: bytes, q: np.ndarray, *args: Any, **kwargs: Any) -> References:
    """:func:`start` (same arguments), then wait: the :class:`References`."""
    return start(model, q, *args, **kwargs).wait()


if __name__ == "__main__":
    sys.exit(serve() if sys.argv[1:] == ["--serve"] else worker_main(sys.argv[1]))
