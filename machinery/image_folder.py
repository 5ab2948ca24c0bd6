"""A folder of your own images as training data, read the way Keras's image_dataset_from_directory reads one:
one sub-folder per class (its name is the class's name; classes sorted as Python sorts text, capitals first,
as Keras does), or the images directly in the folder (one class, named after the folder). Sub-folders of a
class's folder count for it.

Each image becomes the kit's 28x28 grayscale, as Fashion-MNIST's are (to_28x28): turned upright by its EXIF
tag, transparency laid on white, colour made grey by luminance (Pillow's "L": 0.299 R + 0.587 G + 0.114 B),
16-bit greys scaled to 8, the largest centred square kept (the edges of a long side are cut off, nothing
stretched), then scaled to 28x28. Colours are not inverted: a drawing on white paper stays dark on white
(Fashion-MNIST is light on black).

Memory stays bounded: images are decoded one at a time and only their 784 bytes kept (100,000 photos: 78 MB).
Decoding many large photos is slow, so what a folder gave is kept in a cache (~/.cache/dcgan-kit, or
$DCGAN_KIT_CACHE) and read back while the folder's files are unchanged.
"""

import hashlib
import io
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

SIDE = 28
# Raise when to_28x28 changes: a cached folder read the old way is then read again.
CONVERSION = 2
ORIENTATION = 0x0112  # the EXIF tag of how the camera was held
CACHE_ENV_VAR = "DCGAN_KIT_CACHE"
CACHE_WHEN_SLOWER_THAN = 2.0  # seconds of decoding; a faster folder is simply read again each time
ORDER_SEED = 0  # the images in one fixed shuffled order, so --limit N takes a mix of the classes
MAX_CLASSES = 255  # a class index is one byte (uint8), as Fashion-MNIST's labels are


class FolderError(Exception):
    """A folder that cannot be trained on; the message is one line that says what to do."""


@dataclass
class FolderImages:
    images: np.ndarray  # uint8 [N, 28, 28]
    classes: np.ndarray  # uint8 [N], indices into class_names
    class_names: list
    contents: str  # a digest of the image files read, their classes and names: a resumed run checks it
    files: int  # image files found (the images read, plus those skipped)
    skipped: list  # (file relative to the folder, why) for each image Pillow could not read
    sizes: tuple  # (smallest, largest) (width, height) met, upright
    seconds: float
    from_cache: bool


def image_extensions():
    """Every file ending Pillow can open (.png, .jpg, .jpeg, .gif, .bmp, .webp, .tif, ...)."""
    return {ending for ending, kind in Image.registered_extensions().items() if kind in Image.OPEN}


def _hidden(path):
    return path.name.startswith((".", "__"))  # .ipynb_checkpoints, .DS_Store, __MACOSX and the like


def _images_under(folder, endings, recursive):
    found = []
    for root, subfolders, files in os.walk(folder):
        subfolders[:] = sorted(name for name in subfolders if not _hidden(Path(name)))
        found += [Path(root, name) for name in sorted(files)  # is_file: not a link to nothing
                  if not _hidden(Path(name)) and Path(name).suffix.lower() in endings and Path(root, name).is_file()]
        if not recursive:
            break
    return found


def find_images(folder):
    """(class names, [(image path, class index)]) of `folder`, or a FolderError when it cannot be used."""
    folder, endings = Path(folder), image_extensions()
    loose = _images_under(folder, endings, recursive=False)
    subfolders = sorted(path for path in folder.iterdir() if path.is_dir() and not _hidden(path))
    by_class = {path.name: _images_under(path, endings, recursive=True) for path in subfolders}
    with_images = [name for name, files in by_class.items() if files]
    if loose and with_images:
        raise FolderError(f"{folder} holds images ({loose[0].name}, ...) beside class folders ("
                          f"{', '.join(with_images)}); move them into a class folder, or train on one of the folders")
    if loose:  # folders beside them that hold no image (scans as PDF, say) are no class
        return [folder.resolve().name], [(path, 0) for path in loose]
    if not with_images:
        raise FolderError(f"{folder} holds neither Fashion-MNIST's files nor images (.png, .jpg, ...); give a "
                          "folder of images, one sub-folder per class, or the folder of the four .gz files")
    if empty := [name for name, files in by_class.items() if not files]:
        raise FolderError(f"class folder {folder / empty[0]} holds no image (.png, .jpg, ...); add some, or move it "
                          "out of the folder")
    if len(by_class) > MAX_CLASSES:
        raise FolderError(f"{folder} has {len(by_class)} class folders, {MAX_CLASSES} at most; group them")
    return list(by_class), [(path, label) for label, files in enumerate(by_class.values()) for path in files]


