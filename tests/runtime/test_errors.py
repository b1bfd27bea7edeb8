"""Malformed and unsupported models: clear one-line errors, non-zero exit, never a crash.
Mutations are made in place on a real model (so everything else stays valid); the fuzz-like
cases run on the ASan+UBSan build of the runner."""

from __future__ import annotations

import os
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from tinyscope.convert.quantize import quantize_keras
from tinyscope.device import link
from tinyscope.errors import TinyscopeError

from tests.runtime.helpers import ROOT, build_runner, calibration, keras_model
from tests.runtime.native_runner import FIRMWARE_DIR, run_native

ASAN_RUNNER = FIRMWARE_DIR / "build" / "host" / "tinyscope-run-asan"
SAN_ENV = {"ASAN_OPTIONS": "exitcode=99:detect_leaks=0", "UBSAN_OPTIONS": "exitcode=98"}


def _small_model(extra=None) -> bytes:
    from keras import layers

    def body(x):
        x = layers.Conv2D(4, 3, activation="relu")(x)
        if extra:
            x = extra(x)
        x = layers.Flatten()(x)
        return layers.Dense(3)(x)

    return quantize_keras(keras_model(body, (6, 6, 1), seed=3), calibration((6, 6, 1), 3))


@pytest.fixture(scope="module")
def model() -> bytes:
    build_runner()
    return _small_model()


@pytest.fixture(scope="module")
def asan_runner() -> Path:
    subprocess.run(["make", "-C", str(FIRMWARE_DIR), "-f", "host/host.mk", "sanitize"],
                   check=True, capture_output=True, timeout=600)
    return ASAN_RUNNER


def _schema():
    from tensorflow.lite.python import schema_py_generated as schema

    return schema


def _input(model: bytes) -> np.ndarray:
    return np.zeros((6, 6, 1), np.int8)


def run_raw(runner: Path, model: bytes, tmp: Path, arena: int | None = None):
    (tmp / "m.tflite").write_bytes(model)
    (tmp / "in.bin").write_bytes(bytes(36))
    cmd = [str(runner)] + (["--arena", str(arena)] if arena is not None else [])
    cmd += [str(tmp / "m.tflite"), str(tmp / "in.bin"), str(tmp / "out")]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                          env={**os.environ, **SAN_ENV})


def test_valid_model_runs(model):
    got, arena = run_native(model, _input(model))
    assert len(got) == 4 and arena > 0


