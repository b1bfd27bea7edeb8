"""``tinyscope capture``: run test images on the device, save what it streams."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tinyscope.convert import manifest as manifest_mod
from tinyscope.data import quantized_test_inputs
from tinyscope.device.boards import DEFAULT_STATE_DIR, resolve_port
from tinyscope.device.capture import MAX_IMAGE_RETRIES, capture
from tinyscope.device.link import BAUDRATE, REQUEST_TIMEOUT, RUN_TIMEOUT
from tinyscope.errors import TinyscopeError


def _cmd_capture(args: argparse.Namespace) -> int:
    prev: dict = {}
    if args.resume:
        run_path = Path(args.resume) / "run.json"
        try:
            prev = json.loads(run_path.read_text())
        except (OSError, ValueError) as err:
            raise TinyscopeError(f"--resume {args.resume}: cannot read {run_path} ({err}); give "
                                 "the RUN_DIR of an earlier 'tinyscope capture'") from err
        if prev.get("complete"):
            print(f"{args.resume} is complete ({prev.get('images')} images): nothing to do")
            return 0
    build = args.build or prev.get("build")
    out = args.resume or args.out
    if not build or not out:
        raise TinyscopeError("give --build BUILD_DIR and --out RUN_DIR (or --resume RUN_DIR)")
    layers = args.layers or prev.get("layers") or "first"
    n = args.n or prev.get("images_requested") or 100
    data = args.data or prev.get("data") or None
    manifest = manifest_mod.load(build)
    _, q, labels = quantized_test_inputs(manifest, n, data)
    url = resolve_port(args.port, args.state_dir)
    run = capture(url, build, out, q, labels, layers, progress=not args.no_progress,
                  data_source=data or manifest.get("data", ""), timeout=args.timeout,
                  retries=args.retries, resume=bool(args.resume), baudrate=args.baud)
    timing = run.get("timing", {})
    print(f"captured {run['images']} images from {run['board']} ({url}) in {run['seconds']} s "
          f"-> {out}/capture.npz, run.json")
    if run.get("retries") or run.get("bad_frames"):
        print(f"link: {run['retries']} images retried, {run['reconnects']} reconnects, "
              f"{run['bad_frames']} bad frames received, {run['device_bad_frames']} reported "
              "by the device")
    if timing:
        print(f"median ticks per inference: {timing['total_ticks_median']} "
              f"at {timing['tick_hz']} Hz")
    return 0


def add_cli(sub) -> None:
    c = sub.add_parser(
        "capture", help="run test images on the device and save the streamed int8 tensors",
        description="Handshake with the device (its model sha256 must match BUILD/manifest.json), "
        "send each test image, run it, and save RUN_DIR/capture.npz (input_<i>, "
        "t<tensor>_<i>, output_<i>, labels) and RUN_DIR/run.json; see docs/capture-format.md. "
        "Link errors (timeouts, corrupted frames, a reset or reconnected device) retry the "
        "image; complete images are always kept, and --resume RUN_DIR continues a run.",
    )
    c.add_argument("--port", default="auto",
                   help="serial port: /dev/ttyACM0, /dev/pts/N, socket://127.0.0.1:PORT or "
                   "auto (the running emulator, else the only USB serial port)")
    c.add_argument("--build", default=None, help="the model's build dir (tinyscope convert)")
    c.add_argument("--data", default=None, help="mnist or an image folder (default: the "
                   "build's dataset)")
    c.add_argument("--n", type=int, default=None, help="number of test images (default 100)")
    c.add_argument("--layers", default=None,
                   help="first (the first layer, default), all, or operator indices like 0,2,5")
    c.add_argument("--out", default=None, help="run directory to write")
    c.add_argument("--resume", metavar="RUN_DIR", default=None,
                   help="continue the interrupted capture in RUN_DIR (same build, data, layers)")
    c.add_argument("--timeout", type=float, default=REQUEST_TIMEOUT,
                   help=f"seconds to wait for the device before a request fails (default "
                   f"{REQUEST_TIMEOUT:g}; RUN waits at least {RUN_TIMEOUT:g} unless given)")
    c.add_argument("--retries", type=int, default=MAX_IMAGE_RETRIES,
                   help=f"retries per image after a link error (default {MAX_IMAGE_RETRIES})")
    c.add_argument("--baud", type=int, default=BAUDRATE,
                   help=f"UART baud rate of a real board: must match the firmware's BAUD= "
                   f"(default {BAUDRATE}; ignored by the emulator and USB CDC ports)")
    c.add_argument("--state-dir", default=str(DEFAULT_STATE_DIR), help=argparse.SUPPRESS)
    c.add_argument("--no-progress", action="store_true", help="no progress bar")
    c.set_defaults(func=_cmd_capture)
