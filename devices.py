"""Several devices: data-parallel training through Keras 3's own keras.distribution (JAX only).

Bottom floor of the kit, beside backends.py. With --devices N the models are built under a DataParallel
distribution over N local devices: every weight is replicated on each, and every train_on_batch splits its
global batch along the first axis, N equal parts, one per device (Keras's JAX trainer shards the arrays a
step trains on; XLA adds up the gradients). The loop itself does not change, and --batch stays the global
batch. Keras 3.15 implements keras.distribution for JAX only; under TensorFlow, train_on_batch inside a
tf.distribute strategy would hand every replica the whole batch, so there --devices above 1 is refused.
"""

import cli

ALL = "all"


def parse_count(text):
    """An argparse type: "all", or a whole number of devices, 1 or more."""
    return ALL if text.strip().lower() == ALL else cli.positive_int(text)


def add_flag(parser):
    parser.add_argument("--devices", type=parse_count, metavar="N|all",
                        help="train data-parallel on N local devices (GPUs, or CPU devices made with "
                             "XLA_FLAGS=--xla_force_host_platform_device_count=N), or all of them: each step's "
                             "batch is split evenly across them; --batch stays the global batch and must divide "
                             "by N. JAX only (default: 1)")


def local_device_names():
    """The devices keras.distribution can use in this process, e.g. ["cuda:0", "cuda:1"] or ["cpu:0"]."""
    import keras
    return keras.distribution.list_devices()


def resolve(requested, backend, batch):
    """--devices as a count for this run, checked against the backend, the devices present and the batch;
    every mismatch is a one-line error that says what to do."""
    if requested in (None, 1):
        return 1
    if backend != "jax":
        cli.fail(f"--devices {requested} needs --backend jax: Keras 3 splits batches across devices only under "
                 f"JAX (under {backend}, train_on_batch would give every device the whole batch)")
    available = local_device_names()
    count = len(available) if requested == ALL else requested
    if count > len(available):
        cli.fail(f"--devices {count}: this process sees {len(available)} device(s) ({', '.join(available)}); "
                 "pass a smaller --devices, or on a CPU set XLA_FLAGS=--xla_force_host_platform_device_count="
                 f"{count} to try it")
    if batch % count:
        cli.fail(f"--batch {batch} does not split evenly across {count} devices; pass a --batch that divides "
                 f"by {count}, e.g. {batch - batch % count or count}")
    return count


def use(count):
    """Build what follows over `count` devices (a DataParallel distribution), or on one (none). Call before
    the models are built: their weights are laid out on the devices when they are made."""
    import keras
    if count > 1:
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=local_device_names()[:count]))
    else:
        keras.distribution.set_distribution(None)  # a second run in the same process starts on one device
    return local_device_names()[:count]
