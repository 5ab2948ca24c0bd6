"""How fast does the classic loop train? The kit's loop against the seed article's, in one run.

    python tools/bench.py                                  # legacy, batch 32: naive, fast, fast + bfloat16
    python tools/bench.py --preset tutorial --batch 256 --steps 4
    python tools/bench.py --naive                          # only the seed article's loop
    python tools/bench.py --fast --xla                     # the kit's loop compiled with XLA (slower on a CPU)

Both loops are the design card's: D.train_on_batch on fakes + reals, then gan.train_on_batch on noise
labelled real, with D unfrozen around its own step. They differ only in how a step is fed:
- naive (as the article wrote it): a numpy batch, an eager G(noise) call, labels rebuilt every step,
  noise made on the host;
- fast (dcgan.py's): the data kept as one tensor on the device, fakes, noise and labels made inside one
  compiled call, labels made once (train_step.make_train_step).
The loops take turns, round after round, and each reports its median round: images per second (real
images consumed), milliseconds per step, seconds per 60,000-image epoch, the slowest and fastest round,
and the process's peak resident memory. Random weights and random data: speed does not depend on them.
For the fast loop it also says where a step's time goes: milliseconds in each of its three calls (the
batch maker, D's train_on_batch, the GAN's; the last two wait for their results, the batch maker's
stay on the device, so where the device queues work its time shows up in D's call), in the update of G's
weight average where the preset keeps one (kit), and the rest (Python between them). Last, the floor of
one train_on_batch call on this machine (one Dense(1), and as many variables as the GAN's call): what
each of a step's two waiting calls costs before any arithmetic, and how much of that is the device's
(one tiny op launched and read back). Each loop's `main thread` figure is the host's share of a step: how
long the main thread was busy (its CPU time, not its waits). `--both-upsamplers` also times the fast loop
with G's stride-2 upsampling in the form this backend does not use (sub-pixel or Keras's Conv2DTranspose;
backends.SUBPIXEL_PAYS), so one run on a new device says whether that choice holds there. `--json FILE`
also writes every figure there (measure.py reads it).
"""

import contextlib
import functools
import json
import resource
import time
import sys
from pathlib import Path

import numpy as np

# Run as `python tools/bench.py`, Python looks for modules in tools/: the lesson and machinery/ are one
# folder up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from machinery import backends, cli, presets

FULL_EPOCH = 60_000

# models and steps import Keras: they are imported inside the functions, after main() chose the backend.


def naive_step_function(generator, discriminator, gan, batch, preset, images):
    """The seed article's step, line for line in spirit: everything rebuilt on the host every step. A deliberate
    variant of models.train_step (the same two calls, fed the slow way), kept to time against it."""
    import keras
    import models

    def draw_noise():
        if preset.noise == "uniform":
            return np.random.uniform(-1, 1, (batch, preset.latent)).astype("float32")
        return np.random.normal(size=(batch, preset.latent)).astype("float32")

    def step(index):
        real = images[index]                                      # a numpy batch, copied in every step
        noise = draw_noise()
        fake = generator(noise, training=preset.fakes_in_training_mode)  # eager call
        x = keras.ops.concatenate([fake, real], axis=0)
        y = np.array([[0.0]] * batch + [[1.0]] * batch, "float32")  # labels rebuilt every step
        d_loss, _, _ = models.train_discriminator(discriminator, x, y)
        noise = draw_noise()
        g_loss = models.train_generator(gan, discriminator, noise, np.array([[1.0]] * batch, "float32"))
        return d_loss, g_loss
    return step


def upsampler_name(subpixel):
    return "sub-pixel G" if subpixel else "transposed G"


@contextlib.contextmanager
def other_upsampler():
    """Models built inside get G's stride-2 upsampling in the form backends.SUBPIXEL_PAYS does not pick for
    this backend (models.upsampling_conv reads it as it builds), so both forms can be timed in one run."""
    backend, chosen = backends.current(), backends.SUBPIXEL_PAYS
    backends.SUBPIXEL_PAYS = {**chosen, backend: not chosen[backend]}
    try:
        yield upsampler_name(backends.SUBPIXEL_PAYS[backend])
    finally:
        backends.SUBPIXEL_PAYS = chosen


