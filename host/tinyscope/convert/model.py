"""The default CNN, its seeded training recipe, and ``tinyscope train``.

The default architecture is a small CNN: a first Conv2D with 8 filters 3x3 (so the
first layer has 8 feature maps, shown as a 2x4 grid), then a few more layers, all of them ops
the tinyscope runtime supports::

    Input (28, 28, 1), batch 1
    conv1   Conv2D 8  3x3 relu        -> 26x26x8   CONV_2D
    pool1   MaxPool 2x2               -> 13x13x8   MAX_POOL_2D
    conv2   Conv2D 16 3x3 relu        -> 11x11x16  CONV_2D
    pool2   MaxPool 2x2               -> 5x5x16    MAX_POOL_2D
    flatten Flatten                   -> 400       RESHAPE
    logits  Dense 10                  -> 10        FULLY_CONNECTED  (pre-softmax scores)
    softmax Softmax                   -> 10        SOFTMAX

The ``logits`` layer is kept separate from the softmax so that saliency can differentiate the
pre-softmax class score (Simonyan et al. 2013).

Training runs on a batch-``None`` copy of the graph; the saved model has ``batch_size=1``
because a ``None`` batch adds SHAPE/STRIDED_SLICE/PACK ops to the converted model.
"""

from __future__ import annotations

import os
from pathlib import Path

from tinyscope import data as data_mod
from tinyscope.errors import TinyscopeError

DEFAULT_MODEL_PATH = Path("models/default.keras")
LOGITS_LAYER = "logits"
DEFAULT_EPOCHS = 12
DEFAULT_BATCH = 32
DEFAULT_LR = 3e-3


def _keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    return keras


def build_default(
    input_shape: tuple[int, int, int] = (28, 28, 1),
    num_classes: int = 10,
    batch_size: int | None = 1,
):
    """The default CNN (see the module docstring); untrained."""
    keras = _keras()
    layers = keras.layers
    inputs = keras.Input(input_shape, batch_size=batch_size, name="image")
    x = layers.Conv2D(8, 3, activation="relu", name="conv1")(inputs)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(16, 3, activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(num_classes, name=LOGITS_LAYER)(x)
    outputs = layers.Softmax(name="softmax")(x)
    return keras.Model(inputs, outputs, name="tinyscope_default")


def rebatch(model, batch_size: int | None):
    """A copy of a functional model whose input has batch size ``batch_size`` (same weights)."""
    config = model.get_config()
    for layer in config.get("layers", []):
        if layer.get("class_name") == "InputLayer":
            cfg = layer["config"]
            shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
            key = "batch_shape" if "batch_shape" in cfg else "batch_input_shape"
            cfg[key] = [batch_size, *list(shape)[1:]]
    try:
        clone = model.__class__.from_config(config)
    except Exception as err:  # noqa: BLE001 - Keras raises many types for bad configs
        raise TinyscopeError(
            f"cannot rebuild model {model.name!r} with batch size {batch_size}: {err}; "
            "use a functional keras.Model"
        ) from err
    clone.set_weights(model.get_weights())
    return clone


def load_model(path: str | Path):
    """Load a ``.keras`` file with a clear error for a missing or unreadable file."""
    keras = _keras()
    path = Path(path)
    if not path.is_file():
        raise TinyscopeError(
            f"model {path} not found; train one with 'tinyscope train --out {path}' or give "
            "the path of a .keras file"
        )
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as err:  # noqa: BLE001
        raise TinyscopeError(
            f"cannot load Keras model {path}: {err}; save it with model.save('x.keras')"
        ) from err


def logits_model(model):
    """A model with the same input whose output is the pre-softmax score.

    If the last layer is a ``Softmax`` layer, returns the input of that layer; if it is a
    Dense/Conv with ``activation="softmax"``, a copy with a linear activation; otherwise
    ``model`` unchanged (its output is taken to be a score already).
    """
    keras = _keras()
    last = model.layers[-1]
    if isinstance(last, keras.layers.Softmax) or (
        isinstance(last, keras.layers.Activation)
        and getattr(last.activation, "__name__", "") == "softmax"
    ):
        inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
        return keras.Model(inputs, last.input, name=f"{model.name}_logits")
    if getattr(getattr(last, "activation", None), "__name__", "") == "softmax":
        # e.g. Dense(10, activation="softmax"): the same model with a linear last layer
        config = model.get_config()
        for layer in config.get("layers", []):
            if layer.get("config", {}).get("name") == last.name:
                layer["config"]["activation"] = "linear"
        clone = model.__class__.from_config(config)
        clone.set_weights(model.get_weights())
        return clone
    return model


def _tqdm_callback(epochs: int):
    """A Keras callback that shows one tqdm bar over epochs with loss/accuracy."""
    keras = _keras()
    from tqdm.auto import tqdm

    class TqdmEpochs(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.bar = tqdm(total=epochs, desc="train", unit="epoch")

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            self.bar.set_postfix({k: f"{v:.3f}" for k, v in logs.items()})
            self.bar.update(1)

        def on_train_end(self, logs=None):
            self.bar.close()

    return TqdmEpochs()


def train(
    ds: data_mod.Dataset,
    epochs: int = DEFAULT_EPOCHS,
    seed: int = data_mod.DEFAULT_SEED,
    batch_size: int = DEFAULT_BATCH,
    learning_rate: float = DEFAULT_LR,
    test_fraction: float = data_mod.DEFAULT_TEST_FRACTION,
    steps_per_epoch: int | None = None,
    progress: bool = True,
):
    """Train the default CNN on ``ds`` (seeded); returns ``(model_batch1, info_dict)``.

    ``info`` holds the recipe and the test accuracy on the held-out stratified split.
    """
    keras = _keras()
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    train_ds, test_ds = data_mod.split(ds, test_fraction, seed)
    net = build_default(ds.image_shape, ds.num_classes, batch_size=None)
    net.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=["accuracy"],
    )
    x, y = train_ds.x, train_ds.y
    if steps_per_epoch is not None:
        n = min(len(y), steps_per_epoch * batch_size)
        x, y = x[:n], y[:n]
    net.fit(
        x,
        y,
        batch_size=batch_size,
        epochs=epochs,
        shuffle=True,
        verbose=0,
        callbacks=[_tqdm_callback(epochs)] if progress else [],
    )
    _, test_acc = net.evaluate(test_ds.x, test_ds.y, batch_size=256, verbose=0)
    _, train_acc = net.evaluate(train_ds.x, train_ds.y, batch_size=256, verbose=0)
    info = {
        "data": ds.source,
        "classes": list(ds.class_names),
        "seed": seed,
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "test_fraction": test_fraction,
        "n_train": len(train_ds),
        "n_test": len(test_ds),
        "train_accuracy": round(float(train_acc), 4),
        "test_accuracy": round(float(test_acc), 4),
        "params": int(net.count_params()),
    }
    return rebatch(net, 1), info