def to_28x28(file):
    """One image (a path or an open file) -> uint8 [28, 28] and its (width, height) upright, as the module's
    docstring says."""
    with Image.open(file) as image:
        size = image.size if image.getexif().get(ORIENTATION, 1) < 5 else image.size[::-1]  # 5-8: turned 90 degrees
        image.draft("RGB", (2 * SIDE, 2 * SIDE))  # a JPEG decodes at 1/2 to 1/8 size where that is still enough
        image = _eight_bit(ImageOps.exif_transpose(image))
        if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
            image = image.convert("RGBA")
            image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image)
        grey = ImageOps.fit(image.convert("L"), (SIDE, SIDE), Image.Resampling.LANCZOS)
        return np.asarray(grey, np.uint8), size


def _eight_bit(image):
    """16- and 32-bit greys as 0-255: Pillow's convert("L") clips them at 255 (a 16-bit scan came out white)."""
    if image.mode not in ("I", "F") and not image.mode.startswith("I;16"):
        return image
    values = np.asarray(image, np.float64)
    if image.mode == "F" and values.max(initial=0) <= 1:
        values = values * 255  # floats from 0 to 1
    elif values.max(initial=0) > 255:
        values = values / 257  # 16-bit: 65535 -> 255
    return Image.fromarray(values.clip(0, 255).astype(np.uint8))


def read(folder, limit=None, progress=None, cache=None):
    """The images of `folder` (FolderImages), at most `limit` of them in the folder's fixed shuffled order, from
    the cache where this folder was read before. `progress`: called with the count of files read so far;
    `cache`: the cache's folder (default: cache_folder())."""
    folder = Path(folder)
    class_names, listed = find_images(folder)
    order = np.random.default_rng(ORDER_SEED).permutation(len(listed))
    listed = [listed[i] for i in order]
    cache_file = _cache_file(cache or cache_folder(), folder, listed, limit)
    if (cached := _from_cache(cache_file)) is not None:
        return FolderImages(class_names=class_names, files=len(listed), seconds=0.0, from_cache=True, **cached)
    started = time.perf_counter()
    decoded = _decode(folder, listed, len(listed) if limit is None else min(limit, len(listed)), progress)
    decoded["contents"] = _with_names(decoded.pop("digest"), class_names)
    seconds = time.perf_counter() - started
    if seconds > CACHE_WHEN_SLOWER_THAN:
        _save_cache(cache_file, decoded)
    return FolderImages(class_names=class_names, files=len(listed), seconds=seconds, from_cache=False, **decoded)


def _decode(folder, listed, wanted, progress):
    """The first `wanted` readable images of `listed`: a dict of FolderImages's fields images, classes,
    skipped and sizes, and the digest of the files' bytes and classes (hashlib) as they were read."""
    images, classes = np.empty((wanted, SIDE, SIDE), np.uint8), np.empty(wanted, np.uint8)
    skipped, sizes, digest, count = [], [], hashlib.sha256(), 0
    for done, (path, label) in enumerate(listed, 1):
        if count == wanted:
            break
        try:
            raw = path.read_bytes()
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)  # a 90-megapixel "photo"
                images[count], size = to_28x28(io.BytesIO(raw))
        except Exception as e:  # whatever one file does wrong (bad EXIF too), it is skipped and named, not fatal
            skipped.append((str(path.relative_to(folder)), f"{type(e).__name__}: {e}".splitlines()[0][:120]))
            continue
        finally:
            if progress:
                progress(done)
        digest.update(bytes([label]) + hashlib.sha256(raw).digest())
        classes[count], count = label, count + 1
        sizes.append(size)
    if count == 0:
        first, why = skipped[0]
        raise FolderError(f"{folder}: none of its {len(skipped)} image files could be read (first: {first}: {why}); "
                          "check that they are images Pillow opens (PNG, JPEG, ...)")
    by_area = sorted(sizes, key=lambda size: size[0] * size[1])
    return dict(images=images[:count], classes=classes[:count], skipped=skipped, sizes=(by_area[0], by_area[-1]),
                digest=digest)