def prepare(kind, preset, batch, steps, seed, precision, xla, flip_upsampler=False):
    """A fresh G, D and GAN for one loop, and step(i) that trains them on the i-th of `steps` random batches.
    `flip_upsampler`: G upsamples in the form this backend does not use (other_upsampler)."""
    from machinery import averaging
    import keras
    import models
    from machinery import train_step

    keras.mixed_precision.set_global_policy(precision)  # output layers stay float32 (see models.py)
    keras.utils.set_random_seed(seed)
    jit_compile = True if xla else "auto"
    with other_upsampler() if flip_upsampler else contextlib.nullcontext():
        generator, discriminator, gan = models.build_gan(preset, jit_compile=jit_compile)
    low, high = preset.pixel_range
    images = np.random.default_rng(seed).uniform(low, high, (max(4096, batch), 28, 28, 1)).astype("float32")
    indices = np.random.default_rng(seed).integers(0, len(images), (steps, batch))
    gan_variables = (len(gan.trainable_variables), len(gan.non_trainable_variables))  # D frozen: G's trained
    if kind == "naive":
        naive = naive_step_function(generator, discriminator, gan, batch, preset, images)

        def step(i):
            return naive(indices[i])
        step.gan_variables = gan_variables
        return step
    batch_maker = train_step.BatchMaker(generator, preset.noise, seed, preset.label_noise,
                                        preset.fakes_in_training_mode)
    on_device = keras.ops.convert_to_tensor(images)

    # A preset that shows G's weight average (kit) updates it after every step, in dcgan.py's step: so here too.
    average = averaging.GeneratorAverage(generator, preset.average_decay) if preset.average_decay else None
    if kind == "fused":  # dcgan.py --fused-step: the same three parts and the average, one compiled call
        from machinery import fused_step
        fused = fused_step.FusedStep(discriminator, gan, batch_maker, batch, average)

        def step(i):
            return fused(keras.ops.take(on_device, indices[i], axis=0))
        step.gan_variables = gan_variables
        return step
    fast = train_step.make_train_step(discriminator, gan, batch_maker, batch, jit_compile, average=average)

    def step(i):
        return fast(keras.ops.take(on_device, indices[i], axis=0))
    calls = {"batch maker": (batch_maker, "make"), "D": (discriminator, "train_on_batch"),
             "GAN": (gan, "train_on_batch")}
    step.calls = clock_calls({**calls, "G's average": (average, "update")} if average else calls)
    step.gan_variables = gan_variables
    return step


def clock_calls(calls):
    """Wrap each named (model, method) so that its calls add their seconds and count to the returned
    {name: [seconds, calls]}. Only bench.py's own models are wrapped; the training code is not touched."""
    clocked = {name: [0.0, 0] for name in calls}

    def clock(name, method):
        @functools.wraps(method)
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                clocked[name][0] += time.perf_counter() - started
                clocked[name][1] += 1
        return timed

    for name, (model, method_name) in calls.items():
        setattr(model, method_name, clock(name, getattr(model, method_name)))
    return clocked


