"""The TFLM digest cache of verified captures (analysis/digest_cache.py): a hit is exactly
what TFLM computes, and anything that could change a digest misses: one input byte, one
model byte, the TFLM version; a corrupt or foreign entry is removed and recomputed."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from tinyscope.analysis import digest_cache, references, verify
from tinyscope.analysis.digests import reference_digests
from tinyscope.convert import manifest as manifest_mod
from tinyscope.data import quantized_test_inputs

N = 4


@pytest.fixture(scope="module")
def model(build_dir):
    man = manifest_mod.load(build_dir)
    _, q, _ = quantized_test_inputs(man, N, None)
    outs = [int(op["outputs"][0]) for op in man["operators"]]
    return manifest_mod.model_bytes(build_dir, man), np.asarray(q, np.int8), outs


def _digests(model_bytes, q, outs, cache_root) -> tuple[np.ndarray, set[int]]:
    refs = verify.ReferenceDigests(model_bytes, q, outs, batch=2, cache_root=cache_root)
    try:
        return np.stack([refs.get(i) for i in range(len(q))]), set(refs.cached)
    finally:
        refs.close()


def test_a_hit_equals_tflm_and_runs_no_tflm(model, tmp_path, monkeypatch):
    model_bytes, q, outs = model
    want = reference_digests(model_bytes, q, outs)
    got, hits = _digests(model_bytes, q, outs, tmp_path)
    assert hits == set() and np.array_equal(got, want)
    # TFLM would abort now: a second run that asked the worker for anything would fail
    monkeypatch.setenv(references.FAULT_ENV, "tflm_digests")
    got, hits = _digests(model_bytes, q, outs, tmp_path)
    assert hits == set(range(N)) and np.array_equal(got, want)


def test_one_changed_input_byte_misses_and_is_computed(model, tmp_path):
    model_bytes, q, outs = model
    _digests(model_bytes, q, outs, tmp_path)
    q2 = q.copy()
    q2[1].flat[100] ^= 1
    got, hits = _digests(model_bytes, q2, outs, tmp_path)
    assert hits == {0, 2, 3}
    assert np.array_equal(got, reference_digests(model_bytes, q2, outs))
    assert not np.array_equal(got[1], reference_digests(model_bytes, q[1:2], outs)[0])
    # the same bytes as float32 (a float-input model's inputs) are another input
    assert digest_cache.input_keys(q[:1].astype(np.float32)) != digest_cache.input_keys(q[:1])


def test_one_changed_model_byte_or_tflm_version_misses(model, tmp_path, monkeypatch):
    model_bytes, q, outs = model
    keys = digest_cache.input_keys(q)
    digest_cache.DigestCache(tmp_path, model_bytes, outs).store(keys, np.ones((N, len(outs))))
    assert len(digest_cache.DigestCache(tmp_path, model_bytes, outs).lookup(keys)) == N
    changed = bytearray(model_bytes)
    changed[len(changed) // 2] ^= 1
    assert digest_cache.DigestCache(tmp_path, bytes(changed), outs).lookup(keys) == {}
    assert digest_cache.DigestCache(tmp_path, model_bytes, outs[:-1]).lookup(keys) == {}
    monkeypatch.setattr(digest_cache, "_tflm_version", lambda: "another")
    assert digest_cache.DigestCache(tmp_path, model_bytes, outs).lookup(keys) == {}


def test_a_corrupt_or_foreign_entry_is_removed_never_trusted(model, tmp_path):
    model_bytes, q, outs = model
    keys = digest_cache.input_keys(q)
    rows = np.arange(N * len(outs), dtype=np.uint32).reshape(N, -1)
    cache = digest_cache.DigestCache(tmp_path, model_bytes, outs)
    cache.store(keys, rows)
    (entry,) = cache.dir.glob("*.npz")
    good = entry.read_bytes()
    for where in (len(good) // 2, len(good) - 30, 10):  # data, zip directory, header
        bad = bytearray(good)
        bad[where] ^= 0x40
        entry.write_bytes(bytes(bad))
        fresh = digest_cache.DigestCache(tmp_path, model_bytes, outs)
        hits = fresh.lookup(keys)
        assert hits == {} or all(np.array_equal(hits[i], rows[i]) for i in hits), where
        if not hits:
            assert fresh.rejected == 1 and not entry.exists()
    entry.write_bytes(good[: len(good) // 2])  # truncated
    fresh = digest_cache.DigestCache(tmp_path, model_bytes, outs)
    assert fresh.lookup(keys) == {} and fresh.rejected == 1 and not entry.exists()
    # an entry whose digests were changed, its checksum left as it was
    entry.write_bytes(good)
    with np.load(entry) as z:
        fields = {k: z[k] for k in z.files}
    fields["digests"] = fields["digests"] + np.uint32(1)
    np.savez(entry, **fields)
    assert digest_cache.DigestCache(tmp_path, model_bytes, outs).lookup(keys) == {}
    # another model's entry copied into this model's folder
    other = digest_cache.DigestCache(tmp_path / "other", model_bytes + b"\0", outs)
    other.store(keys, rows)
    cache.dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(next(other.dir.glob("*.npz")), cache.dir / "foreign.npz")
    fresh = digest_cache.DigestCache(tmp_path, model_bytes, outs)
    assert fresh.lookup(keys) == {} and fresh.rejected == 1


def test_the_default_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(digest_cache.ENV, str(tmp_path / "a"))
    assert digest_cache.default_root() == tmp_path / "a"
    monkeypatch.delenv(digest_cache.ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert digest_cache.default_root() == tmp_path / "xdg" / "tinyscope"


def test_the_cli_says_how_many_digests_came_from_the_cache():
    from tinyscope.cli.capture import cache_line

    run = {"images": 300, "verify": {"digest_cache": "/c/tflm-digests/ab",
                                     "digests_from_cache": 280}}
    assert cache_line(run).startswith("TFLM digests: 280 of 300 images from the cache")
    run["verify"].update(digest_cache=None, digests_from_cache=0)
    assert cache_line(run) == "TFLM digests: computed for all 300 images (no cache)"
