"""Per-layer instruction counts of ARM's CMSIS-NN kernels against tinyscope's, on the same
emulated Cortex-M4 (QEMU mps2-an386, ``-icount shift=0``, SysTick ticks x 40).

Usage:
    .venv/bin/python tools/cmsisnn_compare.py --cmsis-nn PATH [--suite build/bench-suite.json]
        [--out build/cmsisnn] [--models resnet8,dscnn] [--ops FULLY_CONNECTED,SOFTMAX]

PATH is a CMSIS-NN source tree (its ``Include/`` and ``Source/``; e.g. ``git archive`` of
v7.0.0-43). CMSIS-NN is not part of this repository and nothing is downloaded: the tool
compiles the CMSIS-NN sources the harness needs (arm-none-eabi-gcc -O2 -mcpu=cortex-m4
-mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16) into OUT/lib, links ``tools/cmsisnn/harness.c``
with the board start-up of the M4 kernel check (``firmware/host/m4check_semihost.c``,
``firmware/boards/qemu-mps2-an386/linker.ld``), then for every operator of every model in
the bench json (``build/bench-suite.json`` of ``python -m tinyscope.bench --suite``, or the
``bench.json`` of ``make bench MODEL=...``):

1. reads the operator from the model's ``.tflite`` (``tools/cmsisnn/cmsisnn_layers.py``:
   shapes, strides, padding, fused activation, zero points, scales, weights, bias) and
   computes the parameters TFLM's CMSIS-NN kernels give CMSIS-NN (multipliers and shifts
   as TFLM's QuantizeMultiplier, activation ranges, SAME padding, softmax's input
   multiplier and diff_min);
2. takes the operator's input and output on the bench's first test image from the TFLM
   interpreter (the oracle), writes them with the parameters into OUT/layers/*.bin;
3. runs the harness in QEMU on it: the bare CMSIS-NN call's instructions, and how many
   output elements differ from TFLM's (CMSIS-NN may round once where TFLM rounds twice:
   1 LSB);
4. prints and writes (OUT/compare.md, OUT/compare.json) the table: CMSIS-NN instructions,
   the bench's optimized instructions (which include the interpreter's fixed cost per
   operator, the bench's RESHAPE-alias row), that minus the fixed cost, and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HARNESS = ROOT / "tools" / "cmsisnn" / "harness.c"
STARTUP = ROOT / "firmware" / "host" / "m4check_semihost.c"  # and m4_ticks.h beside it
LINKER = ROOT / "firmware" / "boards" / "qemu-mps2-an386" / "linker.ld"
CC = "arm-none-eabi-gcc"
QEMU = "qemu-system-arm"
CPU_FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]
CMSIS_FLAGS = ["-O2", *CPU_FLAGS]  # as issue 16 measured it (no -ffreestanding: design.md 5)
HARNESS_FLAGS = ["-O2", *CPU_FLAGS, "-std=c11", "-Wall", "-Wextra", "-Werror"]
LINK_FLAGS = ["-nostartfiles", "--specs=rdimon.specs", "-Wl,--gc-sections",
              "-Wl,--no-warn-rwx-segments", "-Wl,--defsym=__ts_flash_len=0x400000",
              "-Wl,--defsym=__ts_ram_len=0x400000"]
CMSIS_DIRS = ("ConvolutionFunctions", "FullyConnectedFunctions", "PoolingFunctions",
              "SoftmaxFunctions", "BasicMathFunctions", "NNSupportFunctions")
CMSIS_EXTRA = ("arm_nntables.c", "arm_q7_to_q15_with_offset.c")
INSTR_PER_TICK = 40  # SysTick at the 25 MHz processor clock under -icount shift=0
QEMU_TIMEOUT_S = 300

# The layer descriptions (tools/cmsisnn/cmsisnn_layers.py): a sibling folder, not a package.
sys.path.insert(0, str(Path(__file__).resolve().parent / "cmsisnn"))
from cmsisnn_layers import CompareError, model_layers  # noqa: E402

# ---- building and running the harness

def cmsis_sources(cmsis: Path) -> list[Path]:
    """The int8 sources of the function groups the harness calls (the linker keeps what the
    calls reach)."""
    if not (cmsis / "Include" / "arm_nnfunctions.h").is_file():
        raise CompareError(f"{cmsis} is not a CMSIS-NN source tree (no Include/arm_nnfunctions.h); "
                           "pass --cmsis-nn the folder that holds Include/ and Source/")
    srcs = [p for d in CMSIS_DIRS for p in sorted((cmsis / "Source" / d).glob("*.c"))
            if "s8" in p.name or p.name in CMSIS_EXTRA]
    if not srcs:
        raise CompareError(f"{cmsis}/Source has no int8 kernels")
    return srcs


def _run(cmd: list[str], what: str, cwd: Path | None = None) -> str:
    try:
        res = subprocess.run(["nice", "-n", "10", *cmd], capture_output=True, text=True,
                             timeout=QEMU_TIMEOUT_S, cwd=cwd)
    except FileNotFoundError as err:
        raise CompareError(f"{what}: {cmd[0]} not found; install the toolchain "
                           "(make setup-system)") from err
    except subprocess.TimeoutExpired as err:
        raise CompareError(f"{what}: no result after {QEMU_TIMEOUT_S} s") from err
    if res.returncode != 0:
        raise CompareError(f"{what} failed (exit {res.returncode}):\n{res.stdout}{res.stderr}")
    return res.stdout


def build_harness(cmsis: Path, out: Path) -> Path:
    """OUT/lib/libcmsisnn.a (once per source and flag set) and OUT/cmsisnn-harness.elf."""
    lib_dir = out / "lib"
    lib_dir.mkdir(parents=True, exist_ok=True)
    stamp = lib_dir / "flags.txt"
    flags = " ".join(CMSIS_FLAGS) + f"\n{cmsis.resolve()}\n"
    fresh = stamp.is_file() and stamp.read_text() == flags
    objs = []
    for src in cmsis_sources(cmsis):
        obj = lib_dir / (src.stem + ".o")
        if not (fresh and obj.is_file() and obj.stat().st_mtime >= src.stat().st_mtime):
            _run([CC, *CMSIS_FLAGS, f"-I{cmsis / 'Include'}", "-c", str(src), "-o", str(obj)],
                 f"compiling {src}")
        objs.append(obj)
    stamp.write_text(flags)
    lib = lib_dir / "libcmsisnn.a"
    lib.unlink(missing_ok=True)
    _run(["arm-none-eabi-ar", "rcs", str(lib), *map(str, objs)], "archiving CMSIS-NN")
    elf = out / "cmsisnn-harness.elf"
    _run([CC, *HARNESS_FLAGS, f"-I{cmsis / 'Include'}", f"-I{STARTUP.parent}", f"-T{LINKER}",
          *LINK_FLAGS, "-o", str(elf), str(HARNESS), str(STARTUP), str(lib)],
         "linking the harness")
    return elf


RESULT = re.compile(r"cmsisnn op (\d+) status (-?\d+) ticks (\d+) elements (\d+) "
                    r"mismatches (\d+) maxdiff (\d+) buffer (-?\d+)")


def parse_result(text: str) -> dict[str, int]:
    """The harness's result line as numbers; instructions = ticks x 40."""
    m = RESULT.search(text)
    if not m:
        raise CompareError(f"the harness printed no result line:\n{text}")
    keys = ("op", "status", "ticks", "elements", "mismatches", "maxdiff", "buffer")
    r = dict(zip(keys, map(int, m.groups()), strict=True))
    r["instructions"] = r["ticks"] * INSTR_PER_TICK
    return r


