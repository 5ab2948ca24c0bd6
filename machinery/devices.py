"""Several devices: data-parallel training through Keras 3's own keras.distribution (JAX only).

With --devices N the models are built under a DataParallel
distribution over N local devices: every weight is replicated on each, and every train_on_batch splits its
global batch along the first axis, N equal parts, one per device (Keras's JAX trainer shards the arrays a
step trains on; XLA adds up the gradients). The loop itself does not change, and --batch stays the global
batch. Keras 3.15 implements keras.distribution for JAX only; under TensorFlow, train_on_batch inside a
tf.distribute strategy would hand every replica the whole batch, so there --devices above 1 is refused.

Several processes (one per machine, or several on one for a test): --processes N --process-index I
--coordinator HOST:PORT start JAX's distributed runtime through keras.distribution.initialize, and the mesh
then spans every device of every process. Each process runs the same loop on the same global batch
stream (same seed, same shuffle); the batch maker, replicated, draws the step's fakes and noise alike in
all of them, and each process hands train_on_batch only its own slice of the step's arrays, from which
Keras assembles the global batch across processes. Only process 0 writes the run folder.
"""

import os
from collections import namedtuple

from machinery import cli

ALL = "all"
# Keras's own environment variables for keras.distribution.initialize, so a scheduler's setup works too.
ENV = dict(coordinator="KERAS_DISTRIBUTION_JOB_ADDRESSES", processes="KERAS_DISTRIBUTION_NUM_PROCESSES",
           process_index="KERAS_DISTRIBUTION_PROCESS_ID")
Share = namedtuple("Share", "index count")  # this process's place among the processes of a run
ONE_PROCESS = Share(0, 1)


parse_count = cli.int_at_least_or(ALL, 1)  # an argparse type: "all", or a whole number of devices, 1 or more


def add_flag(parser):
    parser.add_argument("--devices", type=parse_count, metavar="N|all",
                        help="train data-parallel on N local devices (GPUs, or CPU devices made with "
                             "XLA_FLAGS=--xla_force_host_platform_device_count=N), or all of them: each step's "
                             "batch is split evenly across them; --batch stays the global batch and must divide "
                             "by N. JAX only (default: 1)")


def add_process_flags(parser):
    parser.add_argument("--processes", type=cli.positive_int, metavar="N", default=_env_int("processes"),
                        help="train as one of N processes (machines) that split every batch: start the same "
                             "command on each, with its own --process-index (JAX only; default: "
                             f"${ENV['processes']}, else 1)")
    parser.add_argument("--process-index", type=cli.non_negative_int, metavar="I", default=_env_int("process_index"),
                        help=f"this process's index, 0 to N - 1; process 0 writes the run folder (default: "
                             f"${ENV['process_index']})")
    parser.add_argument("--coordinator", metavar="HOST:PORT", default=os.environ.get(ENV["coordinator"]),
                        help="address of process 0, which every process connects to, e.g. 10.0.0.1:1234 "
                             f"(default: ${ENV['coordinator']})")


def _env_int(key):
    text = os.environ.get(ENV[key])
    try:
        return int(text) if text else None
    except ValueError:
        cli.fail(f"${ENV[key]}={text} is not a whole number; set it to one, or unset it and pass the flag")


def check_flags(requested, processes, index, coordinator, backend):
    """The --devices and --processes mistakes seen without a device: a backend that cannot split, a missing
    index or address. Needs the backend's name only, so a script tells them before the backend's slow import."""
    _refuse_split_without_jax(requested, processes or 1, backend)
    if processes in (None, 1):
        return
    if index is None or not 0 <= index < processes:
        cli.fail(f"--processes {processes} needs --process-index 0 to {processes - 1} (each process its own; "
                 "0 writes the run folder)")
    if not coordinator:
        cli.fail(f"--processes {processes} needs --coordinator HOST:PORT, the address process 0 listens on "
                 "(e.g. 127.0.0.1:1234 for processes on one machine)")


def _refuse_split_without_jax(requested, processes, backend):
    if processes > 1 and backend != "jax":
        cli.fail(f"--processes {processes} needs --backend jax: Keras 3 trains across processes only under JAX")
    if processes > 1 and requested not in (None, ALL):
        cli.fail(f"--devices {requested} with --processes: a run of several processes uses every device of "
                 "each; drop --devices")
    if requested not in (None, 1) and backend != "jax":
        cli.fail(f"--devices {requested} needs --backend jax: Keras 3 splits batches across devices only under "
                 f"JAX (under {backend}, train_on_batch would give every device the whole batch)")


def start_processes(processes, index, coordinator, backend):
    """Join the run's other processes (JAX's distributed runtime, through keras.distribution.initialize),
    before JAX touches a device. Returns this process's Share; one process: ONE_PROCESS, nothing started."""
    if processes in (None, 1):
        return ONE_PROCESS
    check_flags(None, processes, index, coordinator, backend)
    import jax
    import keras
    # CPU devices of several processes talk through Gloo (GPUs through NCCL, whatever this says).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        keras.distribution.initialize(coordinator, processes, index)
    except Exception as e:  # e.g. a coordinator that never answered: JAX gives up after its timeout
        cli.fail(f"could not join the other processes through {coordinator}: {str(e).splitlines()[0][:200]}; "
                 "check the address, and start every process with the same --processes and --coordinator")
    return Share(index, processes)


def same_everywhere(value):
    """Process 0's value of a whole number, in every process (e.g. the seed, drawn when none was given)."""
    from jax.experimental import multihost_utils
    import numpy as np
    return int(multihost_utils.broadcast_one_to_all(np.int64(value)))


def local_device_names():
    """The devices keras.distribution can use, e.g. ["cuda:0", "cuda:1"] or ["cpu:0"]: this process's, or in a
    run of several processes every process's."""
    import keras
    return keras.distribution.list_devices()


def resolve(requested, backend, batch, share=ONE_PROCESS):
    """--devices as a count for this run, checked against the backend, the devices present and the batch;
    every mismatch is a one-line error that says what to do. Several processes: every device of every one."""
    _refuse_split_without_jax(requested, share.count, backend)
    if share.count > 1:
        requested = ALL
        _check_batch_splits(batch, share.count, "processes")
    if requested in (None, 1):
        return 1
    available = local_device_names()
    count = len(available) if requested == ALL else requested
    if count > len(available):
        cli.fail(f"--devices {count}: there are {len(available)} device(s) ({', '.join(available)}); "
                 "pass a smaller --devices, or on a CPU set XLA_FLAGS=--xla_force_host_platform_device_count="
                 f"{count} to try it")
    _check_batch_splits(batch, count, "devices")
    return count


def _check_batch_splits(batch, count, parts):
    if batch % count:
        cli.fail(f"--batch {batch} does not split evenly across {count} {parts}; pass a --batch that divides "
                 f"by {count}, e.g. {batch - batch % count or count}")


def use(count):
    """Build what follows over `count` devices (a DataParallel distribution), or on one (none). Call before
    the models are built: their weights are laid out on the devices when they are made. Returns the names
    of the devices a batch is split across, none when it is not split (and then nothing asks Keras for
    its devices: under PyTorch keras.distribution has none to list)."""
    import keras
    if count > 1:
        names = local_device_names()[:count]
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=names))
        return names
    keras.distribution.set_distribution(None)  # a second run in the same process starts on one device
    return []
