"""The demo preset's minute, measured as a class would meet it, and printed as one markdown table.

    python tools/minute.py                              # seeds 1, 2, 3 and the curve: about 6 minutes on a CPU
    python tools/minute.py --seeds 1 2 3 4 5 --marks 15 30 45 60
    python tools/minute.py --backend jax --seeds 1

What it runs:
1. for each seed, `dcgan.py --preset demo --seed S` timed as a whole process (start-up, training, frames,
   files), then `evaluate.py` on the generator it saved: FD on 10,000 samples and the classes present;
2. the curve of quality against training time: the demo's models trained in this process on the demo's
   images, in the precision dcgan.py picks, with the classic step, the clock running only while they
   train (the first step's tracing included, as in a run), and G as the pictures show it judged (the
   judge's quick scorer, 10,000 samples) after each mark of seconds. It goes past the preset's one epoch
   where the marks ask for more, so that the curve shows what a longer minute would buy.
Everything lands in --out: a run folder per seed, minute.md (the table) and minute.json (every figure, kept
up to date after each seed, so a measurement cut short keeps what it finished).
"""

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the lesson and machinery/ are one folder up

from machinery import backends, cli
from tools.measure import cpu_name, run_step

PRESET = "demo"


def parse_args(argv=None):
    p = cli.OneLineParser(prog="tools/minute.py", description="Time the demo preset's minute and judge what it "
                                                              "drew, for several seeds, and its curve of quality")
    p.add_argument("--seeds", type=cli.seed, nargs="+", default=[1, 2, 3], help="one run each (default: 1 2 3)")
    p.add_argument("--marks", type=cli.positive_int, nargs="*", default=[15, 30, 45, 60], metavar="S",
                   help="seconds of training after which the curve is scored (default: 15 30 45 60); "
                        "--marks alone: no curve")
    backends.add_flag(p)
    p.add_argument("--samples", type=cli.positive_int, default=10_000,
                   help="images the judge scores, for each run and at each mark (default: 10000)")
    p.add_argument("--data-dir", metavar="FOLDER", help="the Fashion-MNIST folder, as dcgan.py takes it")
    p.add_argument("--out", default="runs/minute", help="folder for the runs and the table (default: runs/minute)")
    return p.parse_args(argv)


def time_the_runs(args, out, backend):
    """Each seed's whole-process run and its judge's figures: a list of dicts, also written to minute.json
    after each seed."""
    environment = {"KERAS_BACKEND": backend}
    data = ["--data-dir", args.data_dir] if args.data_dir else []
    rows = []
    for seed in args.seeds:
        run = out / f"seed_{seed}"
        seconds, _ = run_step(f"seed {seed}", ["dcgan.py", "--preset", PRESET, "--seed", seed, "--out", run,
                                               "--overwrite", *data], out / f"seed_{seed}.log", environment)
        run_step(f"seed {seed}, judged", ["evaluate.py", "--run", run, "--samples", args.samples, *data],
                 out / f"seed_{seed}_eval.log", environment)
        judged = json.loads((run / "eval.json").read_text())["generated"]
        rows.append(dict(seed=seed, seconds=round(seconds, 1), fd=round(judged["fd"], 1),
                         classes=judged["classes_covered"], recall=judged["recall"],
                         class_agreement=judged["class_agreement"]))
        (out / "minute.json").write_text(json.dumps(dict(device=cpu_name(), backend=backend, runs=rows), indent=1))
    return rows


def curve(args, seed):
    """One dict (seconds trained, steps, fd, classes) at each of args.marks: the demo trained in this process."""
    import keras
    import numpy as np

    import data
    from machinery import averaging, judge, presets, sampling, training

    preset = presets.PRESETS[PRESET]
    config = {**presets.settings_of(preset), "seed": seed, "precision": backends.resolve_precision("auto")}
    keras.mixed_precision.set_global_policy(config["precision"])
    keras.utils.set_random_seed(seed)
    images, classes = data.load_split("train", args.data_dir, limit=preset.limit)
    real = data.scale_pixels(images, preset.pixel_range)
    built = training.build(config, "auto")
    score = judge.make_quick_scorer(args.data_dir)
    order = np.random.default_rng(seed)
    marks, trained, steps, points = sorted(set(args.marks)), 0.0, 0, []
    while marks:
        rows = order.permutation(len(real))
        for start in range(0, len(rows) - preset.batch + 1, preset.batch):
            batch = rows[start:start + preset.batch]
            began = time.perf_counter()
            built.step([real[batch], classes[batch, None].astype("int32")])
            trained += time.perf_counter() - began
            steps += 1
            if trained >= marks[0]:
                marks.pop(0)
                with averaging.as_shown(built.generator, built.average, preset.noise, preset.latent):
                    drawn = sampling.sample(built.generator, args.samples, preset.noise, preset.pixel_range, seed,
                                            classes=sampling.every_class(args.samples))
                judged = score(drawn)
                points.append(dict(seconds=round(trained, 1), steps=steps, fd=round(judged["fd"], 1),
                                   classes=judged["classes_covered"]))
                print(f"   {trained:.0f} s of training, {steps} steps: FD {judged['fd']:.1f}, "
                      f"{judged['classes_covered']} classes", flush=True)
                if not marks:
                    break
    return points


def table(device, backend, runs, points, samples):
    lines = [f"`tools/minute.py` on {device}, {backend}:", "",
             f"| seed | whole process | FD ({samples:,} samples) | classes >= 5% | class agreement | recall |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['seed']} | {r['seconds']:.0f} s | {r['fd']:.1f} | {r['classes']} | {r['class_agreement']:.2f} | "
              f"{r['recall']:.3f} |" for r in runs]
    if points:
        lines += ["", "| seconds of training | " + " | ".join(f"{p['seconds']:.0f}" for p in points) + " |",
                  "|---|" + "---|" * len(points),
                  "| steps | " + " | ".join(str(p["steps"]) for p in points) + " |",
                  "| FD (classes) | " + " | ".join(f"{p['fd']:.0f} ({p['classes']})" for p in points) + " |"]
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    backend = backends.chosen(args.backend)  # its name only: the runs import it in their own processes
    runs = time_the_runs(args, out, backend)
    points = []
    if args.marks:
        backends.use(backend)
        points = curve(args, args.seeds[0])
    report = table(cpu_name(), backend, runs, points, args.samples)
    (out / "minute.md").write_text(report + "\n")
    (out / "minute.json").write_text(json.dumps(dict(device=cpu_name(), backend=backend, runs=runs, curve=points),
                                                indent=1))
    print("\n" + report)
    return dict(runs=runs, curve=points)


if __name__ == "__main__":
    try:
        cli.run(main)
    except KeyboardInterrupt:
        cli.fail("interrupted; the seeds that finished are in --out's minute.json", status=130)
