"""``tinyscope run``: the whole pipeline in one command (what ``make demo`` runs).

convert (skipped when the build is up to date) -> build the firmware -> flash (boot the
emulated board) -> capture -> compare -> report. The emulated board is always stopped at
the end, also on errors and Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from tinyscope.analysis import references
from tinyscope.analysis.compare import gate_exit_code, print_summary
from tinyscope.cli.formatter import HelpFormatter
from tinyscope.convert import manifest as manifest_mod
from tinyscope.convert.flow import convert
from tinyscope.data import quantized_test_inputs
from tinyscope.device import boards, capture
from tinyscope.errors import TinyscopeError
from tinyscope.report.comparison import run_compare

DEFAULT_MODEL = "models/default.keras"
DEFAULT_BUILD = "build/default"
DEFAULT_RUN = "captures/demo"


def build_is_current(model_path: Path, build_dir: Path) -> bool:
    """True when BUILD_DIR was converted from exactly these model bytes."""
    man_path = build_dir / manifest_mod.MANIFEST_NAME
    if not man_path.is_file() or not (build_dir / "model_data.cc").is_file():
        return False
    try:
        manifest = json.loads(man_path.read_text())
    except ValueError:
        return False
    return manifest.get("source_sha256") == manifest_mod.sha256(model_path.read_bytes())


def _step(name: str) -> float:
    print(f"==> {name}", flush=True)
    return time.monotonic()


def run_pipeline(args: argparse.Namespace) -> int:
    model, build, out = Path(args.model), Path(args.build), Path(args.out)
    if not model.is_file():
        raise TinyscopeError(f"model {model} not found; give a .keras file with --model")
    boards.check_board(args.board)
    board_name = boards.canonical_board(args.board)
    t0 = time.monotonic()
    if args.force or not build_is_current(model, build):
        _step(f"convert {model} -> {build}")
        convert(model, build, data=args.data or "mnist")
    else:
        print(f"==> {build} is up to date with {model} (use --force to convert again)")
    manifest = manifest_mod.load(build)

    _step(f"build firmware for {board_name}")
    elf = boards.build_firmware(build, boards.firmware_board(board_name), quiet=True)
    print(f"    {elf}")
    x, q, labels = quantized_test_inputs(manifest, args.n, args.data)
    # The desktop references need only the inputs: they run in worker processes during the
    # capture and land in OUT/references/, where compare finds them.
    src = manifest.get("source_model")
    keras_path = src if src and Path(src).is_file() else None
    refs = references.start(manifest_mod.model_bytes(build, manifest), q,
                            x if keras_path else None, keras_path, cache_dir=out)

    def capture_from(url: str) -> None:
        _step(f"capture {args.n} images (layers: {args.layers}) from {url} -> {out}")
        capture.capture(url, build, out, q, labels, args.layers,
                        progress=not args.no_progress,
                        data_source=args.data or manifest.get("data", ""))

    if board_name in boards.EMULATORS:
        machine = boards.EMULATORS[board_name].machine
        _step(f"flash: boot {elf.name} on QEMU {machine}")
        state = Path(args.state_dir)
        boards.stop(state)
        with boards.emulated_board(elf, state, machine) as board:
            capture_from(board.url)
    else:
        _step(f"flash {board_name}")
        boards.flash_real(board_name, elf)
        capture_from(boards.resolve_port(args.port))
    if isinstance(refs, references.Pending):
        refs.wait()
    _step("compare with TFLM, LiteRT and the float model")
    metrics, page = run_compare(out, out / "report", build, None, args.panels,
                                        progress=not args.no_progress)
    print()
    print_summary(metrics)
    print(f"\nreport: {page.resolve()}")
    print(f"total {time.monotonic() - t0:.0f} s")
    return gate_exit_code(metrics, args.max_lsb, args.min_top1)


def add_cli(sub) -> None:
    p = sub.add_parser(
        "run", help="the whole pipeline: convert, build, flash (QEMU), capture, compare, report",
        description="Convert MODEL (skipped when BUILD is up to date), build the firmware, boot "
        "it on the emulated Cortex-M4 (QEMU mps2-an386; or flash a real board with --board), "
        "capture N test images over its serial port, compare every streamed tensor with TFLM / "
        "LiteRT / the float model and write OUT/report/report.html. An emulator is stopped at "
        "the end.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--model", default=DEFAULT_MODEL, help="float Keras model (.keras)")
    p.add_argument("--build", default=DEFAULT_BUILD, help="build directory for convert")
    p.add_argument("--out", default=DEFAULT_RUN, help="run directory (capture + report)")
    p.add_argument("--data", default=None, help="mnist or an image folder (default: mnist)")
    p.add_argument("--n", type=int, default=100, help="number of test images")
    p.add_argument("--layers", default="all",
                   help="layers to stream: first, all, or operator indices like 0,2")
    p.add_argument("--board", default="qemu",
                   help="qemu (emulated Cortex-M4), netduinoplus2 (emulated STM32F405 running "
                   "the Nucleo image) or a real board such as nucleo-f446re")
    p.add_argument("--port", default="auto",
                   help="serial port of a real board (auto: the ST-LINK port)")
    p.add_argument("--panels", type=int, default=3, help="images with figure panels")
    p.add_argument("--force", action="store_true", help="convert even if the build is current")
    p.add_argument("--max-lsb", type=int, help="gate: max LSB device vs TFLM")
    p.add_argument("--min-top1", type=float, help="gate: min top-1 agreement device vs float")
    p.add_argument("--state-dir", default="build/qemu-run", help=argparse.SUPPRESS)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run_pipeline)