def test_truncated_model_every_length(model, asan_runner, tmp_path):
    """Every prefix of the model (stepping through it) fails cleanly with exit 1."""
    lengths = sorted(set(range(0, len(model), max(1, len(model) // 150))) | {len(model) - 1})
    for n in lengths:
        proc = run_raw(asan_runner, model[:n], tmp_path)
        assert proc.returncode == 1, (n, proc.returncode, proc.stderr[-500:])
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, (n, proc.stderr)
        assert ("truncated" in lines[0] or "corrupt" in lines[0] or "not a TFLite" in lines[0]
                or "data bytes" in lines[0]), (n, lines[0])


def test_truncated_model_message(model):
    with pytest.raises(TinyscopeError, match=r"model truncated at offset \d+"):
        run_native(model[: len(model) // 2], _input(model))


def test_random_corruption_never_crashes(model, asan_runner, tmp_path):
    rng = np.random.default_rng(7)
    outcomes = {0: 0, 1: 0}
    for _ in range(150):
        buf = bytearray(model)
        for pos in rng.integers(0, len(buf), size=rng.integers(1, 6)):
            buf[pos] = int(rng.integers(0, 256))
        proc = run_raw(asan_runner, bytes(buf), tmp_path)
        assert proc.returncode in (0, 1), (proc.returncode, proc.stderr[-800:])
        assert "runtime error" not in proc.stderr and "AddressSanitizer" not in proc.stderr
        outcomes[proc.returncode] += 1
    assert outcomes[1] > 0


def _vector_pos(tab, field_offset: int) -> int:
    o = tab.Offset(field_offset)
    assert o
    return tab.Vector(o)


def test_unknown_op_code(model):
    schema = _schema()
    m = schema.Model.GetRootAs(model, 0)
    buf = bytearray(model)
    for i in range(m.OperatorCodesLength()):
        tab = m.OperatorCodes(i)._tab
        o = tab.Offset(10)  # builtin_code (int32)
        if o:
            struct.pack_into("<i", buf, tab.Pos + o, 250)
        o = tab.Offset(4)  # deprecated_builtin_code (int8)
        if o:
            buf[tab.Pos + o] = 127
    with pytest.raises(TinyscopeError, match=r"^unsupported op code 250 at operator 0$"):
        run_native(bytes(buf), _input(model))


def _gelu_model() -> bytes:
    from keras import layers

    return _small_model(lambda x: layers.Activation("gelu")(x))


def test_unsupported_op_is_named():
    # The runtime reports the builtin code (no name table on the device); the native
    # runner names it.
    gelu = _gelu_model()
    with pytest.raises(TinyscopeError, match=r"^unsupported op GELU at operator 1$"):
        run_native(gelu, _input(gelu))


def test_op_codes_are_named_on_the_host():
    from tinyscope.device.link import name_op_codes

    assert name_op_codes("TS_ERR_UNSUPPORTED: unsupported op code 28 at operator 1") == (
        "TS_ERR_UNSUPPORTED: unsupported op TANH at operator 1")
    assert name_op_codes("unsupported op code 114 at operator 10") == (
        "unsupported op QUANTIZE at operator 10")
    assert name_op_codes("unsupported op code 250 at operator 0") == (
        "unsupported op code 250 at operator 0")
    assert name_op_codes("operator 3: shapes do not match") == "operator 3: shapes do not match"


def test_stripped_mark_is_the_runtimes():
    """The host recognises a message-less error by the mark the runtime writes (one source:
    ts_runtime.h's TS_STRIPPED_MARK)."""
    header = (FIRMWARE_DIR / "runtime/include/ts_runtime.h").read_text()
    assert f'#define TS_STRIPPED_MARK "{link.STRIPPED_MARK}"' in header


def test_stripped_error_is_named_by_the_native_runner(tmp_path):
    """A firmware without message texts says where and the status; the host names the
    reason with the native runner (the runtime with its messages) on the same model."""
    gelu = tmp_path / "model_int8.tflite"
    gelu.write_bytes(_gelu_model())
    text = f"TS_ERR_UNSUPPORTED: operator 1 {link.STRIPPED_MARK}"
    assert link.explain_stripped(text, gelu) == (
        "TS_ERR_UNSUPPORTED: unsupported op GELU at operator 1")  # the runner names ops
    # a corrupt model: the place is unknown on the device, the runner has the offset
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(_gelu_model()[:200])
    assert link.explain_stripped(f"TS_ERR_BAD_MODEL: {link.STRIPPED_MARK}", cut).startswith(
        "TS_ERR_BAD_MODEL: model truncated at offset")
    # a refusal in an operator's prepare: its name and the numbers, as convert's check says
    from tests.runtime.refusal_models import tiny_logit_tflite

    tiny = tmp_path / "tiny.tflite"
    tiny.write_bytes(tiny_logit_tflite())
    named = link.explain_stripped(f"TS_ERR_UNSUPPORTED: operator 2 {link.STRIPPED_MARK}", tiny)
    assert named.startswith("TS_ERR_UNSUPPORTED: SOFTMAX operator ") and "beta" in named
    # no model at hand: where to get the text
    plain = link.explain_stripped(text)
    assert plain.startswith("TS_ERR_UNSUPPORTED: operator 1 (the firmware carries no message")
    assert "MESSAGES=1" in plain and link.STRIPPED_MARK not in plain
    # a model the runtime accepts: the device runs something else
    ok = tmp_path / "ok.tflite"
    ok.write_bytes(_small_model())
    assert "the native runtime accepts" in link.explain_stripped(text, ok)
    assert link.explain_stripped("TS_ERR_BAD_MODEL: model corrupt at offset 8", gelu) == (
        "TS_ERR_BAD_MODEL: model corrupt at offset 8")


@pytest.mark.emulator
def test_unsupported_op_is_named_through_the_device(tmp_path):
    """The firmware (built without message texts) reports where GELU stopped it in INFO; the
    host names the reason and the op."""
    from tinyscope.convert import carrays
    from tinyscope.device import boards, capture
    from tinyscope.errors import DeviceError

    model_dir = tmp_path / "model"
    model_dir.mkdir()
    gelu = _gelu_model()
    carrays.write_model(model_dir, gelu)
    (model_dir / "model_int8.tflite").write_bytes(gelu)  # as tinyscope convert writes it
    elf = boards.build_firmware(model_dir, quiet=True, out_dir=tmp_path / "fw")
    with boards.emulated_board(elf, tmp_path / "qemu") as b:
        port = link.open_port(b.url)
        try:
            info = link.Device(port).hello()
        finally:
            port.close()
    assert info.model_status == 2
    assert info.model_error == f"TS_ERR_UNSUPPORTED: operator 1 {link.STRIPPED_MARK}"
    manifest = {"model_sha256": info.model_sha256, "input": {"shape": [1, 6, 6, 1]}}
    with pytest.raises(DeviceError, match=r"cannot run the model: TS_ERR_UNSUPPORTED: "
                                          r"unsupported op GELU at operator 1$"):
        capture.check_info(info, manifest, model_dir)


def test_schema_version_checked(model):
    schema = _schema()
    tab = schema.Model.GetRootAs(model, 0)._tab
    buf = bytearray(model)
    struct.pack_into("<I", buf, tab.Pos + tab.Offset(4), 4)
    with pytest.raises(TinyscopeError, match="model schema version 4, expected 3"):
        run_native(bytes(buf), _input(model))


def test_shape_that_overflows(model):
    schema = _schema()
    sg = schema.Model.GetRootAs(model, 0).Subgraphs(0)
    buf = bytearray(model)
    victim = sg.Outputs(0)  # the model output: an activation tensor
    pos = _vector_pos(sg.Tensors(victim)._tab, 4)
    n = sg.Tensors(victim).ShapeLength()
    for k in range(n):
        struct.pack_into("<i", buf, pos + 4 * k, 65536)
    with pytest.raises(TinyscopeError, match=rf"tensor {victim} shape overflows"):
        run_native(bytes(buf), _input(model))


def test_arena_too_small(model):
    """An arena that holds the runtime's records but not the activations: the exact need.
    A tiny arena: an upper bound that works when retried."""
    _, need = run_native(model, _input(model))
    with pytest.raises(TinyscopeError, match=rf"arena of {need - 1} bytes too small: need "
                       rf"{need}$"):
        run_native(model, _input(model), arena_bytes=need - 1)
    with pytest.raises(TinyscopeError, match=r"arena of 64 bytes too small: need (\d+)$") as e:
        run_native(model, _input(model), arena_bytes=64)
    bound = int(str(e.value).rsplit(" ", 1)[1])
    assert bound >= need
    got, arena = run_native(model, _input(model), arena_bytes=bound)
    assert arena == need and len(got) == 4
    got, arena = run_native(model, _input(model), arena_bytes=need)
    assert arena == need and len(got) == 4


def test_not_a_model_and_bad_input(model, tmp_path):
    with pytest.raises(TinyscopeError, match="not a TFLite model"):
        run_native(b"\x10\x00\x00\x00ABCD" + bytes(64), _input(model))
    with pytest.raises(TinyscopeError, match="needs 36"):
        run_native(model, np.zeros(35, np.int8))
    assert (ROOT / "firmware").is_dir()
