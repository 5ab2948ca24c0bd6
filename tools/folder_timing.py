"""How long a folder of your own images takes to read: the table in docs/own-images.md.

    python tools/folder_timing.py                      # 10,000 small PNGs and 200 large JPEGs, in a temporary folder
    python tools/folder_timing.py --small 2000 --large 50

Writes two folders made from Fashion-MNIST's training images (so they need it installed): small colour PNGs
(56x56, dark on white, ten class folders) and large JPEG "photos" (3000x2000), then reads each as dcgan.py
does, twice: the first read decodes every file, the second comes from the cache where the first took long
enough to be cached (machinery/image_folder.py). Prints a Markdown table and the CPU it ran on.
"""

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import data  # noqa: E402
from machinery import image_folder  # noqa: E402


def write_folder(root, images, labels, size, ending):
    """Each image enlarged to `size` (w, h), inverted and coloured, saved in its class's folder."""
    for index, (image, label) in enumerate(zip(images, labels)):
        folder = root / data.CLASS_FLAGS[label]
        folder.mkdir(parents=True, exist_ok=True)
        grey = Image.fromarray(255 - image).resize(size, Image.Resampling.BILINEAR)
        if size[0] > 100:  # a photo's grain, without which a JPEG of a smooth picture is 5x smaller than a photo's
            grain = np.random.default_rng(index).normal(0, 12, (size[1], size[0]))
            grey = Image.fromarray(np.clip(np.asarray(grey) + grain, 0, 255).astype(np.uint8))
        colour = Image.merge("RGB", (grey, grey.point(lambda v: v * 0.9), grey.point(lambda v: v * 0.7)))
        colour.save(folder / f"{index:05d}.{ending}", quality=90)


def timed_reads(folder, cache):
    """(seconds of the first read, seconds of the second, the second came from the cache, images, MB on disk)."""
    times = []
    for _ in range(2):
        started = time.perf_counter()
        read = image_folder.read(folder, cache=cache)
        times.append(time.perf_counter() - started)
    megabytes = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()) / 1e6
    return times[0], times[1], read.from_cache, len(read.images), megabytes


def cpu_name():
    """The CPU's model name, and whether it has AVX-512 (the kit's timings differ by that: docs/speed.md)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown CPU"
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "?")
    return f"{name}, {'with AVX-512' if 'avx512f' in info else 'AVX2 only' if 'avx2' in info else 'no AVX2'}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--small", type=int, default=10_000, help="small PNGs to write and read (default: 10000)")
    p.add_argument("--large", type=int, default=200, help="large JPEGs to write and read (default: 200)")
    args = p.parse_args(argv)
    images, labels = data.load_split("train", limit=max(args.small, args.large))
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for name, count, size, ending in (("small PNGs, 56x56 colour", args.small, (56, 56), "png"),
                                          ("large JPEGs, 3000x2000 colour", args.large, (3000, 2000), "jpg")):
            if not count:
                continue
            folder = Path(scratch, ending)
            started = time.perf_counter()
            write_folder(folder, images[:count], labels[:count], size, ending)
            print(f"wrote {count} {name} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
            first, second, cached, read, megabytes = timed_reads(folder, Path(scratch, "cache"))  # a cold cache
            rows.append(f"| {count:,} {name} ({megabytes:,.0f} MB) | {first:.1f} s ({count / first:,.0f} a second) | "
                        f"{second:.1f} s ({'from the cache' if cached else 'read again: under the cache threshold'}) |")
    print(f"CPU: {cpu_name()}; Pillow {Image.__version__}; numpy {np.__version__}\n")
    print("| folder | first read | second read |\n|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
