"""The kit's own judge of sample quality: a small Fashion-MNIST classifier and its features.

Inception-based FID needs 299x299 colour images and downloaded weights; neither
fits 28x28 grayscale on a machine without network, so (as TF-GAN does for MNIST) the kit trains a small
CNN on the training split and measures generated images with its penultimate-layer features.
The trained model is committed under judge/ beside a JSON file with its test accuracy and SHA-256, and
beside its features of both real splits (judge/real_features.npz), as FID tools ship their reference
statistics: judging the 70,000 real images takes half a minute on a 2-core CPU, which every first
evaluation would otherwise spend.
"""

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np

import keras
from keras import layers

import data
from machinery import backends, metrics, runs

FOLDER = Path(__file__).resolve().parent.parent / "judge"  # the kit's top folder: data, not code
MODEL_FILE = FOLDER / "fashion_classifier.keras"
INFO_FILE = FOLDER / "fashion_classifier.json"
SHIPPED_FEATURES = FOLDER / "real_features.npz"
FEATURE_LAYER = "features"
# Features of real images that SHIPPED_FEATURES does not hold (another data set, a retrained judge not yet
# committed) are computed once per judge, data set and backend and kept in the kit's cache folder (see
# backends.CACHE_DIR).
FEATURE_CACHE = backends.CACHE_DIR / "judge_features"


class JudgeError(runs.RunError):
    """The classifier is missing or damaged (a file the kit cannot use as asked, as runs.RunError says of a run
    folder); the message is one line that says what to do."""


def build_classifier():
    """28x28x1 in [0, 1] -> 10 class probabilities; the 128-unit layer named "features" is what FD uses."""
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(32, 3, padding="same", activation="relu"),
        layers.BatchNormalization(),
        layers.Conv2D(32, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(),                                        # -> 14x14x32
        layers.Conv2D(64, 3, padding="same", activation="relu"),
        layers.BatchNormalization(),
        layers.Conv2D(64, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(),                                        # -> 7x7x64
        layers.Flatten(),
        layers.Dropout(0.3),
        layers.Dense(128, activation="relu", name=FEATURE_LAYER),
        layers.Dropout(0.3),
        layers.Dense(10, activation="softmax"),
    ], name="fashion_classifier")


def to_unit_range(images_uint8):
    return images_uint8.astype(np.float32)[..., None] / 255.0


