"""The default model on the native runtime: every tensor equal to TFLM and LiteRT
BUILTIN_REF over 100 MNIST test digits; arena figures next to TFLM's."""

from __future__ import annotations

import numpy as np
import pytest
from tinyscope import data
from tinyscope.analysis import reference
from tinyscope.convert import graph, model
from tinyscope.convert.quantize import quantize_keras

from tests.runtime.helpers import ROOT, build_runner, first_mismatch, tflm_arena
from tests.runtime.native_runner import run_native, run_native_full

N_IMAGES = 100


@pytest.fixture(scope="module")
def default_int8(tmp_path_factory):
    build_runner()
    net = model.load_model(ROOT / "models" / "default.keras")
    train, test = data.split(data.load_mnist())
    tfl = quantize_keras(net, train.x[:200])
    _, tensors, inputs, _ = graph.graph(tfl)
    inp = tensors[inputs[0]]
    q = data.quantize(test.x[:N_IMAGES], inp.scales[0], inp.zero_points[0])
    path = tmp_path_factory.mktemp("default") / "default.tflite"
    path.write_bytes(tfl)
    return tfl, path, q


def test_every_tensor_equals_tflm_and_litert_ref(default_int8, capsys):
    """0 mismatches with TFLM on every tensor of 100 images. LiteRT BUILTIN_REF: our values
    differ from it exactly where TFLM differs from it (on this model LiteRT's int8
    FULLY_CONNECTED/SOFTMAX is off by 1 LSB from TFLM on a few elements), element for
    element; everywhere else they are equal."""
    tfl, path, q = default_int8
    tflm = reference.tflm_tensors(tfl, q)
    litert = reference.litert_tensors(tfl, q, resolver="ref")
    wanted = graph.activation_indices(tfl)
    assert len(wanted) == 8  # input + 7 operator outputs
    compared = litert_diffs = 0
    for i in range(len(q)):
        got, _ = run_native(path, q[i])
        assert sorted(got) == sorted(wanted)
        assert first_mismatch(got, tflm[i]) is None, f"image {i} vs TFLM"
        for k, lit in litert[i].items():
            ours_vs_litert = got[k].reshape(lit.shape) != lit
            tflm_vs_litert = tflm[i][k] != lit
            np.testing.assert_array_equal(ours_vs_litert, tflm_vs_litert,
                                          err_msg=f"image {i} tensor {k} vs LiteRT")
            litert_diffs += int(ours_vs_litert.sum())
        compared += sum(v.size for v in got.values())
    assert compared > 100 * 8000
    with capsys.disabled():
        print(f"\n[default] {compared} elements equal to TFLM over {len(q)} images; LiteRT "
              f"BUILTIN_REF differs from TFLM (and us) in {litert_diffs} elements")


def test_runner_metadata_matches_the_model(default_int8):
    tfl, path, q = default_int8
    _, infos, arena = run_native_full(path, q[0])
    _, tensors, _, _ = graph.graph(tfl)
    ops, _, _, _ = graph.graph(tfl)
    assert [i.op for i in infos] == [None] + [op.name for op in ops]
    for info in infos:
        ref = tensors[info.index]
        assert info.shape == ref.shape
        assert info.name == ref.name
        assert info.dtype == "int8"
        np.testing.assert_array_equal(np.float32(info.scale), np.float32(ref.scales))
        assert info.zero_point == ref.zero_points
    assert 0 < arena < 64 * 1024


def test_arena_next_to_tflm(default_int8, capsys):
    _, path, q = default_int8
    _, arena = run_native(path, q[0])
    tflm = tflm_arena(path)
    with capsys.disabled():
        print(f"\n[arena] default model: tinyscope {arena} B, TFLM total {tflm['total']} B "
              f"(head {tflm['head']}, tail {tflm['tail']})")
    # The runtime's memory goal (docs/bench.md): records + activations within 0.8x TFLM's total.
    assert arena <= 0.8 * tflm["total"], f"arena {arena} B > 0.8 x TFLM's {tflm['total']} B"
    # The activations alone can never be smaller than the largest live pair (conv1 in/out).
    assert arena >= 784 + 26 * 26 * 8