def measure(loops, batch, steps, warmup, rounds):
    """Time `steps` steps of each loop, `rounds` times with the loops taking turns; keep each median round.

    Taking turns matters on a shared machine: a noisy neighbour or a clock change then slows every loop's
    rounds alike instead of one loop's whole run, so the ratios hold even where the absolute figures drift.
    `loops` maps a name to (precision, a function that prepares the loop's step).
    """
    import keras

    step_of = {}
    for name, (precision, prepare_loop) in loops.items():
        step_of[name] = prepare_loop()
        for i in range(warmup):  # tracing and first-call costs are not what a 10-epoch run pays per step
            step_of[name](i % steps)
        for clocked in getattr(step_of[name], "calls", {}).values():
            clocked[:] = [0.0, 0]  # nor what the warm-up's calls took
    seconds = {name: [] for name in loops}
    busy = {name: [] for name in loops}  # the main thread's CPU seconds: Python and bookkeeping, not waits
    for _ in range(rounds):
        for name, (precision, _) in loops.items():
            keras.mixed_precision.set_global_policy(precision)
            started, started_busy = time.perf_counter(), time.thread_time()
            for i in range(steps):
                step_of[name](i)
            seconds[name].append(time.perf_counter() - started)
            busy[name].append(time.thread_time() - started_busy)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    results = []
    for name, round_seconds in seconds.items():
        speeds = sorted(steps * batch / s for s in round_seconds)
        median = float(np.median(speeds))
        result = dict(loop=name, images_per_s=median, ms_per_step=1000 * batch / median,
                      s_per_epoch=FULL_EPOCH / median, slowest=speeds[0], fastest=speeds[-1], peak_mb=peak_mb,
                      main_thread_ms_per_step=1000 * float(np.median(busy[name])) / steps)
        result["gan_variables"] = step_of[name].gan_variables  # what the GAN's call reads: trained, frozen
        calls = getattr(step_of[name], "calls", None)
        if calls:  # mean over all timed rounds, as the rest is: the step's mean time less its calls'
            result["ms_per_call"] = {part: 1000 * spent / count for part, (spent, count) in calls.items()}
            mean_step_ms = 1000 * sum(round_seconds) / (rounds * steps)
            result["ms_per_call"]["rest"] = mean_step_ms - sum(result["ms_per_call"].values())
        results.append(result)
    return results


def median_ms(call, calls=100, repeats=5, warmup=20):
    """Milliseconds per call(): the median of `repeats` runs of `calls` calls, after `warmup` untimed ones
    (the first traces and compiles). The median: a busy neighbour spoils one run, not the figure."""
    for _ in range(warmup):
        call()
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls):
            call()
        runs.append(1000 * (time.perf_counter() - started) / calls)
    return float(np.median(runs))


def train_on_batch_floor(trained=None, frozen=0, optimizer="sgd"):
    """Milliseconds per train_on_batch at batch 1 on a model of one-number weights: what a call costs before
    any arithmetic (Python, Keras's bookkeeping, launching the compiled step, the loss read back to the
    host). A step of the kit's loop makes two such calls (D, GAN) after the batch maker's launch, so on a
    device fast enough that the arithmetic of batch 32 is nothing (a GPU), they are the step's floor.
    Keras's bookkeeping grows with the variables a call reads and updates (each gathered, handed over and
    assigned back; with Adam, two moments each): so main() times it on one Dense(1) (a kernel and a bias,
    `trained` None) with SGD, and on as many trained and frozen variables as the preset's GAN call, with
    Adam, as the kit trains."""
    import keras

    layers = ([keras.layers.Dense(1)] if trained is None else  # frozen ones are only read, as the GAN reads D
              [keras.layers.Dense(1, use_bias=False, trainable=i < trained) for i in range(trained + frozen)])
    model = keras.Sequential([keras.Input((1,)), *layers])
    model.compile(optimizer=optimizer, loss="mse")
    x = np.ones((1, 1), "float32")
    return median_ms(lambda: model.train_on_batch(x, x))


def round_trip_ms():
    """Milliseconds to launch one tiny op on the device and read its result back to the host: the part of a
    train_on_batch call's floor that a call pays whatever Keras does (the backend's dispatch, the device's
    launch, copy and wait). The rest of the floor is Python and Keras's bookkeeping, which no faster device
    shortens."""
    import keras

    x = keras.ops.ones((1, 1))
    return median_ms(lambda: keras.ops.convert_to_numpy(keras.ops.add(x, 1.0)))