def train_classifier(data_dir=None, epochs=10, batch=128, seed=0):
    """Train on the 60,000 training images, measure on the 10,000 test images, save model + info."""
    keras.utils.set_random_seed(seed)
    train_x, train_y = data.load_split("train", data_dir)
    test_x, test_y = data.load_split("test", data_dir)
    model = build_classifier()
    # A learning rate that decays to zero: at a constant 1e-3 test accuracy stalled near 0.911 from epoch 3.
    schedule = keras.optimizers.schedules.CosineDecay(1e-3, decay_steps=epochs * -(-len(train_x) // batch))
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(to_unit_range(train_x), train_y, epochs=epochs, batch_size=batch, verbose=2,
              validation_data=(to_unit_range(test_x), test_y))
    _, accuracy = model.evaluate(to_unit_range(test_x), test_y, verbose=0)
    info = dict(test_accuracy=round(float(accuracy), 4), epochs=epochs, batch=batch, seed=seed,
                parameters=model.count_params(), trained_by="python evaluate.py --train-classifier")
    info = save_classifier(model, info)
    save_real_features(feature_model_of(model), info, data_dir)
    return info


def save_classifier(model, info):
    """Save the weights in an uncompiled copy (no optimizer state: a third of the size), record the hash."""
    FOLDER.mkdir(exist_ok=True)
    inference_copy = build_classifier()
    inference_copy.set_weights(model.get_weights())
    inference_copy.save(MODEL_FILE)
    info = dict(info, sha256=_sha256(MODEL_FILE))
    INFO_FILE.write_text(json.dumps(info, indent=2) + "\n")
    return info


def _sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# Images per judge call. The judge now sees only the samples and a spot check (the real splits are
# shipped), so memory counts more than speed: at 100 evaluate.py stays under 1 GB beside TensorFlow's
# 0.7 GB (250 took 50 MB more) and 10,000 images take 4.6-5.0 s on 2 cores (TF), 2.6 s (JAX).
JUDGE_BATCH = 100


def load_classifier():
    """The committed classifier, checked against its recorded hash; -> (model, feature_model, info)."""
    if not MODEL_FILE.is_file() or not INFO_FILE.is_file():
        raise JudgeError(f"{MODEL_FILE} is missing; train it with python evaluate.py --train-classifier")
    info = json.loads(INFO_FILE.read_text())
    if _sha256(MODEL_FILE) != info["sha256"]:
        raise JudgeError(f"{MODEL_FILE} does not match the hash in {INFO_FILE.name}; restore it from git "
                         "(git checkout judge/) or retrain with python evaluate.py --train-classifier")
    model = keras.models.load_model(MODEL_FILE)
    return model, feature_model_of(model), info


def feature_model_of(model):
    """The classifier with two outputs: its features and its class probabilities."""
    features = keras.Model(model.inputs[0], [model.get_layer(FEATURE_LAYER).output, model.outputs[0]])
    # JAX compiles it anyway. Not under TensorFlow: XLA was 1.6x faster there, but compiling kept 100 MB
    # more, the difference between evaluate.py under and over 1 GB; PyTorch's compiler would spend longer
    # compiling than it saves.
    features.compile(jit_compile=keras.backend.backend() == "jax")
    return features


def features_and_probabilities(feature_model, images_uint8, batch=JUDGE_BATCH, bar=None):
    """uint8 [N, 28, 28] -> (features [N, 128], class probabilities [N, 10]), a batch at a time (under JAX
    compiled 10x faster than calling the model). `bar`: a tqdm bar to advance by each image."""
    feats, probs = backends.predict_in_batches(feature_model, images_uint8, batch, to_unit_range, bar)
    return feats, probs


def data_key(images_uint8):
    """A short hash of a split's pixels: which images a set of features belongs to."""
    return hashlib.sha256(np.ascontiguousarray(images_uint8).tobytes()).hexdigest()[:16]


def real_features(feature_model, info, split, images_uint8, bar=None):
    """features_and_probabilities() of a real split: from the cache, else from the features shipped with the
    judge, else computed (half a minute for the training split on a 2-core CPU) and kept in the cache. A
    cache file that cannot be read or written costs time, nothing else."""
    key = data_key(images_uint8)
    path = FEATURE_CACHE / f"{split}-{keras.backend.backend()}-judge_{info['sha256'][:12]}-data_{key}.npz"
    found = _read_cache(path, len(images_uint8)) or _read_shipped(feature_model, info, split, key, images_uint8)
    if found:
        if bar is not None:
            bar.update(len(images_uint8))
        return found
    feats, probs = features_and_probabilities(feature_model, images_uint8, bar=bar)
    try:
        FEATURE_CACHE.mkdir(parents=True, exist_ok=True)
        runs.replace_atomically(path, lambda temporary: np.savez(temporary, features=feats, probabilities=probs))
    except OSError:
        pass
    return feats, probs


# What np.load raises for a features file that is missing, cut short, not a zip or without the arrays
# asked for: the cache and the shipped file alike are then passed over, never an error.
UNREADABLE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)


def _read_cache(path, rows):
    try:
        with np.load(path) as cached:
            feats, probs = cached["features"], cached["probabilities"]
    except UNREADABLE:
        return None
    return (feats, probs) if len(feats) == len(probs) == rows else None


# Rows of a shipped split recomputed on every use, evenly spread. Other backends and CPUs differ from the
# numbers shipped (TensorFlow with XLA, on a Xeon; features up to 35) by about 1e-5 (JAX: 1.5e-5 at most),
# far inside the tolerance; anything else (another dtype, a damaged file) is far outside it, and then the
# split is judged here instead.
SPOT_CHECK_ROWS = JUDGE_BATCH
SPOT_CHECK_TOLERANCE = 1e-3


def _read_shipped(feature_model, info, split, key, images_uint8):
    """The split's features from SHIPPED_FEATURES if they belong to this judge and these images and a spot
    check recomputed here agrees with them; else None."""
    try:
        with np.load(SHIPPED_FEATURES) as shipped:
            if str(shipped["judge_sha256"]) != info["sha256"] or str(shipped[f"{split}_data"]) != key:
                return None
            feats, probs = shipped[f"{split}_features"], shipped[f"{split}_probabilities"]
    except UNREADABLE:
        return None
    if not len(feats) == len(probs) == len(images_uint8):
        return None
    rows = np.linspace(0, len(images_uint8) - 1, min(SPOT_CHECK_ROWS, len(images_uint8))).astype(int)
    check_feats, check_probs = features_and_probabilities(feature_model, images_uint8[rows])
    agrees = all(np.allclose(here, there, rtol=SPOT_CHECK_TOLERANCE, atol=SPOT_CHECK_TOLERANCE)
                 for here, there in ((check_feats, feats[rows]), (check_probs, probs[rows])))
    return (feats, probs) if agrees else None


def save_real_features(feature_model, info, data_dir=None):
    """Judge both real splits and write SHIPPED_FEATURES for the judge `info` describes (compressed: the
    features are 84% zeros after ReLU, 38 MB of float32 in 10 MB). train_classifier calls it; commit the file."""
    arrays = dict(judge_sha256=np.array(info["sha256"]))
    for split in ("test", "train"):
        images, _ = data.load_split(split, data_dir)
        feats, probs = features_and_probabilities(feature_model, images)
        arrays.update({f"{split}_data": np.array(data_key(images)), f"{split}_features": feats,
                       f"{split}_probabilities": probs})
    runs.replace_atomically(SHIPPED_FEATURES, lambda temporary: np.savez_compressed(temporary, **arrays))


QUICK_SAMPLES = 2000       # enough for a stable trend, a few seconds on a CPU
COLLAPSE_CLASSES = 8       # fewer classes than this holding >= 5% of samples: coverage has collapsed
RISING_EVALUATIONS = 3     # FD up this many evaluations in a row: training is drifting


def make_quick_scorer(data_dir=None):
    """score(images_uint8) -> {"fd", "classes_covered"} against the test split, for --eval-every."""
    _, feature_model, info = load_classifier()
    test_images, _ = data.load_split("test", data_dir)
    reference, _ = real_features(feature_model, info, "test", test_images)

    def score(images_uint8):
        feats, probs = features_and_probabilities(feature_model, images_uint8)
        return dict(fd=metrics.frechet_distance(feats, reference),
                    classes_covered=metrics.class_coverage(probs)["classes_covered"])
    return score


def warnings(history):
    """What a user watching the run should know, from the rows scored so far."""
    scored = [row for row in history if row.get("fd") not in (None, "")]
    found = []
    if scored and scored[-1]["classes_covered"] < COLLAPSE_CLASSES:
        found.append(f"mode collapse? only {scored[-1]['classes_covered']} of 10 classes hold 5% of the samples "
                     f"at epoch {scored[-1]['epoch']}")
    fds = [row["fd"] for row in scored[-(RISING_EVALUATIONS + 1):]]
    if len(fds) == RISING_EVALUATIONS + 1 and all(a < b for a, b in zip(fds, fds[1:])):
        found.append(f"FD rose {RISING_EVALUATIONS} evaluations in a row ({fds[0]:.1f} -> {fds[-1]:.1f}); "
                     "generator_best.keras keeps the best epoch")
    return found