def run_layer(elf: Path, layer_file: Path) -> dict[str, int]:
    """One layer file through the harness. QEMU runs in the layer file's folder and the
    harness opens it by its bare name: the semihosting command line (the kernel's path and
    the -append text) holds 255 characters."""
    cmd = [QEMU, "-M", "mps2-an386", "-display", "none", "-monitor", "none", "-serial", "none",
           "-icount", "shift=0", "-semihosting-config", "enable=on,target=native",
           "-kernel", os.path.relpath(elf, layer_file.parent),
           "-append", f"layer {layer_file.name}"]
    return parse_result(_run(cmd, f"the harness on {layer_file}", cwd=layer_file.parent))


# ---- the table

def fixed_cost(suite: dict) -> int | None:
    """The bench's cost of an operator that does no work: the cheapest RESHAPE run as an
    alias (the interpreter loop and the per-layer callback; the same firmware code for every
    model) over the suite, or None if no model has one."""
    costs = [r["instructions_opt"] for m in suite.values() for r in m["operators"]
             if r["op"] in ("RESHAPE", "SQUEEZE")]
    return min(costs) if costs else None


def compare_rows(name: str, bench: dict, results: dict[int, dict], fixed: int | None) -> list[dict]:
    """One row per operator of a model: the bench's figures joined with the harness's."""
    rows = []
    for r in bench["operators"]:
        c = results.get(r["index"])
        ours = r["instructions_opt"]
        row = {"model": name, "index": r["index"], "layer": r["layer"], "op": r["op"],
               "shape_in": r["shape"]["in"], "shape_out": r["shape"]["out"], "macs": r["macs"],
               "tinyscope": ours, "tinyscope_kernel": None if fixed is None else ours - fixed,
               "cmsis_nn": c["instructions"] if c else None,
               "mismatches": c["mismatches"] if c else None,
               "maxdiff": c["maxdiff"] if c else None,
               "elements": c["elements"] if c else None}
        row["ratio"] = round(ours / row["cmsis_nn"], 3) if row["cmsis_nn"] else None
        row["ratio_kernel"] = (round(row["tinyscope_kernel"] / row["cmsis_nn"], 3)
                               if row["cmsis_nn"] and row["tinyscope_kernel"] is not None else None)
        rows.append(row)
    return rows


