"""``make bench``: reference vs optimized kernels on the emulated Cortex-M4, side by side.

Builds the firmware twice for one model (``TS_KERNELS=ref`` and ``TS_KERNELS=opt``), runs
both in QEMU (``-icount shift=0``: one SysTick tick = 40 executed instructions, the same on
every run) on the same test images with every layer streamed, checks that both firmwares
streamed identical tensors (bit-exactness of the real M4 instructions), and reports per
operator and in total: MACs, instructions (ref, opt), instructions per MAC and speed-up;
plus the arena (ours vs TFLM's ``print_allocations``), the runtime ``.text`` at -Os for the
Cortex-M4 (without message texts, as the firmware builds it), serial payload efficiency and
capture throughput. Writes ``build/bench.json``.

Instruction counts are ticks x the board's ``instructions_per_tick`` (INFO), so each
operator's count is exact to one tick (40 instructions on the emulated board).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
from pathlib import Path

import numpy as np

from tinyscope.bench_paths import depthwise_path, options_path
from tinyscope.errors import MismatchError, TinyscopeError

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE_DIR = ROOT / "firmware"
KERNEL_SETS = ("ref", "opt")
BUILD_TIMEOUT = 600.0


def build_firmware(model_dir: Path, kernels: str, out: Path) -> Path:
    """The QEMU firmware for ``model_dir`` with one kernel set; returns the ELF."""
    cmd = ["make", "--no-print-directory", "-C", str(FIRMWARE_DIR), "BOARD=qemu",
           f"MODEL_DIR={model_dir.resolve()}", f"TS_KERNELS={kernels}", f"OUT={out.resolve()}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    if proc.returncode != 0:
        raise TinyscopeError(f"firmware build (TS_KERNELS={kernels}) failed:\n"
                             f"{proc.stdout}{proc.stderr}")
    return out / "firmware.elf"


def runtime_text_bytes(kernels: str = "opt") -> dict[str, int]:
    """The runtime's Cortex-M4 code size at -Os (``make -f host/host.mk cm4``)."""
    proc = subprocess.run(
        ["make", "--no-print-directory", "-C", str(FIRMWARE_DIR), "-f", "host/host.mk", "cm4",
         f"TS_KERNELS={kernels}"], capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    if proc.returncode != 0:
        raise TinyscopeError(f"cm4 runtime build failed:\n{proc.stdout}{proc.stderr}")
    out: dict[str, int] = {}
    for key, pattern in (("linked", r"linked runtime \.text (\d+)"),
                         ("objects", r"cm4 runtime \.text (\d+)")):
        m = re.search(pattern, proc.stdout)
        if m:
            out[key] = int(m.group(1))
    if "objects" not in out:
        raise TinyscopeError(f"cm4 runtime build printed no .text size:\n{proc.stdout}")
    return out


def tables_flash_bytes(elf: Path) -> int:
    """Bytes of the model's per-channel requantization tables the firmware keeps in flash
    (``g_model_tables``, firmware/Makefile's OUT/model_tables.c): the arena is planned without
    them, so they are the flash the arena figure costs."""
    out = subprocess.run(["arm-none-eabi-nm", "-S", str(elf)], capture_output=True, text=True,
                         check=True).stdout
    return next((int(f[1], 16) for f in (line.split() for line in out.splitlines())
                 if len(f) == 4 and f[3] == "g_model_tables"), 0)


def run_on_qemu(elf: Path, build_dir: Path, out_dir: Path, q: np.ndarray,
                labels: np.ndarray) -> tuple[dict, dict[str, np.ndarray]]:
    """Capture every layer of ``q`` on QEMU running ``elf``; (run.json, capture arrays)."""
    from tinyscope.device import boards, capture

    with boards.emulated_board(elf, out_dir / "qemu") as board:
        run = capture.capture(board.url, build_dir, out_dir, q, labels, layers="all",
                              progress=False, data_source="bench")
    with np.load(out_dir / "capture.npz") as z:
        arrays = {k: z[k] for k in z.files}
    return run, arrays


STREAMED = re.compile(r"^(t\d+|output)_\d+$")  # capture.npz arrays the device streamed


def check_identical(ref: dict[str, np.ndarray], opt: dict[str, np.ndarray]) -> int:
    """Raise MismatchError unless both captures streamed the same tensors; returns bytes
    compared. (Timing arrays differ by design and are not compared.)"""
    ref = {k: v for k, v in ref.items() if STREAMED.match(k)}
    opt = {k: v for k, v in opt.items() if STREAMED.match(k)}
    if not ref:
        raise MismatchError("the reference firmware streamed no tensors")
    if sorted(ref) != sorted(opt):
        raise MismatchError(f"ref and opt firmwares streamed different tensors: "
                            f"{sorted(set(ref) ^ set(opt))}")
    compared = 0
    bad = []
    for key in sorted(ref):
        a, b = ref[key], opt[key]
        if a.shape != b.shape or not np.array_equal(a, b):
            n = int(np.sum(a != b)) if a.shape == b.shape else -1
            bad.append(f"{key}: {n} elements differ" if n >= 0 else f"{key}: shapes differ")
        compared += a.nbytes
    if bad:
        raise MismatchError("optimized kernels are NOT bit-exact with the reference kernels on "
                            "the emulated Cortex-M4: " + "; ".join(bad[:10]))
    return compared


def payload_efficiency(run: dict, arrays: dict[str, np.ndarray]) -> dict[str, float | int]:
    """Tensor bytes / wire bytes of the TENSOR frames that carried them for image 0.

    The frames are re-encoded and chunked with protocol.py (the wire format's single
    definition, ``tensor_chunks`` chunks as firmware/app/main.c send_tensor does): the same
    bytes as on the wire.
    """
    from tinyscope.device import protocol as proto

    payload = wire = frames = 0
    for meta in run["tensors"]:
        data = arrays[f"t{meta['tensor_index']}_0"].tobytes()
        dtype = next(k for k, v in proto.DTYPES.items() if v.name == meta["dtype"])
        for chunk in proto.tensor_chunks(meta["op_index"], meta["builtin_op"],
                                     meta["tensor_index"], dtype, tuple(meta["shape"]),
                                     tuple(meta["scales"]), tuple(meta["zero_points"]),
                                     meta["quantized_dimension"], data):
            wire += len(proto.Frame(proto.FrameType.TENSOR, 1, chunk.encode()).encode())
            frames += 1
        payload += len(data)
    return {"payload_bytes": payload, "wire_bytes": wire, "frames": frames,
            "efficiency": round(payload / wire, 4) if wire else 0.0}


def instructions_per_tick(run: dict) -> int:
    """Instructions per TIMING tick, as the device stated it in INFO (run.json's timing)."""
    per_tick = run.get("timing", {}).get("instructions_per_tick")
    if not per_tick:
        raise TinyscopeError(f"the board {run.get('board')!r} does not count instructions "
                             "(INFO tick_unit): bench needs the emulated board")
    return int(per_tick)


def kernel_path(op: dict, shapes: dict[int, list[int]]) -> str:
    """Which optimized-kernel path an operator takes, from its shapes, as the kernels'
    headers (firmware/runtime/src/kernels/cm4/*.c) state their conditions (the manifest has
    no dilation or activation: a dilated or clamped layer takes the plain loop the header
    names); "ref" for operators that run the reference kernel in both firmwares."""
    name = op["op"]
    if name == "CONV_2D":
        f = shapes.get(op["inputs"][1], [])
        if len(f) != 4:
            return "fast: im2col + SMLAD routine"
        if f[1:] == [3, 3, 1]:
            return "fast: depthwise planes routine (1 input channel; im2col if stride_w != 1)"
        i, o = shapes.get(op["inputs"][0], []), shapes.get(op.get("outputs", [-1])[0], [])
        if f[1:3] == [1, 1] and f[3] % 4 == 0 and 12 + f[3] + 3 * f[3] // 2 <= 1536 and (
                len(i) == len(o) == 4 and i[1:3] == o[1:3]):  # conv_pointwise.c's condition
            return "fast: pointwise routine (SMLAD, weights sign-extended per tile)" + (
                "; per pixel (ts_cm4_pw8) if fused ReLU" if f[3] == 8 and f[0] % 4 == 0 else "")
        # conv.c's choice: the whole field if 3 np words of im2col fit and a weight block of
        # the shared buffer holds enough channels, else chunked over the field
        np_ = f[1] * (f[2] * f[3] // 2) + f[2] * f[3] % 2 * ((f[1] + 1) // 2)  # + odd singles
        rec = 12 + 2 * np_
        block = 0 if 3 * np_ > 768 else 2 * ((1536 - ((3 * np_ + 1) & ~1)) // rec)
        block = min(block, 64, f[0])
        cb = min(16, f[0] + f[0] % 2)
        wide = block == 0 or block < min(cb, 8)
        return "fast: im2col + SMLAD routine" + (", field chunked" if wide else "")
    if name == "DEPTHWISE_CONV_2D":
        f = shapes.get(op["inputs"][1], [])
        if len(f) == 4 and f[1] == 3 and f[2] == 3:
            return "fast: 3x3 routine (planes or NHWC)"
        return depthwise_path(shapes.get(op["inputs"][0], []), f)
    if name in ("FULLY_CONNECTED", "MAX_POOL_2D", "MEAN", "ADD"):
        return "fast: cm4 kernel"
    if name == "SOFTMAX":  # kernels/cm4/softmax.c: each exp once (the reference: twice)
        return "fast: cm4 kernel (exps kept per row)"
    if name == "AVERAGE_POOL_2D":
        o = shapes.get(op["outputs"][0], [])
        if len(o) == 4 and o[1] == o[2] == 1 and o[3] % 4 == 0:
            return "fast: cm4 kernel (global pool)"
    return "ref"


def op_rows(manifest: dict, runs: dict[str, dict], opts: dict | None = None) -> list[dict]:
    from tinyscope.convert.manifest import op_label

    ticks = {k: runs[k]["timing"]["per_op_ticks_median"] for k in KERNEL_SETS}
    per_tick = instructions_per_tick(runs["opt"])
    shapes = {t["index"]: t["shape"] for t in manifest["tensors"]}
    rows = []
    for op in manifest["operators"]:
        i = op["index"]
        ref_i = ticks["ref"][i] * per_tick
        opt_i = ticks["opt"][i] * per_tick
        macs = int(op.get("macs", 0))
        rows.append({
            "index": i, "op": op["op"], "layer": op_label(op),
            "shape": {"in": shapes.get(op["inputs"][0]) if op.get("inputs") else None,
                      "out": shapes.get(op["outputs"][0]) if op.get("outputs") else None},
            "kernel_path": options_path(op, (opts or {}).get(i, {}), shapes)
            or kernel_path(op, shapes), "macs": macs,
            "instructions_ref": ref_i, "instructions_opt": opt_i,
            "instructions_per_mac_ref": round(ref_i / macs, 3) if macs else None,
            "instructions_per_mac_opt": round(opt_i / macs, 3) if macs else None,
            "speedup": round(ref_i / opt_i, 2) if opt_i else None,
        })
    return rows


GOALS = (  # (key, description, limit, "max" | "min") from issue 5
    ("conv_in_c_ge_8", "CONV_2D with >= 8 input channels, instr/MAC", 1.3, "max"),
    ("conv_in_c_1", "CONV_2D with 1 input channel, instr/MAC", 4.0, "max"),
    ("depthwise", "DEPTHWISE_CONV_2D, instr/MAC", 3.0, "max"),
    ("fully_connected", "FULLY_CONNECTED, instr/MAC", 1.5, "max"),
    ("model", "whole model, instr/MAC", 2.0, "max"),
    ("speedup", "speed-up vs reference kernels", 8.0, "min"),
    ("arena_ratio", "arena / TFLM arena", 0.6, "max"),  # issue 16 (was 0.8)
    ("text_bytes", "runtime .text bytes", 32 * 1024, "max"),  # issue 16, all 28 ops (was 24 KB)
    ("payload_efficiency", "payload efficiency", 0.97, "min"),
)


def goal_values(manifest: dict, rows: list[dict], b: dict) -> dict[str, float | None]:
    shapes = {t["index"]: t["shape"] for t in manifest["tensors"]}

    def per_mac(pred) -> float | None:
        sel = [r for r, op in zip(rows, manifest["operators"], strict=True) if pred(op)]
        macs = sum(r["macs"] for r in sel)
        return round(sum(r["instructions_opt"] for r in sel) / macs, 3) if macs else None

    def in_c(op) -> int:
        return int(shapes[op["inputs"][0]][-1])

    tf = b.get("tflm_arena_bytes")
    return {
        "conv_in_c_ge_8": per_mac(lambda op: op["op"] == "CONV_2D" and in_c(op) >= 8),
        "conv_in_c_1": per_mac(lambda op: op["op"] == "CONV_2D" and in_c(op) == 1),
        "depthwise": per_mac(lambda op: op["op"] == "DEPTHWISE_CONV_2D"),
        "fully_connected": per_mac(lambda op: op["op"] == "FULLY_CONNECTED"),
        "model": b["instructions_per_mac"],
        "speedup": b["speedup_vs_reference"],
        "arena_ratio": round(b["arena_bytes"] / tf, 3) if tf else None,
        "text_bytes": b["text_bytes"],
        "payload_efficiency": b["payload_efficiency"],
    }


def format_table(b: dict) -> str:
    lines = [f"{'op':>3} {'operator':<18} {'layer':<10} {'MACs':>9} {'instr ref':>11} "
             f"{'instr opt':>10} {'ref/MAC':>8} {'opt/MAC':>8} {'speed-up':>8}  kernel path"]

    def f(v, fmt):
        return "-" if v is None else format(v, fmt)

    for r in b["operators"]:
        lines.append(f"{r['index']:>3} {r['op']:<18} {r['layer'][:10]:<10} {r['macs']:>9,} "
                     f"{r['instructions_ref']:>11,} {r['instructions_opt']:>10,} "
                     f"{f(r['instructions_per_mac_ref'], '8.2f'):>8} "
                     f"{f(r['instructions_per_mac_opt'], '8.2f'):>8} "
                     f"{f(r['speedup'], '7.2f') + 'x':>8}  {r.get('kernel_path', '')}")
    t = b["total"]
    lines.append(f"{'':>3} {'total':<18} {'':<10} {t['macs']:>9,} {t['instructions_ref']:>11,} "
                 f"{t['instructions_opt']:>10,} {t['instructions_per_mac_ref']:>8.2f} "
                 f"{b['instructions_per_mac']:>8.2f} {b['speedup_vs_reference']:>7.2f}x")
    lines += ["slower than the reference kernel: " + "; ".join(slower)] if (slower := [
        f"op {r['index']} {r['op']} {r['layer']} ({r['instructions_opt']:,} vs "
        f"{r['instructions_ref']:,} instructions, {r.get('kernel_path', '')})"
        for r in b["operators"] if r["instructions_opt"] > r["instructions_ref"]]) else []
    a, tf = b["arena_bytes"], b["tflm_arena_bytes"]
    tf_head, tf_tail = b.get("tflm_arena_head_bytes"), b.get("tflm_arena_tail_bytes")
    tables = b.get("tables_flash_bytes")
    lines += [
        "",
        f"bit-exact: ref and opt firmwares streamed identical tensors "
        f"({b['bit_exact']['images']} images, {b['bit_exact']['bytes_compared']:,} bytes)",
        f"arena: ours {a:,} B vs TFLM {tf:,} B total"
        + (f" (head {tf_head:,} B planned tensors, tail {tf_tail:,} B persistent)"
           if tf_head and tf_tail else "")
        + (f" -> {a / tf:.3f}x" if tf else "")
        + (f"; per-channel tables in flash, not in the arena: {tables:,} B" if tables else ""),
        f"runtime .text (Cortex-M4, -Os, messages stripped as the firmware, linked): "
        f"{b['text_bytes']:,} B"
        + (f" (all objects incl. both kernel sets: {b['text_bytes_objects']:,} B)"
           if b.get("text_bytes_objects") else ""),
        f"payload efficiency: {b['payload_efficiency']:.4f} "
        f"({b['payload']['payload_bytes']:,} tensor bytes in {b['payload']['wire_bytes']:,} "
        f"wire bytes, {b['payload']['frames']} TENSOR frames per image)",
        f"capture throughput (opt, all layers streamed): {b['capture']['images_per_s']:.1f} "
        f"images/s, {b['capture']['wire_bytes_per_s'] / 1000:.1f} KB/s on the wire",
        "",
        "goals (issue 5):",
    ]
    for g in b["goals"]:
        state = "n/a (no such operator)" if g["value"] is None else (
            "met" if g["met"] else "NOT met")
        lines.append(f"  {g['description']:<46} {g['kind']} {g['limit']:<6} "
                     f"{'-' if g['value'] is None else g['value']!s:>8}  {state}"
                     + (f" (on {Path(g['source']).parent.name})" if g.get("source") else ""))
    return "\n".join(lines)


def bench(model: Path, build_dir: Path, n: int, data: str | None = None) -> dict:
    from tinyscope import bench_models
    from tinyscope.convert import flow
    from tinyscope.convert import graph as graph_mod
    from tinyscope.convert import manifest as manifest_mod
    from tinyscope.data import quantized_test_inputs

    if not (build_dir / "manifest.json").is_file() or not (build_dir / "model_data.cc").is_file():
        data = data or bench_models.default_inputs(model, build_dir)
        if data:
            flow.convert(model, build_dir, data=data)
        else:
            flow.convert(model, build_dir)
    manifest = manifest_mod.load(build_dir)
    _, q, labels = quantized_test_inputs(manifest, n)
    work = build_dir / "bench"
    runs: dict[str, dict] = {}
    arrays: dict[str, dict[str, np.ndarray]] = {}
    elfs = {k: build_firmware(build_dir, k, work / f"fw-{k}") for k in KERNEL_SETS}
    for k, elf in elfs.items():
        runs[k], arrays[k] = run_on_qemu(elf, build_dir, work / f"capture-{k}", q, labels)
        if not runs[k].get("timing"):
            raise TinyscopeError(f"the {k} firmware sent no TIMING frames")
    compared = check_identical(arrays["ref"], arrays["opt"])
    model_ops = graph_mod.graph(manifest_mod.model_bytes(build_dir, manifest))[0]
    rows = op_rows(manifest, runs, {o.index: o.options for o in model_ops})
    macs = sum(r["macs"] for r in rows)
    tot_ref = sum(r["instructions_ref"] for r in rows)
    tot_opt = sum(r["instructions_opt"] for r in rows)
    tflm = manifest_mod.tflm_arena(build_dir / manifest["model_file"]) or {}
    text = runtime_text_bytes("opt")
    pay = payload_efficiency(runs["opt"], arrays["opt"])
    secs = runs["opt"]["seconds"]
    result = {
        "model": str(model), "build": str(build_dir), "images": len(q),
        "instr_per_tick": instructions_per_tick(runs["opt"]),
        "instructions_per_mac": round(tot_opt / macs, 3),
        "speedup_vs_reference": round(tot_ref / tot_opt, 2),
        "arena_bytes": runs["opt"]["arena_used"],
        "tflm_arena_bytes": tflm.get("total"),
        "tflm_arena_head_bytes": tflm.get("head"),
        "tflm_arena_tail_bytes": tflm.get("tail"),
        "tables_flash_bytes": tables_flash_bytes(elfs["opt"]),
        "text_bytes": text.get("linked", text["objects"]),
        "text_bytes_objects": text["objects"],
        "payload_efficiency": pay["efficiency"],
        "payload": pay,
        "capture": {"seconds": secs, "images": runs["opt"]["images"],
                    "images_per_s": round(runs["opt"]["images"] / secs, 2),
                    "wire_bytes_per_s": round(pay["wire_bytes"] * runs["opt"]["images"] / secs)},
        "bit_exact": {"images": len(q), "bytes_compared": compared, "identical": True},
        "total": {"macs": macs, "instructions_ref": tot_ref, "instructions_opt": tot_opt,
                  "instructions_per_mac_ref": round(tot_ref / macs, 3)},
        "operators": rows,
    }
    values = goal_values(manifest, rows, result)
    result["goals"] = [
        {"key": k, "description": d, "limit": lim, "kind": kind, "value": values[k],
         "met": None if values[k] is None else
         (values[k] <= lim if kind == "max" else values[k] >= lim)}
        for k, d, lim, kind in GOALS
    ]
    return result


def merge_goals(main: dict, second: dict) -> None:
    """Goals are judged on the main model; one it cannot measure (no such operator) takes
    the second model's figure, marked with where it comes from."""
    by_key = {g["key"]: g for g in second["goals"]}
    for g in main["goals"]:
        if g["value"] is None and by_key[g["key"]]["value"] is not None:
            g.update(value=by_key[g["key"]]["value"], met=by_key[g["key"]]["met"],
                     source=second["model"])


# CMSIS-NN v7.0.0-43 whole-model instr/MAC on the same QEMU board (bare kernel calls, every
# layer bit-exact with TFLM), measured per layer by tools/cmsisnn_compare.py with a CMSIS-NN
# checkout that is not part of this repository (docs/bench.md "How we compare"). The issue's
# quoted figures agree (3.22, 2.39, 2.90; 2.19 for the autoencoder with per-tensor FCs, whose
# per-channel layers CMSIS-NN runs in 2.24).
CMSIS_NN_MEASURED = {"default": 6.17, "mobilenet": 3.22, "resnet8": 2.39, "dscnn": 2.89,
                     "autoencoder": 2.24}
SUITE_GOALS = {"mobilenet": 1.2, "resnet8": 1.3, "dscnn": 1.2, "default": 1.5}


def suite(n: int) -> dict:
    """The default model and the four MLPerf Tiny twins (bench_models), one bench each."""
    from tinyscope import bench_models

    work = ROOT / "build/bench-suite"
    v = f"v{bench_models.TWINS_VERSION}"
    out: dict = {"models": {}}
    out["models"]["default"] = bench(ROOT / "models/default.keras", ROOT / "build/default", n)
    for name in bench_models.TWINS:
        out["models"][name] = bench(bench_models.twin_model(name, work),
                                    work / f"build-{name}-{v}", n,
                                    data=str(bench_models.twin_inputs(name, work)))
    return out


def format_suite(s: dict) -> str:
    lines = [f"{'model':<12} {'MACs':>11} {'ref/MAC':>8} {'opt/MAC':>8} {'goal':>5} "
             f"{'CMSIS-NN*':>9} {'opt/CMSIS':>9} {'arena':>8} {'TFLM':>8} {'ratio':>6} "
             f"{'tables':>7} "
             f"{'worst layer (opt/MAC)':<34}"]
    for name, b in s["models"].items():
        t = b["total"]
        cm = CMSIS_NN_MEASURED.get(name)
        tf = b["tflm_arena_bytes"]
        worst = max((r for r in b["operators"] if r["macs"]),
                    key=lambda r: r["instructions_per_mac_opt"], default=None)
        w = (f"{worst['op']} {worst['layer'][:12]} {worst['instructions_per_mac_opt']:.2f}"
             if worst else "-")
        goal = SUITE_GOALS.get(name)
        lines.append(
            f"{name:<12} {t['macs']:>11,} {t['instructions_per_mac_ref']:>8.2f} "
            f"{b['instructions_per_mac']:>8.2f} {'-' if goal is None else goal:>5} "
            f"{'-' if cm is None else cm:>9} "
            f"{'-' if cm is None else format(b['instructions_per_mac'] / cm, '.2f'):>9} "
            f"{b['arena_bytes']:>8,} {tf or 0:>8,} "
            f"{format(b['arena_bytes'] / tf, '.3f') if tf else '-':>6} "
            f"{b.get('tables_flash_bytes', 0):>7,} {w:<34}")
    any_b = next(iter(s["models"].values()))
    lines += ["", "* CMSIS-NN v7.0.0-43, same QEMU board, bare kernel calls, measured with "
              "tools/cmsisnn_compare.py --cmsis-nn PATH (per layer: build/cmsisnn/compare.md)",
              "every model: ref and opt firmwares streamed identical tensors (bit-exact)",
              "arena: the device's own plan (INFO arena_used); tables: the per-channel "
              "requantization tables, kept in flash beside the model instead of the arena",
              f"runtime .text (Cortex-M4, -Os, messages stripped as the firmware, linked): "
              f"{any_b['text_bytes']:,} B"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tinyscope.bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=ROOT / "models/default.keras")
    ap.add_argument("--build", type=Path, default=ROOT / "build/default")
    ap.add_argument("--out", type=Path, default=ROOT / "build/bench.json")
    ap.add_argument("--n", type=int, default=10, help="test images (default 10)")
    ap.add_argument("--data", help="inputs for --model, as convert --data (default: mnist "
                    "for 28x28x1, else seeded uniform inputs of the model's shape)")
    ap.add_argument("--second", choices=("dwsep", "none"), default="dwsep",
                    help="also bench the depthwise-separable model "
                    "(bench_models.dwsep_model), written to "
                    "build/bench-dwsep/, for the operators the main model lacks "
                    "(default dwsep)")
    ap.add_argument("--suite", action="store_true",
                    help="bench the default model and the four MLPerf Tiny twins "
                    "(tinyscope.bench_models); writes build/bench-suite.json")
    args = ap.parse_args(argv)
    if args.suite:
        try:
            res = suite(args.n)
        except TinyscopeError as err:
            print(f"bench: error: {err}")
            return 1
        path = ROOT / "build/bench-suite.json"
        path.write_text(json.dumps(res, indent=2) + "\n")
        print(format_suite(res))
        print(f"-> {path}")
        return 0
    try:
        result = bench(args.model, args.build, args.n, data=args.data)
        second = None
        if args.second == "dwsep":
            from tinyscope import bench_models

            work = ROOT / "build/bench-dwsep"
            v = f"v{bench_models.DWSEP_VERSION}"
            second = bench(bench_models.dwsep_model(work / f"model-{v}.keras"),
                           work / f"build-{v}", args.n)
            merge_goals(result, second)
            result["second_model"] = second
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    except TinyscopeError as err:
        print(f"bench: error: {err}")
        return 1
    print(format_table(result))
    if second is not None:
        print(f"\nsecond model: {second['model']} (its goals for information)")
        print(format_table(second))
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