def main(argv=None):
    p = cli.OneLineParser(prog="tools/bench.py", description="Time the training loop: fast (the kit's) vs naive "
                                                       "(the seed article's), in one run.")
    # The conditional and WGAN-GP presets are left out: the naive loop times the seed article's loop, one-input
    # models and one BCE step of D a step of G.
    timed = [name for name, preset in presets.PRESETS.items() if not preset.conditional and preset.critic_steps == 1]
    p.add_argument("--preset", default=presets.DEFAULT_PRESET, choices=timed, metavar="NAME",
                   help=f"preset to time (default: {presets.DEFAULT_PRESET}); one of {', '.join(timed)}")
    p.add_argument("--batch", type=cli.int_at_least(1, 4096),
                   help="batch size, 1 to 4096 (default: the preset's)")
    p.add_argument("--steps", type=cli.positive_int, default=30,
                   help="timed steps per round, 1 or more (default: 30)")
    p.add_argument("--rounds", type=cli.positive_int, default=5,
                   help="rounds per loop, 1 or more, the loops taking turns; each loop's median round is "
                        "reported (default: 5)")
    p.add_argument("--warmup", type=cli.non_negative_int, default=10,
                   help="untimed steps first, 0 or more (default: 10)")
    p.add_argument("--seed", type=cli.seed, default=0, help="random seed, 0 to 2**32 - 1 (default: 0)")
    p.add_argument("--precision", choices=["float32", "mixed_bfloat16", "mixed_float16", "both"], default="both",
                   help="compute precision of the fast loop; 'both' times float32 and mixed_bfloat16 "
                        "(default: both; the naive loop is always float32, as the article ran it)")
    p.add_argument("--xla", action="store_true",
                   help="compile the fast loop's steps with XLA (jit_compile=True) whatever the device "
                        "(default: Keras's 'auto': under TensorFlow on with a GPU and off on a CPU, where it "
                        "measured 6.7x slower than even the naive loop; JAX always compiles with XLA)")
    p.add_argument("--both-upsamplers", action="store_true",
                   help="also time the fast loop with G's stride-2 upsampling in the form this backend "
                        "does not use: Keras's Conv2DTranspose under JAX, the sub-pixel form elsewhere (default: "
                        "only the backend's own; measure.py asks for both)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--naive", action="store_true", help="time only the seed article's loop")
    which.add_argument("--fast", action="store_true", help="time only the kit's loop")
    p.add_argument("--fused-step", action="store_true",
                   help="also time the fast loop run as one compiled call a step (dcgan.py --fused-step; JAX "
                        "only), in the first fast loop's precision")
    p.add_argument("--json", metavar="FILE", help="also write every figure to FILE, as JSON")
    backends.add_flag(p)
    args = p.parse_args(argv)
    if args.fused_step and (backends.chosen(args.backend) != "jax" or args.naive):
        cli.fail("--fused-step times dcgan.py --fused-step, which runs under JAX only; pass --backend jax, and "
                 "leave out --naive")
    backends.use(args.backend)

    preset = presets.PRESETS[args.preset]
    if problem := presets.row_problem(preset):  # a row of your own, told as dcgan.py tells it
        cli.fail(f"preset {preset.name} in machinery/presets.py {problem}; mend its row")
    batch = args.batch or preset.batch
    kinds = ["naive"] if args.naive else ["fast"] if args.fast else ["naive", "fast"]
    precisions = ["float32", "mixed_bfloat16"] if args.precision == "both" else [args.precision]
    loops = {}
    for kind in kinds:
        for precision in (precisions if kind == "fast" else ["float32"]):  # the article ran float32
            xla = args.xla and kind == "fast"
            name = " ".join([kind] + [precision] * (precision != "float32") + ["xla"] * xla)
            loops[name] = (precision, functools.partial(prepare, kind, preset, batch, args.steps, args.seed,
                                                        precision, xla))
    if args.fused_step:
        precision = precisions[0]
        name = " ".join(["fused"] + [precision] * (precision != "float32"))
        loops[name] = (precision, functools.partial(prepare, "fused", preset, batch, args.steps, args.seed,
                                                    precision, True))
    flipped = None
    if args.both_upsamplers and "fast" in kinds:  # beside the first fast loop, in its precision
        precision = precisions[0]
        other = upsampler_name(not backends.SUBPIXEL_PAYS[backends.current()])
        name = " ".join(["fast", other] + [precision] * (precision != "float32") + ["xla"] * args.xla)
        loops[name] = (precision, functools.partial(prepare, "fast", preset, batch, args.steps, args.seed,
                                                    precision, args.xla, flip_upsampler=True))
        own = next(loop for loop in loops if loop.startswith("fast"))  # the first fast loop: the backend's G
        flipped = (own, name)
    device = backends.describe_device()
    print(f"preset {preset.name}, batch {batch}, {args.rounds} rounds of {args.steps} steps after "
          f"{args.warmup} warm-up, with {device}")
    try:
        results = measure(loops, batch, args.steps, args.warmup, args.rounds)
    except Exception as e:
        if (failed := backends.compiler_failure(e)) is None:
            raise
        cli.fail(failed, status=1)
    print(f"{'loop':21} {'images/s':>9} {'slowest-fastest':>16} {'ms/step':>8} {'s/epoch':>8} {'main thread':>12}")
    for r in results:
        print(f"{r['loop']:21} {r['images_per_s']:9.0f} {r['slowest']:>8.0f}-{r['fastest']:<7.0f} "
              f"{r['ms_per_step']:8.1f} {r['s_per_epoch']:8.0f} {r['main_thread_ms_per_step']:9.1f} ms")
    print("main thread: its CPU time per step, the host's share (Python, Keras's bookkeeping, launches; on a "
          "CPU also what a backend computes on that thread); where it nears ms/step, the host sets the pace")
    print(f"peak memory of this process: {results[-1]['peak_mb']:.0f} MB")
    for r in results:
        if "ms_per_call" in r:
            print(f"where a {r['loop']} step's time goes, ms: " + ", ".join(
                f"{part} {ms:.2f}" for part, ms in r["ms_per_call"].items()))
    if results[0]["loop"] == "naive":
        for r in results[1:]:
            print(f"speed-up {r['loop']} / naive: {r['images_per_s'] / results[0]['images_per_s']:.2f}x")
    if flipped:
        speed = {r["loop"]: r["images_per_s"] for r in results}
        own = upsampler_name(backends.SUBPIXEL_PAYS[backends.current()])
        print(f"{flipped[0]} ({own}) / {flipped[1]}: {speed[flipped[0]] / speed[flipped[1]]:.2f}x (above 1: "
              f"backends.SUBPIXEL_PAYS[{backends.current()!r}] chose the faster G here)")
    floor_ms = train_on_batch_floor()
    trained, frozen = results[0]["gan_variables"]
    gan_floor_ms = train_on_batch_floor(trained, frozen, optimizer="adam")
    trip_ms = round_trip_ms()
    print(f"floor of one train_on_batch call here, batch 1: {floor_ms:.2f} ms on one Dense(1) with SGD, "
          f"{gan_floor_ms:.2f} ms on {trained} trained and {frozen} frozen one-number variables with Adam (as the "
          f"GAN's call); a step makes 2, after the batch maker's launch. Of it, one op launched on the device and "
          f"read back takes {trip_ms:.3f} ms; the rest is Python and Keras's bookkeeping")
    if args.json:
        report = dict(device=device, backend=backends.current(), preset=preset.name, batch=batch,
                      steps=args.steps, rounds=args.rounds, loops=results, train_on_batch_floor_ms=floor_ms,
                      gan_variables=[trained, frozen], train_on_batch_floor_gan_ms=gan_floor_ms,
                      round_trip_ms=trip_ms)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return results


if __name__ == "__main__":
    try:
        cli.run(main)
    except KeyboardInterrupt:
        cli.fail("interrupted; bench.py writes no files, so nothing is lost", status=130)
