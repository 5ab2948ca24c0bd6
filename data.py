"""Fashion-MNIST from its four IDX `.gz` files: find them, parse them, scale the pixels. Or your own images:
load_training_set reads a folder of them too (machinery/image_folder.py), with its classes' names.

It knows files and pixels, nothing of GANs.

The IDX format (as published with MNIST): two zero bytes, a type code (0x08 = unsigned byte), the number
of dimensions, then each dimension as a big-endian uint32, then the raw values in C order.
"""

import gzip
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
UBYTE = 0x08
IMAGE_SIDE = 28
ENV_VAR = "FASHION_MNIST_DIR"
KERAS_CACHE = Path("~/.keras/datasets/fashion-mnist")
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
HOW_TO_FIX = (
    "install it with `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu), "
    f"or put the four .gz files in a folder and pass --data-dir DIR or set {ENV_VAR}"
)
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
# The same classes as a command line spells them (generate.py --class): no spaces, no slash.
CLASS_FLAGS = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot")


def class_flags(class_names=CLASS_NAMES):
    """The classes as a command line spells them: Fashion-MNIST's CLASS_FLAGS, or other names in lower case
    with dashes for spaces and slashes."""
    if list(class_names) == list(CLASS_NAMES):
        return CLASS_FLAGS
    return tuple("-".join(name.lower().replace("/", " ").split()) for name in class_names)


def class_index(text, class_names=CLASS_NAMES):
    """A class named as class_flags spells it (any case), as it is named, or by its index -> the index; else
    ValueError."""
    flags, text = class_flags(class_names), text.strip()
    for spellings in (flags, [name.lower() for name in class_names]):
        if text.lower() in spellings:
            return list(spellings).index(text.lower())
    if text.isdigit() and int(text) < len(flags):
        return int(text)
    raise ValueError(f"unknown class {text!r}; use one of {', '.join(flags)} or an index 0 to {len(flags) - 1}")


class DataError(Exception):
    """A problem with the data files; its message is one line that says what to do."""


GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path):
    """Parse one IDX file of unsigned bytes, gzipped or not, into a numpy array, checking header and size.
    Streamed into the array a megabyte at a time: the 47 MB of training images never exist twice in memory
    (gzip.decompress held the file, its growing output and the result: 120 MB at once)."""
    path, gzipped = Path(path), False
    try:
        with open(path, "rb") as f:
            gzipped = f.read(2) == GZIP_MAGIC
        with (gzip.open if gzipped else open)(path, "rb") as f:
            return _parse_idx(path, f)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, EOFError, zlib.error) as e:
        if gzipped:  # a file that opened and starts as gzip does: its contents are what is wrong
            raise DataError(f"{path}: not a readable gzip file ({e}); download it again") from None
        raise DataError(f"{path}: cannot be read ({e}); check the file and its permissions") from None


def _parse_idx(path, f):
    head = f.read(4)
    if len(head) < 4 or head[0] != 0 or head[1] != 0:
        raise DataError(f"{path}: not an IDX file (bad magic number); download it again")
    type_code, ndim = head[2], head[3]
    if type_code != UBYTE:
        raise DataError(f"{path}: IDX type 0x{type_code:02x} is not unsigned bytes (0x08)")
    sizes = f.read(4 * ndim)
    if ndim == 0 or len(sizes) < 4 * ndim:
        raise DataError(f"{path}: IDX header is truncated; download it again")
    dims = struct.unpack(f">{ndim}I", sizes)
    expected = int(np.prod(dims))
    array = np.empty(expected, np.uint8)
    view, got = memoryview(array), 0
    while got < expected and (count := f.readinto(view[got:got + (1 << 20)])):
        got += count
    while extra := f.read(1 << 20):  # bytes beyond what the header announces are as wrong as missing ones
        got += len(extra)
    if got != expected:
        raise DataError(f"{path}: IDX data holds {got} bytes but its header {dims} needs {expected}; "
                        "the file is truncated or corrupt, download it again")
    return array.reshape(dims)


