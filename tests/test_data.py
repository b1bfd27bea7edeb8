"""Datasets: bundled MNIST, Keras-convention image folders, splits, input quantization."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from tinyscope import data
from tinyscope.errors import TinyscopeError


@pytest.fixture(scope="module")
def mnist():
    return data.load_mnist()


def test_mnist_is_5000_digits_in_unit_range(mnist):
    assert mnist.x.shape == (5000, 28, 28, 1) and mnist.x.dtype == np.float32
    assert mnist.x.min() == 0.0 and mnist.x.max() == 1.0
    assert np.bincount(mnist.y).tolist() == [500] * 10


def test_split_is_stratified_seeded_and_disjoint(mnist):
    train, test = data.split(mnist, 0.2, seed=3)
    train2, test2 = data.split(mnist, 0.2, seed=3)
    assert len(train) == 4000 and len(test) == 1000
    assert np.bincount(test.y).tolist() == [100] * 10
    assert np.array_equal(test.x, test2.x) and np.array_equal(train.y, train2.y)
    # the first 10 test images are one per class (firmware's built-in inputs)
    assert sorted(test.y[:10].tolist()) == list(range(10))
    # no image is in both splits
    train_keys = {hash(im.tobytes()) for im in train.x}
    assert sum(hash(im.tobytes()) in train_keys for im in test.x) < 5  # MNIST has few dupes
    _, other = data.split(mnist, 0.2, seed=4)
    assert not np.array_equal(other.y, test.y) or not np.array_equal(other.x, test.x)


def _write_folder(root, classes, per_class=3, size=(40, 30), mode="RGB"):
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            arr = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
            Image.fromarray(arr).convert(mode).save(root / c / f"{i}.png")


def test_folder_dataset_resizes_and_labels_by_sorted_folder(tmp_path):
    _write_folder(tmp_path, ["stand", "sit", "down"])
    ds = data.load(tmp_path, (28, 28), 1)
    assert ds.class_names == ("down", "sit", "stand")
    assert ds.x.shape == (9, 28, 28, 1) and 0 <= ds.x.min() and ds.x.max() <= 1
    assert ds.y.tolist() == [0, 1, 2, 0, 1, 2, 0, 1, 2]  # interleaved: any prefix is balanced
    rgb = data.load(tmp_path, (16, 20), 3)
    assert rgb.x.shape == (9, 16, 20, 3)


def test_a_folder_used_whole_gives_every_class_in_the_first_n(tmp_path):
    """A .tflite tests on all of a folder (no calibration): '--n 12' on 3 classes of 8 images
    took 8 circles and 4 of the second class, none of the third (the report's accuracy and
    confusion matrix had a class with no image). The stratified split is unchanged."""
    _write_folder(tmp_path, ["circle", "noise", "stripes"], per_class=4, size=(8, 8))
    for i in range(4, 6):  # unequal classes: circle 6, noise 4, stripes 4
        Image.fromarray(np.full((8, 8, 3), i, np.uint8)).save(tmp_path / "circle" / f"{i}.png")
    s = data.load_splits(tmp_path, (8, 8, 3), whole_for_test=True)
    assert s.test.y.tolist() == [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 0]
    assert sorted(s.test.take(3).y.tolist()) == [0, 1, 2]
    files = [tmp_path / c / f"{i}.png" for c, n in (("circle", 6), ("noise", 4),
                                                     ("stripes", 4)) for i in range(n)]
    by_class = data.Dataset(np.stack([np.asarray(Image.open(f), np.float32) / 255 for f in files]),
                            np.repeat([0, 1, 2], [6, 4, 4]), s.test.class_names, "sorted")
    for ours, theirs in zip(data.split(s.test, 0.25), data.split(by_class, 0.25), strict=True):
        np.testing.assert_allclose(ours.x, theirs.x, atol=1e-6)
        assert ours.y.tolist() == theirs.y.tolist()


@pytest.mark.parametrize(
    "layout, message",
    [
        ("missing", "no such directory"),
        ("flat", "no class sub-folders"),
        ("one_class", "only one class"),
        ("empty_class", "has no images"),
        ("broken", "cannot read image"),
    ],
)
def test_folder_dataset_errors_name_the_problem(tmp_path, layout, message):
    root = tmp_path / "photos"
    if layout != "missing":
        root.mkdir()
    if layout == "flat":
        Image.new("L", (8, 8)).save(root / "a.png")
    if layout == "one_class":
        _write_folder(root, ["sit"])
    if layout == "empty_class":
        _write_folder(root, ["sit"])
        (root / "stand").mkdir()
    if layout == "broken":
        _write_folder(root, ["sit", "stand"])
        (root / "sit" / "bad.png").write_bytes(b"not a png")
    with pytest.raises(TinyscopeError, match=message) as err:
        data.load(root)
    assert str(root) in str(err.value)


def test_mnist_rejects_other_input_shapes():
    with pytest.raises(TinyscopeError, match="28x28x1"):
        data.load("mnist", (32, 32), 3)


def test_quantize_rounds_half_away_from_zero_and_saturates():
    scale, zp = 0.5, -3
    x = np.array([0.0, 0.25, -0.25, 0.75, 100.0, -100.0, 1.0])
    assert data.quantize(x, scale, zp).tolist() == [-3, -2, -4, -1, 127, -128, -1]
    back = data.dequantize(data.quantize(x[:4], scale, zp), scale, zp)
    assert np.all(np.abs(back - x[:4]) <= scale / 2 + 1e-7)


def test_unit_images_quantize_exactly_with_scale_1_over_255(mnist):
    q = data.quantize(mnist.x[:50], 1 / 255, -128)
    assert np.array_equal(q.astype(np.int32) + 128, np.rint(mnist.x[:50] * 255).astype(np.int32))
