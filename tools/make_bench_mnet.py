"""The MobileNet-class model of `make bench-capture`: MobileNetV1 alpha 0.25, 96x96x3, 2 classes
(the MLPerf Tiny person-detection architecture), random weights (classifier without softmax),
converted to int8 by `tinyscope convert` with a small folder of smooth random images.

Usage: python tools/make_bench_mnet.py --out build/bench-mnet (skips work already done).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def make_images(root: Path, per_class: int = 30) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            base = rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)
            Image.fromarray(base).resize((96, 96), Image.BILINEAR).save(root / c / f"{i}.png")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("build/bench-mnet"))
    args = ap.parse_args()
    if (args.out / "model_data.cc").is_file():
        print(f"{args.out} exists")
        return 0
    import keras
    from tinyscope.convert.flow import convert

    data = args.out.with_name(args.out.name + "-data")
    make_images(data)
    inp = keras.Input((96, 96, 3), batch_size=1)
    model = keras.applications.MobileNet(input_tensor=inp, alpha=0.25, weights=None, classes=2,
                                         classifier_activation=None)
    keras_path = args.out.with_suffix(".keras")
    keras_path.parent.mkdir(parents=True, exist_ok=True)
    model.save(keras_path)
    convert(keras_path, args.out, data=str(data), calib=20, num_inputs=10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
