"""Measure the kit on this machine in one go, as a user would run it, and print one markdown table.

    python tools/measure.py --quick                        # a few minutes on a CPU: a short try of every step
    python tools/measure.py                                # the used-by command, evaluate.py, then bench.py
    python tools/measure.py --backend jax --data-dir .data --out runs/measure-gpu

What it runs, each step its own process (so start-up counts, as it does for a user), the headline first (so
a measurement cut short, as on a GPU lent for minutes, still has it; each step's time is printed as it ends):
1. the used-by command, `dcgan.py --epochs 10 --batch 32` (the default preset, all 60,000 images),
   timed as a whole process, with its peak memory, as a first run: under JAX with an empty cache of
   compiled programs, as a user's first run has;
2. `evaluate.py` on the generator it trained;
3. `bench.py` for legacy and for kit at batch 32: the seed article's naive loop against the kit's fast
   one, in float32 and mixed_bfloat16, and with G's upsampling in the form this backend does not use
   (sub-pixel or transposed: is backends.SUBPIXEL_PAYS right on this device?), where a fast step's time
   goes (its calls, and for kit the update of G's weight average), and the floor of one train_on_batch
   call on this machine.
Everything lands in one folder (--out): bench_legacy.json, bench_kit.json, the run folder train/ (its
eval.json included), measure.md (the table) and measure.json (every figure).
`--quick` shrinks each step (8 timed steps x 3 rounds, 1 epoch on 3,200 images, 2,000 samples): the
figures are then a smoke test of the machine, not ones to quote.
"""

import json
import os
import sys
import tempfile
from pathlib import Path

# Run as `python tools/measure.py`, Python looks for modules in tools/: the lesson and machinery/ are one
# folder up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from machinery import backends, cli, runs

BENCHED_PRESETS = ("legacy", "kit")
# The budget of each step: the full measurement, and --quick's. Each can be changed by its own flag.
FULL = dict(steps=30, rounds=5, warmup=10, epochs=10, limit=None, samples=10_000)
QUICK = dict(steps=8, rounds=3, warmup=3, epochs=1, limit=3200, samples=2_000)


def cpu_name(cpuinfo="/proc/cpuinfo"):
    """'Intel(R) Xeon(R) ... (AVX512-BF16, AMX)': the model and the bfloat16 hardware that decides the
    CPU figures (an AVX2-only CPU runs bfloat16 8x slower than float32)."""
    try:
        text = open(cpuinfo).read()
    except OSError:
        return "unknown CPU"
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")),
                 "unknown CPU")
    extras = [name for flag, name in backends.BFLOAT16_FLAGS.items() if flag in text]
    return f"{model} ({', '.join(extras) or 'no bfloat16 hardware'}), {os.cpu_count()} cores"


def run_step(name, words, log, environment=None):
    """Run one step of the measurement as its own process (cli.run_script). Returns (seconds, peak memory in
    MB). A step that fails stops the measurement with its last line."""
    print(f"\n== {name}: {cli.command('python', *words)}", flush=True)
    status, seconds, peak_mb, last = cli.run_script(words, log, environment)
    if status != 0:
        cli.fail(f"{name} failed ({last}); its whole output is in {log}")
    print(f"   {seconds:.1f} s, peak {peak_mb:.0f} MB", flush=True)  # said at once: a cut-short run keeps it
    return seconds, peak_mb


def bench_rows(report):
    """One table row per preset: each loop in images/s (naive, fast, fast + mixed_bfloat16, fast with the
    other form of G's upsampling), the fast ones with their ratio to naive."""
    speed = {loop["loop"]: loop["images_per_s"] for loop in report["loops"]}
    naive = speed.pop("naive")
    cells = [f"{naive:.0f}"] + [f"{images_per_s:.0f} ({images_per_s / naive:.2f}x)" for images_per_s in speed.values()]
    return (f"| bench.py, {report['preset']}, batch {report['batch']}: naive / {' / '.join(speed)} | "
            + " / ".join(cells) + " img/s |")


