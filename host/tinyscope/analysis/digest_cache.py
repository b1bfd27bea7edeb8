"""A cache of TFLM's per-image, per-operator digests (what a verified capture compares the
device's DIGEST frames with, analysis/verify.py), kept between runs: re-verifying the same
inputs against the same model after a firmware change (new kernels, new compiler flags: CI
on every firmware commit) does not run TFLM again.

A hit must be as trustworthy as a recomputation, so everything that could change a digest is
in the key: the model's bytes (sha256), the TFLM package version, the digest algorithm
(its multiplier and a fingerprint: the digests of a fixed test vector, so that any change to
``protocol.tensor_digests`` starts a new cache), the operator outputs digested, the cache
format, and each input's bytes, dtype and shape (sha256). Layout: ``ROOT/tflm-digests/
<context>/<entry>.npz``, one entry per computed batch, written atomically (concurrent runs
and boards only ever add whole files). Each entry repeats its context and carries a sha256 of
everything in it; an entry that is corrupt, truncated or from another context is removed
and its images computed again, never trusted.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

from tinyscope.device import protocol as proto

FORMAT = 1
ENV = "TINYSCOPE_CACHE_DIR"  # the cache root (default: $XDG_CACHE_HOME/tinyscope)
SUBDIR = "tflm-digests"
KEY_BYTES = 32  # sha256 of one input


def default_root() -> Path:
    """``$TINYSCOPE_CACHE_DIR``, else ``$XDG_CACHE_HOME/tinyscope``, else
    ``~/.cache/tinyscope``."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tinyscope"


def _tflm_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("tflite-micro")
    except metadata.PackageNotFoundError:
        return "unknown"


def _algorithm() -> str:
    """The digest algorithm, named by its multiplier and by what it computes for a fixed
    vector (any change to protocol.tensor_digests changes this string)."""
    probe = np.arange(2 * 37, dtype=np.uint8).reshape(2, 37)
    fingerprint = ",".join(f"{int(d):08x}" for d in proto.tensor_digests(probe))
    return f"multiplier {proto.DIGEST_MULTIPLIER:#010x} fingerprint {fingerprint}"


def input_keys(inputs: np.ndarray) -> list[bytes]:
    """One sha256 per input: its dtype, shape and bytes (what TFLM is given)."""
    keys = []
    for x in np.asarray(inputs):
        h = hashlib.sha256(f"{x.dtype.str} {x.shape}\n".encode())
        h.update(np.ascontiguousarray(x).tobytes())
        keys.append(h.digest())
    return keys


class DigestCache:
    """The cached TFLM digests of one model (``tflite_bytes``) and operator outputs."""

    def __init__(self, root: str | Path, tflite_bytes: bytes, out_tensors: list[int]) -> None:
        self.num_ops = len(out_tensors)
        self.context = (f"tinyscope tflm digests format {FORMAT}\n"
                        f"model sha256 {hashlib.sha256(tflite_bytes).hexdigest()}\n"
                        f"tflm {_tflm_version()}\ndigest {_algorithm()}\n"
                        f"out_tensors {','.join(str(int(t)) for t in out_tensors)}\n").encode()
        self.dir = Path(root) / SUBDIR / hashlib.sha256(self.context).hexdigest()[:32]
        self.rejected = 0  # entries found corrupt or foreign (removed)

    def _check(self, keys: np.ndarray, digests: np.ndarray) -> bytes:
        h = hashlib.sha256(self.context)
        h.update(np.ascontiguousarray(keys, np.uint8).tobytes())
        h.update(np.ascontiguousarray(digests, "<u4").tobytes())
        return h.digest()

    def _read(self, path: Path) -> tuple[np.ndarray, np.ndarray] | None:
        """An entry's (keys, digests) if it is whole and of this context, else None."""
        try:
            with np.load(path, allow_pickle=False) as z:
                context, keys, digests, check = (z["context"], z["keys"], z["digests"],
                                                 z["check"])
        except Exception:  # noqa: BLE001 (any unreadable entry is only a miss)
            return None
        if (context.tobytes() != self.context or keys.dtype != np.uint8
                or keys.ndim != 2 or keys.shape[1] != KEY_BYTES or digests.dtype != "<u4"
                or digests.shape != (len(keys), self.num_ops)
                or check.tobytes() != self._check(keys, digests)):
            return None
        return keys, digests

    def lookup(self, keys: list[bytes]) -> dict[int, np.ndarray]:
        """``{i: digests}`` for each of ``keys`` (input_keys) that the cache holds."""
        wanted: dict[bytes, list[int]] = {}
        for i, k in enumerate(keys):
            wanted.setdefault(k, []).append(i)
        hits: dict[int, np.ndarray] = {}
        for path in sorted(self.dir.glob("*.npz")) if self.dir.is_dir() else []:
            entry = self._read(path)
            if entry is None:
                self.rejected += 1
                with contextlib.suppress(OSError):
                    path.unlink()
                continue
            for key, row in zip(entry[0], entry[1], strict=True):
                for i in wanted.get(key.tobytes(), []):
                    hits[i] = row.astype(np.uint32)
        return hits

    def store(self, keys: list[bytes], digests: np.ndarray) -> None:
        """Add one entry (best effort: a cache that cannot be written is only a miss
        next time)."""
        if not keys:
            return
        k = np.frombuffer(b"".join(keys), np.uint8).reshape(len(keys), KEY_BYTES)
        d = np.ascontiguousarray(digests, "<u4").reshape(len(keys), self.num_ops)
        check = self._check(k, d)
        with contextlib.suppress(OSError):
            self.dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".part", dir=self.dir)
            try:
                with os.fdopen(fd, "wb") as f:
                    np.savez(f, context=np.frombuffer(self.context, np.uint8), keys=k,
                             digests=d, check=np.frombuffer(check, np.uint8))
                os.replace(tmp, self.dir / f"{check.hex()[:32]}.npz")
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