def _shape(s) -> str:
    return "x".join(str(v) for v in (s or [])[1:]) or "-"


def _n(v) -> str:
    return "-" if v is None else f"{v:,}"


def _per_mac(v, macs) -> str:
    return "-" if v is None or not macs else f"{v / macs:.2f}"


def _ratio(v: float | None, mark: bool = False) -> str:
    if v is None:
        return "-"
    return f"**{v:.2f}**" if mark and v > 1.0 else f"{v:.2f}"


def _mismatch(r: dict) -> str:
    if r["mismatches"] is None:
        return "-"
    more = f" (max {r['maxdiff']})" if r["mismatches"] else ""
    return f"{r['mismatches']} / {r['elements']}{more}"


def format_table(rows: list[dict], fixed: int | None) -> str:
    """Markdown: per layer, then per model the sums over the layers CMSIS-NN ran."""
    lines = [
        "| model | # | layer | op | in -> out | MACs | CMSIS-NN | /MAC | tinyscope (bench) | "
        "/MAC | ratio | tinyscope - fixed | ratio | mismatches |",
        "|---|--:|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for r in rows:
        lines.append(" | ".join([
            f"| {r['model']}", str(r["index"]), r["layer"], r["op"],
            f"{_shape(r['shape_in'])} -> {_shape(r['shape_out'])}", _n(r["macs"] or None),
            _n(r["cmsis_nn"]), _per_mac(r["cmsis_nn"], r["macs"]), _n(r["tinyscope"]),
            _per_mac(r["tinyscope"], r["macs"]), _ratio(r["ratio"], mark=True),
            _n(r["tinyscope_kernel"]), _ratio(r["ratio_kernel"]), _mismatch(r)]) + " |")
    lines += ["", "| model | MACs | CMSIS-NN | /MAC | tinyscope (same layers) | /MAC | ratio | "
              "layers above 1.0x | mismatching elements |",
              "|---|--:|--:|--:|--:|--:|--:|---|--:|"]
    for name, s in model_sums(rows).items():
        lines.append(f"| {name} | {s['macs']:,} | {s['cmsis_nn']:,} | {s['cmsis_per_mac']:.2f} | "
                     f"{s['tinyscope']:,} | {s['tinyscope_per_mac']:.2f} | {s['ratio']:.2f} | "
                     f"{s['above'] or 'none'} | {s['mismatches']:,} |")
    lines += ["", f"fixed cost per operator in the bench's figures: {_n(fixed)} instructions "
              "(its cheapest RESHAPE alias); 'tinyscope - fixed' subtracts it."]
    return "\n".join(lines) + "\n"


def model_sums(rows: list[dict]) -> dict[str, dict]:
    """Per model: MACs, CMSIS-NN and tinyscope instructions over the layers CMSIS-NN ran."""
    out: dict[str, dict] = {}
    for r in rows:
        s = out.setdefault(r["model"], {"macs": 0, "cmsis_nn": 0, "tinyscope": 0, "above": "",
                                        "mismatches": 0})
        s["macs"] += r["macs"]
        if r["cmsis_nn"] is None:
            continue
        s["cmsis_nn"] += r["cmsis_nn"]
        s["tinyscope"] += r["tinyscope"]
        s["mismatches"] += r["mismatches"] or 0
        if r["ratio"] is not None and r["ratio"] > 1.0:
            s["above"] += (", " if s["above"] else "") + f"{r['layer']} {r['ratio']:.2f}"
    for s in out.values():
        s["cmsis_per_mac"] = s["cmsis_nn"] / s["macs"] if s["macs"] else 0.0
        s["tinyscope_per_mac"] = s["tinyscope"] / s["macs"] if s["macs"] else 0.0
        s["ratio"] = s["tinyscope"] / s["cmsis_nn"] if s["cmsis_nn"] else 0.0
    return out


# ---- the command

def _build_dir(entry: dict, suite: Path) -> Path:
    """The model's build folder as the suite json names it, or the same path under the
    json's own build folder (a checkout whose json was written elsewhere)."""
    p = Path(entry["build"])
    if (p / "manifest.json").is_file():
        return p
    parts = p.parts
    local = suite.parent.joinpath(*parts[parts.index("build") + 1:]) if "build" in parts else p
    if (local / "manifest.json").is_file():
        return local
    raise CompareError(f"{suite}: no build folder {p} (nor {local}); run "
                       "'python -m tinyscope.bench --suite --n 1' first")


def bench_models(data: dict, path: Path) -> dict[str, dict]:
    """The models of a bench json by name: a suite's (``--suite``), or a single bench's
    (``make bench MODEL=...``; named by its build folder, with its second model if any)."""
    if isinstance(data.get("models"), dict):
        return data["models"]
    if "operators" not in data or "build" not in data:
        raise CompareError(f"{path} is not a bench json (no 'models' nor 'operators'); "
                           "write one with 'python -m tinyscope.bench'")
    out = {Path(data["build"]).name: data}
    second = data.get("second_model")
    if isinstance(second, dict) and "operators" in second:
        out[Path(second["build"]).name] = second
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cmsis-nn", type=Path, required=True, help="CMSIS-NN source tree")
    ap.add_argument("--suite", type=Path, default=ROOT / "build" / "bench-suite.json",
                    help="a bench json: build/bench-suite.json or a 'make bench' bench.json")
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "cmsisnn")
    ap.add_argument("--models", default="", help="comma-separated suite names (default: all)")
    ap.add_argument("--ops", default="", help="comma-separated operators to run (default: all)")
    args = ap.parse_args(argv)
    try:
        if not args.suite.is_file():
            raise CompareError(f"{args.suite} not found; run "
                               "'python -m tinyscope.bench --suite --n 1'")
        suite = bench_models(json.loads(args.suite.read_text()), args.suite)
        wanted = [m for m in args.models.split(",") if m] or list(suite)
        ops = {o for o in args.ops.split(",") if o}
        elf = build_harness(args.cmsis_nn, args.out)
        rows: list[dict] = []
        fixed = fixed_cost(suite)
        for name in wanted:
            if name not in suite:
                raise CompareError(f"{args.suite} has no model {name!r} "
                                   f"(it has {', '.join(suite)})")
            results = {}
            for index, op, layer in model_layers(_build_dir(suite[name], args.suite)):
                if layer is None or (ops and op not in ops):
                    continue
                path = args.out / "layers" / f"{name}-{index:02d}.bin"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(layer.to_bytes())
                results[index] = run_layer(elf, path)
                print(f"{name} {index:2d} {op:18s} {results[index]}", flush=True)
            rows += [r for r in compare_rows(name, suite[name], results, fixed)
                     if not ops or r["op"] in ops]
        table = format_table(rows, fixed)
        print(table)
        (args.out / "compare.md").write_text(table)
        (args.out / "compare.json").write_text(json.dumps(
            {"cmsis_nn": str(args.cmsis_nn), "flags": CMSIS_FLAGS, "rows": rows,
             "fixed_cost": fixed, "sums": model_sums(rows)}, indent=1) + "\n")
    except CompareError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