def write_idx(path, array):
    """Write a uint8 array as an IDX `.gz` file (used by tests and by anyone making a small data set)."""
    array = np.asarray(array, np.uint8)
    header = bytes([0, 0, UBYTE, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


def _file(folder, name):
    """`name` in `folder`, gzipped as published, or unpacked under the same name without .gz; else None."""
    for candidate in (folder / name, folder / name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def _has_all_files(folder):
    return all(_file(folder, name) for pair in FILES.values() for name in pair)


def find_data_dir(data_dir=None, allow_download=True):
    """The folder holding the four files, looked for in the kit's documented order.

    A folder the user named (--data-dir or $FASHION_MNIST_DIR) is used as it is, so a missing file there is
    reported rather than silently replaced by another copy; the default places count only when complete.
    """
    for named in (data_dir, os.environ.get(ENV_VAR)):
        if named:
            folder = Path(named).expanduser()
            if not folder.is_dir():
                what = "is a file, not a folder" if folder.exists() else "does not exist"
                raise DataError(f"data folder {folder} {what}; {HOW_TO_FIX}")
            return folder
    looked = ["--data-dir (not given)", f"${ENV_VAR} (not set)"]
    for folder in (KERAS_CACHE.expanduser(), DEBIAN_DIR):
        if _has_all_files(folder):
            return folder
        looked.append(str(folder))
    if allow_download:
        try:
            _download_with_keras()
            if _has_all_files(KERAS_CACHE.expanduser()):
                return KERAS_CACHE.expanduser()
        except Exception as e:  # any network or HTTP failure means the same thing to the user
            looked.append(f"Keras download ({type(e).__name__})")
    else:
        looked.append("Keras download (not tried)")
    raise DataError(f"Fashion-MNIST not found; looked in: {', '.join(looked)}; {HOW_TO_FIX}")


def find_data_dir_before_keras(data_dir=None):
    """find_data_dir for a script that has not chosen its backend yet, so that a wrong folder is told before
    a backend's slow import: the folder, or None where only Keras's download could get the data (Keras must
    be imported on the chosen backend for that: call find_data_dir then)."""
    try:
        return find_data_dir(data_dir, allow_download=False)
    except DataError:
        if data_dir or os.environ.get(ENV_VAR):  # a folder the user named: its own one-line error
            raise
        return None


def _download_with_keras():
    # Keras's loader saves the four .gz files into its cache folder; we then parse them ourselves.
    from keras.datasets import fashion_mnist
    fashion_mnist.load_data()


def load_split(split="train", data_dir=None, limit=None, allow_download=True):
    """(images uint8 [N, 28, 28], labels uint8 [N]) of one split, the first `limit` images if given."""
    folder = find_data_dir(data_dir, allow_download)
    image_name, label_name = FILES[split]
    for name in (image_name, label_name):
        if not _file(folder, name):
            expected = ", ".join(file for pair in FILES.values() for file in pair)
            raise DataError(f"{folder / name}: file not found; the folder must hold {expected} (gzipped as "
                            "published, or unpacked without .gz)")
    images = read_idx(_file(folder, image_name))
    labels = read_idx(_file(folder, label_name))
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise DataError(f"{folder / image_name}: images are {images.shape[1:]}, expected 28x28")
    if labels.ndim != 1:
        raise DataError(f"{folder / label_name}: labels have {labels.ndim} dimensions, expected 1")
    if len(images) != len(labels):
        raise DataError(f"{folder}: {len(images)} images but {len(labels)} labels in {split} split; "
                        "the files do not belong together")
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return images, labels


# Other IDX files (MNIST's digits, say) are named by a file of this name beside them: one class name a line.
CLASS_NAMES_FILE = "classes.txt"
FASHION_MNIST, OTHER_IDX, IMAGE_FOLDER = "fashion-mnist", "idx", "image folder"  # TrainingSet.kind
KIND_IN_WORDS = {FASHION_MNIST: "Fashion-MNIST", OTHER_IDX: f"IDX files named by {CLASS_NAMES_FILE}",
                 IMAGE_FOLDER: "a folder of images"}
# Why evaluate.py, tools/verdicts.py and --eval-every refuse other data
JUDGE_KNOWS_ONLY = "the judge knows only Fashion-MNIST (its classifier and features were trained on it)"


@dataclass
class TrainingSet:
    """What a run trains on: its images, their classes, the classes' names, and where they came from."""
    images: np.ndarray  # uint8 [N, 28, 28]
    classes: np.ndarray  # uint8 [N]
    class_names: list
    folder: Path
    kind: str  # FASHION_MNIST, OTHER_IDX (named by classes.txt) or IMAGE_FOLDER
    contents: str = None  # an image folder's digest of its files, classes and names (a resumed run checks it)

    def judge_knows_it(self):
        """The judge (evaluate.py, --eval-every, tools/verdicts.py) was trained on Fashion-MNIST and scores
        against its test split: of other images its figures would mean nothing."""
        return self.kind == FASHION_MNIST


def load_training_set(data_dir=None, limit=None, allow_download=True):
    """The training split (a TrainingSet): Fashion-MNIST's, other IDX files named by a classes.txt beside them,
    or a folder of images (machinery/image_folder.py), the first `limit` images if given."""
    folder = find_data_dir(data_dir, allow_download)
    if not any(_file(folder, name) for pair in FILES.values() for name in pair):  # none of the four IDX files
        return _read_image_folder(folder, limit)
    images, labels = load_split("train", folder, limit)
    names_file = folder / CLASS_NAMES_FILE
    if not names_file.is_file():
        return TrainingSet(images, labels, list(CLASS_NAMES), folder, FASHION_MNIST)
    names = [line.strip() for line in names_file.read_text(errors="replace").splitlines() if line.strip()]
    if len(names) <= labels.max(initial=0):
        raise DataError(f"{names_file} names {len(names)} classes but the labels go up to {labels.max()}; "
                        "one class name a line, in the labels' order")
    return TrainingSet(images, labels, names, folder, OTHER_IDX)


def _read_image_folder(folder, limit):
    from machinery import image_folder  # Pillow: only where a folder of images is read
    from tqdm import tqdm

    try:
        with tqdm(desc=f"reading the images in {folder}", unit="img", disable=None, leave=False) as bar:
            read = image_folder.read(folder, limit, progress=lambda done: bar.update(done - bar.n))
    except image_folder.FolderError as e:
        raise DataError(str(e)) from None
    print(image_folder.summary(folder, read))
    return TrainingSet(read.images, read.classes, read.class_names, folder, IMAGE_FOLDER, read.contents)


def scale_pixels(images, pixel_range):
    """uint8 [N, 28, 28] -> float32 [N, 28, 28, 1] in (-1, 1) or (0, 1), the range the generator outputs."""
    x = images.astype(np.float32)[..., None] / 255.0
    if tuple(pixel_range) == (-1, 1):
        return x * 2.0 - 1.0
    if tuple(pixel_range) == (0, 1):
        return x
    raise ValueError(f"unknown pixel range {pixel_range}")


def to_uint8(images, pixel_range):
    """The inverse of scale_pixels, clipped, for pictures: float [N, H, W, 1] -> uint8 [N, H, W]."""
    low, high = pixel_range
    x = (np.asarray(images, np.float32)[..., 0] - low) / (high - low)
    return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)