def _with_names(digest, class_names):
    """The run's data as 16 hex digits: the files' bytes and classes, and the classes' names. The same for a
    copy of the folder elsewhere; another for an image added, removed or redrawn, or a class renamed."""
    digest.update("\0".join(class_names).encode())
    return digest.hexdigest()[:16]


def summary(folder, found):
    """One line (two with files skipped): what was read, how it was made 28x28, how long it took."""
    counts = np.bincount(found.classes, minlength=len(found.class_names))
    shown = ", ".join(f"{name} {count:,}" for name, count in zip(found.class_names[:10], counts[:10]))
    more = f", and {len(found.class_names) - 10} more" if len(found.class_names) > 10 else ""
    line = (f"read {len(found.images):,} of {found.files:,} image files in {folder}: {len(found.class_names)} "
            f"class{'es' if len(found.class_names) > 1 else ''} ({shown}{more}), kept as 28x28 grayscale "
            f"({found.images.nbytes / 1e6:.1f} MB)")
    (w0, h0), (w1, h1) = found.sizes
    sizes = f"all {w0}x{h0}" if (w0, h0) == (w1, h1) else f"{w0}x{h0} to {w1}x{h1}"
    line += f"; {sizes}, each cut to its centred square and scaled"
    if found.from_cache:
        line += f"; from the cache in {cache_folder()} (the folder is unchanged)"
    else:
        line += f"; {found.seconds:.1f} s"
    if found.skipped:
        named = ", ".join(f"{name} ({why})" for name, why in found.skipped[:3])
        line += (f"\nskipped {len(found.skipped)} file{'s' if len(found.skipped) > 1 else ''} Pillow cannot read: "
                 f"{named}{', ...' if len(found.skipped) > 3 else ''}")
    return line


def cache_folder():
    return Path(os.environ.get(CACHE_ENV_VAR) or Path("~/.cache/dcgan-kit").expanduser())


def _cache_file(cache, folder, listed, limit):
    """The cache file for this folder read this way: its files' names, sizes and times (the inode's change
    time too, which no copy keeps: a file redrawn and copied back with its old time is read again), the limit,
    the conversion."""
    digest = hashlib.sha256(f"{folder.resolve()}\0{limit}\0{CONVERSION}\0{SIDE}\n".encode())
    for path, label in listed:
        stat = path.stat()
        digest.update(f"{path}\0{label}\0{stat.st_size}\0{stat.st_mtime_ns}\0{stat.st_ctime_ns}\n".encode())
    return Path(cache) / f"folder-{digest.hexdigest()[:24]}.npz"


def _from_cache(cache_file):
    """FolderImages's fields as the cache keeps them, or None where there is none, or none that can be read (a
    cache is only ever a shortcut)."""
    try:
        with np.load(cache_file) as saved:
            return dict(images=saved["images"], classes=saved["classes"], contents=str(saved["contents"]),
                        skipped=[tuple(row) for row in saved["skipped"].tolist()],
                        sizes=tuple(map(tuple, saved["sizes"].tolist())))
    except Exception:  # missing, cut short, another version's, unreadable: decode the folder instead
        return None


def _save_cache(cache_file, decoded):
    """Written whole or not at all (a temporary file renamed); a cache that cannot be written is only slower."""
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        temporary = cache_file.with_name(f".{cache_file.name}.{os.getpid()}.tmp")
        with open(temporary, "wb") as f:
            np.savez(f, images=decoded["images"], classes=decoded["classes"], contents=decoded["contents"],
                     skipped=np.array(decoded["skipped"], dtype=str).reshape(-1, 2), sizes=np.array(decoded["sizes"]))
        os.replace(temporary, cache_file)
    except OSError:
        pass