def call_rows(report):
    """Where the fast loop's float32 step goes: its calls, G's average (kit), the rest, in ms, and how much
    of the step the main thread was busy (its CPU time: the host's share), from bench.py."""
    fast = next(loop for loop in report["loops"] if loop["loop"] == "fast")
    calls = fast["ms_per_call"]
    return (f"| where a fast step's time goes, {report['preset']}: " + " / ".join(calls) + " | "
            + " / ".join(f"{ms:.2f}" for ms in calls.values()) + f" ms; the main thread busy "
            f"{fast['main_thread_ms_per_step']:.1f} of the step's {fast['ms_per_step']:.1f} ms |")


def fused_rows(report):
    """The fused loop's step (bench.py --fused-step), beside the fast one's: ms and the main thread's share."""
    fused = [loop for loop in report["loops"] if loop["loop"].startswith("fused")]
    return [f"| one compiled call a step (--fused-step), {report['preset']}: ms per step | {loop['ms_per_step']:.2f} "
            f"ms; the main thread busy {loop['main_thread_ms_per_step']:.1f} |" for loop in fused]


def table(device, backend, benches, train, evaluation, command):
    fd_low, fd_high = evaluation["fd_interval"]
    lines = [f"Measured with `{command}` on {device}, {backend}:",
             "", "| step | result |", "|---|---|"]
    lines += [bench_rows(report) for report in benches]
    lines += [call_rows(report) for report in benches]
    lines += [row for report in benches for row in fused_rows(report)]
    floor = benches[0]
    trained, frozen = floor["gan_variables"]
    lines.append(f"| floor of one train_on_batch call, batch 1: one Dense(1), SGD / {trained} trained and {frozen} "
                 f"frozen variables as {floor['preset']}'s GAN call, Adam / of which one op launched and read back | "
                 f"{floor['train_on_batch_floor_ms']:.2f} / {floor['train_on_batch_floor_gan_ms']:.2f} / "
                 f"{floor['round_trip_ms']:.3f} ms; a step makes 2, after the batch maker's launch |")
    lines.append(f"| training, whole process, a first run: `{train['command']}` | {train['seconds']:.0f} s, "
                 f"{train['images_per_s']:.0f} img/s over the run, peak {train['peak_mb']:.0f} MB |")
    lines.append(f"| evaluate.py, {evaluation['samples']:,} samples, whole process | {evaluation['seconds']:.0f} s, "
                 f"peak {evaluation['peak_mb']:.0f} MB: FD {evaluation['fd']:.1f} ({fd_low:.1f}-{fd_high:.1f}), "
                 f"{evaluation['classes_covered']} classes, precision {evaluation['precision']:.2f}, "
                 f"recall {evaluation['recall']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = cli.OneLineParser(prog="tools/measure.py", description="Measure the kit on this machine: bench.py, the used-by "
                                                         "command as a whole process, evaluate.py; one table.")
    p.add_argument("--quick", action="store_true",
                   help="a few minutes on a CPU: 8 timed steps x 3 rounds per loop, 1 epoch on 3,200 images, "
                        "2,000 samples (default: bench.py's defaults, 10 epochs on all 60,000, 10,000 samples)")
    p.add_argument("--out", default="measure", help="folder for everything it writes (default: measure)")
    p.add_argument("--overwrite", action="store_true", help="replace the measurement already in --out")
    p.add_argument("--seed", type=cli.seed, default=0, help="seed of the training run, 0 to 2**32 - 1 (default: 0)")
    p.add_argument("--data-dir", help="folder with the four Fashion-MNIST .gz files (default: the usual search)")
    backends.add_flag(p)  # handed to every step
    p.add_argument("--fused-step", action="store_true",
                   help="train with dcgan.py --fused-step (one compiled call a step; JAX only), and time that "
                        "loop in bench.py too (default: the classic calls, --classic-step, on a GPU too)")
    p.add_argument("--steps", type=cli.positive_int, help="bench.py's timed steps per round (full: 30, quick: 8)")
    p.add_argument("--rounds", type=cli.positive_int, help="bench.py's rounds per loop (full: 5, quick: 3)")
    p.add_argument("--warmup", type=cli.non_negative_int,
                   help="bench.py's untimed steps before each loop's rounds (full: 10, quick: 3)")
    p.add_argument("--epochs", type=cli.int_at_least(1, 10_000),
                   help="epochs of the training run (full: 10, quick: 1)")
    p.add_argument("--limit", type=cli.positive_int, metavar="N",
                   help="train on the first N images only (full: all 60,000, quick: 3,200)")
    p.add_argument("--samples", type=cli.int_at_least(100, 60_000),
                   help="images evaluate.py scores (full: 10,000, quick: 2,000)")
    args = p.parse_args(argv)
    if args.fused_step and backends.chosen(args.backend) != "jax":
        cli.fail("--fused-step trains with dcgan.py --fused-step, which runs under JAX only; pass --backend jax")
    out = Path(args.out)
    mode = "quick" if args.quick else "full"
    budget = dict(QUICK if args.quick else FULL)
    budget.update({key: getattr(args, key) for key in ("steps", "rounds", "warmup", "epochs", "limit", "samples")
                   if getattr(args, key) is not None})
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        cli.fail(f"{out} already holds a measurement; pass --overwrite or another --out")
    out.mkdir(parents=True, exist_ok=True)
    runs.check_writable(out)
    common = (["--backend", args.backend] if args.backend else [])
    data = (["--data-dir", args.data_dir] if args.data_dir else [])
    fused = ["--fused-step"] if args.fused_step else []

    run = out / "train"
    train_words = ["dcgan.py", "--epochs", str(budget["epochs"]), "--batch", "32",
                   *(["--limit", str(budget["limit"])] if budget["limit"] else []),
                   "--seed", str(args.seed), "--out", str(run), "--overwrite", *data, *common,
                   *(fused or ["--classic-step"])]  # the step asked for, not the GPU's default
    with tempfile.TemporaryDirectory(prefix="compile_cache_") as empty:  # a first run: nothing compiled yet
        seconds, peak_mb = run_step("the used-by command", train_words, out / "train.log",
                                    environment={"JAX_COMPILATION_CACHE_DIR": empty})
    config = json.loads((run / "config.json").read_text())
    steps = len((run / "steps.csv").read_text().splitlines()) - 1  # a header, then one row per step
    trained = steps * config["batch"]
    train = dict(command=cli.command("python", *train_words), seconds=seconds, peak_mb=peak_mb,
                 images_per_s=trained / seconds, preset=config["preset"], precision=config["precision"])

    eval_words = ["evaluate.py", "--run", str(run), "--samples", str(budget["samples"]), *data, *common]
    eval_seconds, eval_peak_mb = run_step("evaluate.py", eval_words, out / "evaluate.log")
    report = json.loads((run / "eval.json").read_text())
    evaluation = dict(report["generated"], samples=report["samples"], seconds=eval_seconds, peak_mb=eval_peak_mb)

    benches = []
    for preset in BENCHED_PRESETS:
        json_file = out / f"bench_{preset}.json"
        words = ["tools/bench.py", "--preset", preset, "--batch", "32", "--both-upsamplers",
                 "--steps", str(budget["steps"]), "--rounds", str(budget["rounds"]), "--warmup", str(budget["warmup"]),
                 "--json", str(json_file)]
        run_step(f"bench {preset}", words + common + fused, out / f"bench_{preset}.log")
        benches.append(json.loads(json_file.read_text()))

    device, backend = benches[0]["device"], benches[0]["backend"]
    # bench.py's "jax on GPU (NVIDIA H200)": there the host's speed sets a batch-32 step's pace, so name it too
    device = cpu_name() if "CPU" in device else f"{device.split(' on ', 1)[1]}, host {cpu_name()}"
    command = cli.command("python", "tools/measure.py", *(sys.argv[1:] if argv is None else argv))
    text = table(device, backend, benches, train, evaluation, command)
    (out / "measure.md").write_text(text)
    everything = dict(mode=mode, budget=budget, device=device, backend=backend, benches=benches, train=train,
                      evaluation=evaluation)
    (out / "measure.json").write_text(json.dumps(everything, indent=2) + "\n")
    print("\n" + text + f"\nwrote {out / 'measure.md'} and {out / 'measure.json'}; the run is in {run}")
    return dict(benches=benches, train=train, evaluation=evaluation)


if __name__ == "__main__":
    try:
        cli.run(main)
    except KeyboardInterrupt:
        cli.fail("interrupted; what finished is in --out", status=130)
