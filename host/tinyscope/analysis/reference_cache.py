"""The on-disk cache of the desktop references of a capture (RUN_DIR/references/): one
``<kind>.npz`` of tensors per reference and ``references.json`` (the key of model + inputs,
the references that are missing and why, their labels and seconds). Written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from tinyscope.fsutil import atomic_write_text

CACHE_DIRNAME = "references"
CACHE_FORMAT = 1
TensorDict = dict[int, np.ndarray]


def save_npz(path: Path, tensors: TensorDict) -> None:
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **{str(k): v for k, v in tensors.items()})
    os.replace(tmp, path)


def load_npz(path: Path) -> TensorDict:
    with np.load(path) as data:
        return {int(k): data[k] for k in data.files}


def key(model: bytes, q: np.ndarray, x: np.ndarray | None, keras_path: str | None) -> str:
    h = hashlib.sha256()
    h.update(f"format {CACHE_FORMAT}\n".encode())
    h.update(hashlib.sha256(model).digest())
    h.update(str(q.shape).encode() + np.ascontiguousarray(q).tobytes())
    if x is not None:
        h.update(str(x.shape).encode() + np.ascontiguousarray(x, np.float32).tobytes())
    if keras_path:
        h.update(hashlib.sha256(Path(keras_path).read_bytes()).digest())
    return h.hexdigest()


def load(cache: Path, key: str,
         kinds: list[str]) -> tuple[dict[str, TensorDict], dict[str, str]] | None:
    """The cached tensors and missing reasons of ``kinds`` for ``key``; None if the cache
    does not hold all of them (or holds another model's or inputs')."""
    index = cache / "references.json"
    try:
        meta = json.loads(index.read_text())
    except (OSError, ValueError):
        return None
    if meta.get("key") != key:
        return None
    tensors: dict[str, TensorDict] = {}
    missing: dict[str, str] = {}
    for kind in kinds:
        if kind in meta.get("missing", {}):
            missing[kind] = meta["missing"][kind]
        elif (cache / f"{kind}.npz").is_file():
            try:
                tensors[kind] = load_npz(cache / f"{kind}.npz")
            except (OSError, ValueError):
                return None
        else:
            return None
    return tensors, missing


def store(cache: Path, key: str, tensors: dict[str, TensorDict], missing_now: dict[str, str],
          seconds: dict, labels: dict[str, str]) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    for kind, kind_tensors in tensors.items():
        save_npz(cache / f"{kind}.npz", kind_tensors)
    old = {}
    try:
        old = json.loads((cache / "references.json").read_text())
    except (OSError, ValueError):
        pass
    missing = {**(old.get("missing", {}) if old.get("key") == key else {}), **missing_now}
    for kind in tensors:
        missing.pop(kind, None)
    atomic_write_text(cache / "references.json", json.dumps({
        "key": key, "format": CACHE_FORMAT, "missing": missing,
        "labels": {k: labels[k] for k in (*tensors, *missing)},
        "seconds": seconds,
    }, indent=2) + "\n")
