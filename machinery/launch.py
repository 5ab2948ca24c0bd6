"""From checked flags to a run folder held while training: dcgan.py's `with launch.run_folder(args, ...) as run`.

The run's settings are settled (a new run's from its preset and flags, a resumed one's from its config.json),
the processes of a run of several started, the data read (downloaded by Keras where it was nowhere else),
and the folder locked (cleared first for --overwrite). Process 1, 2, ... of several train the same loop but
write into a scratch folder, removed at the end, and print nothing: process 0 writes and tells.
"""

import contextlib
import os
import tempfile
from pathlib import Path
from types import SimpleNamespace

import data
from machinery import backends, devices, preflight, presets, runs, settings


@contextlib.contextmanager
def run_folder(args, data_read=None):
    """Yields the run: out (its folder), write_to (where this process writes), args, config, data (a
    data.TrainingSet: the images, their classes, the classes' names) and processes (this process's index and
    the count). `data_read`: what preflight.check_and_read_first read, if anything."""
    out = Path(args.out)
    # Before JAX touches a device: a run of several processes starts its distributed runtime first.
    processes = devices.start_processes(args.processes, args.process_index, args.coordinator, backends.current())
    config = settings.for_resume(args, out) if args.resume else settings.from_flags(args)
    if processes.count > 1:  # every process must draw the same stream: process 0's seed, if none was given
        config["seed"] = devices.same_everywhere(config["seed"])
    # Per invocation, not kept by --resume: a run may go on with another number of devices (or machine).
    config["devices"] = devices.resolve(args.devices, backends.current(), config["batch"], processes)
    config["processes"] = processes.count
    config["step"] = settings.which_step(args, config["devices"], processes.count)  # "fused" or "classic"
    if data_read is None:  # in none of the usual places before the backend was chosen: downloaded now, by Keras
        data_read = data.load_training_set(data.find_data_dir(preflight.data_dir_of(args, config)), config["limit"])
        # Again: the data was downloaded only now
        preflight.check_batch_fits(config["batch"], data_read.images, presets.PRESETS[config["preset"]].critic_steps,
                                   config["limit"])
        preflight.check_data_suits(args, config, data_read)
    run = SimpleNamespace(out=out, write_to=out, args=args, config=config, data=data_read, processes=processes)
    if processes.index > 0:
        print(f"process {processes.index} of {processes.count}: training; process 0 writes {out} and shows the "
              "progress")
        with tempfile.TemporaryDirectory(prefix=f"dcgan-process-{processes.index}-") as scratch, \
                open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
            run.write_to = Path(scratch)
            yield run
        return
    with runs.locked(out):
        if args.overwrite:
            runs.clear_run(out)
        yield run
