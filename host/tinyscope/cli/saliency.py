"""``tinyscope saliency``: saliency maps for test images of a build."""

from __future__ import annotations

import argparse
from pathlib import Path

from tinyscope.cli.formatter import HelpFormatter
from tinyscope.report.saliency import run_saliency


def _cmd_saliency(args: argparse.Namespace) -> int:
    out = Path(args.out)
    result = run_saliency(args.build_dir, out, n=args.n, model_path=args.model, data=args.data)
    d = result["occlusion_int8_vs_float"]
    print(
        f"{result['n_images']} images: occlusion saliency int8 vs float: mean Spearman "
        f"{d['mean_spearman']:.3f}, mean IoU of top {d['top_k_fraction']:.0%} pixels "
        f"{d['mean_iou_top_k']:.3f}; wrote {len(result['figures'])} figures and "
        f"saliency.json to {out}"
    )
    return 0


def add_cli(sub) -> None:
    p = sub.add_parser(
        "saliency",
        help="saliency maps (gradient, SmoothGrad, Grad-CAM, occlusion float/int8) + panels",
        description=(
            "For N held-out test images: vanilla gradient, SmoothGrad and Grad-CAM on the "
            "float model, occlusion on the float and on the int8 model (LiteRT BUILTIN_REF), "
            "all explaining the pre-softmax score of the predicted class. Writes per-image "
            "panels (input | saliency | first-layer int8 feature maps), a figure comparing "
            "the methods, and saliency.json (int8-vs-float occlusion drift: Spearman rank "
            "correlation and IoU of the top-10%% pixels)."
        ),
        formatter_class=HelpFormatter,
    )
    p.add_argument("build_dir", help="a directory written by 'tinyscope convert'")
    p.add_argument("--out", required=True, help="directory for the figures and saliency.json")
    p.add_argument("--n", type=int, default=8, help="number of held-out test images")
    p.add_argument("--data", default=None, help="'mnist' or an image folder (default: convert's)")
    p.add_argument("--model", default=None, help="float .keras (default: from manifest.json)")
    p.set_defaults(func=_cmd_saliency)
