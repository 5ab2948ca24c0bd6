"""One setting, several values, each trained with several seeds: is what the setting did bigger than luck?

    python tools/sweep.py lr 0.001 0.0002 --epochs 1 --limit 6400              # seeds 1 2 3 -> sweeps/lr/sweep.png
    python tools/sweep.py preset legacy kit --seeds 1 2 --epochs 1 --limit 6400 --out sweeps/presets
    python tools/sweep.py lr 0.001 0.0002 --seeds 1 2 3 4 --epochs 1 --limit 6400   # later: a 4th seed, the rest kept

Two runs that differ in one setting (compare.py) also differ in luck: the weights they started from, the
order of their batches, their noise. A change is worth believing when its runs beat the other value's runs
seed after seed. sweep.py trains every value with every seed, each run its own process
(`python dcgan.py --SETTING VALUE --seed S --eval-every 1 --out ...`, printed before it starts; every other
flag is handed to dcgan.py as given), scores every epoch with the judge (FD, 2,000 samples), and writes:

    sweeps/lr/lr_0.001_seed_1/ ...   the runs, each a run folder as dcgan.py makes (make_gif.py, compare.py...)
    sweep.csv                        one row a run: value, seed, FD and classes at the end, losses, seconds
    sweep.png                        FD by value, a dot a seed; every run's last grid, a row a value
    logs/                            each run's output

sweep.csv and sweep.png are rewritten after every run, so a sweep stopped part-way shows what it has. The
same command goes on from there: finished runs are kept, an interrupted one resumes from its checkpoint.
"""

import csv
import json
import math
import sys
from pathlib import Path

import numpy as np

# Run as `python tools/sweep.py`, Python looks for modules in tools/: the lesson and machinery/ are one
# folder up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import dcgan  # its command line only: parse_args checks each run's flags, as `python dcgan.py` would
import viz
from machinery import cli, presets, runs

SETTINGS = ("preset", "lr", "batch", "latent", "dropout", "average-decay", "limit", "precision", "backend")
DEFAULT_SEEDS = (1, 2, 3)
MAX_VALUES, MAX_SEEDS = 6, 6  # a row of pictures a value, a column a seed: more would not read
# Flags sweep.py sets for each run itself; given as dcgan.py flags, they would contradict it.
SET_BY_THE_SWEEP = ("--seed", "--out", "--resume", "--overwrite")
SWEEP_FILE = "sweep.json"  # the setting and the flags handed to dcgan.py: what every run of the folder shares
SURE_ENOUGH = 20  # "luck alone does that 1 time in N": from N = 20 on (the usual 5%), no call for more seeds
CSV_FIELDS = ["value", "seed", "epochs", "finished", "diverged", "fd", "fd_epoch", "classes_covered", "d_loss",
              "g_loss", "seconds", "run"]


def parse_args(argv):
    p = cli.OneLineParser(
        prog="tools/sweep.py", allow_abbrev=False,
        description="Train one setting's values with several seeds each, then show whether what the setting "
                    "did is bigger than the seeds' spread. Flags it does not know go to dcgan.py.",
        epilog="Example: python tools/sweep.py lr 0.001 0.0002 --epochs 1 --limit 6400 (6 runs, about 6 minutes on a "
               "2-core CPU), then look at sweeps/lr/sweep.png.")
    p.add_argument("setting", choices=SETTINGS, metavar="SETTING",
                   help=f"the dcgan.py flag to vary, without its dashes: {', '.join(SETTINGS)}")
    p.add_argument("values", nargs="+", metavar="VALUE", help=f"its values, 2 to {MAX_VALUES}, as dcgan.py takes them")
    p.add_argument("--seeds", nargs="+", type=cli.seed, default=list(DEFAULT_SEEDS), metavar="S",
                   help=f"seeds each value is trained with, 1 to {MAX_SEEDS} (default: "
                        f"{' '.join(map(str, DEFAULT_SEEDS))}); with one seed there is no telling the setting "
                        "from luck")
    p.add_argument("--out", help="folder for the runs and the summary (default: sweeps/SETTING)")
    args, dcgan_flags = p.parse_known_args(argv)
    if not 2 <= len(args.values) <= MAX_VALUES:
        p.error(f"{len(args.values)} value(s) of {args.setting} given; give 2 to {MAX_VALUES}")
    if len(args.seeds) > MAX_SEEDS:
        p.error(f"{len(args.seeds)} seeds given; at most {MAX_SEEDS} fit one picture")
    if len(set(args.seeds)) < len(args.seeds):
        p.error(f"--seeds {' '.join(map(str, args.seeds))} names a seed twice")
    given = {word.split("=")[0] for word in dcgan_flags if word.startswith("--")}
    for flag in sorted(given & {*SET_BY_THE_SWEEP, f"--{args.setting}"}):
        if flag == f"--{args.setting}":
            p.error(f"{flag} is what this sweep varies: give its values after {args.setting}")
        p.error(f"{flag} is set by sweep.py for each run: leave it out (seeds: --seeds, the folder: --out)")
    args.dcgan_flags = dcgan_flags
    args.out = Path(args.out or Path("sweeps") / args.setting)
    return args


def planned_runs(args):
    """[(value, seed, folder, dcgan.py's words)]: seed by seed, each seed every value, so that a sweep cut
    short has compared every value on its first seeds. Each run's flags are checked by dcgan.py's own parser
    first, so a bad value is refused before anything trains."""
    scored_by_user = any(word.split("=")[0] == "--eval-every" for word in args.dcgan_flags)
    eval_flags = [] if scored_by_user else ["--eval-every", "1"]
    parsed_values, planned = {}, []
    for value in args.values:
        parsed = getattr(dcgan.parse_args([f"--{args.setting}", value, *eval_flags, *args.dcgan_flags]),
                         args.setting.replace("-", "_"))
        if parsed in parsed_values.values():
            cli.fail(f"{args.setting} {value} is the same as {args.setting} "
                     f"{next(v for v, p in parsed_values.items() if p == parsed)}; give each value once")
        parsed_values[value] = parsed
    if dcgan.parse_args([*eval_flags, *args.dcgan_flags]).eval_every == 0:
        cli.fail("--eval-every 0 leaves the runs unscored, and sweep.py compares their FD: leave it out")
    for seed in args.seeds:
        for value in args.values:
            folder = args.out / f"{args.setting}_{value}_seed_{seed}"
            words = ["dcgan.py", f"--{args.setting}", value, "--seed", str(seed), *eval_flags, *args.dcgan_flags,
                     "--out", str(folder)]
            planned.append((value, seed, folder, words))
    return planned


def claim_folder(args):
    """The sweep folder, made or reused: a folder holding a sweep with other flags is refused, since its runs
    would not compare with the new ones. More values or seeds than before are fine: the sweep grows."""
    shared = dict(setting=args.setting, dcgan_flags=args.dcgan_flags)
    record = args.out / SWEEP_FILE
    if record.is_file():
        try:
            before = json.loads(record.read_text())
        except ValueError as e:
            cli.fail(f"{record} cannot be read ({e}); pass another --out")
        if not isinstance(before, dict):
            cli.fail(f"{record} is not a sweep's record (not a JSON object); pass another --out")
        if before != shared:
            cli.fail(f"{args.out} holds a sweep of {before.get('setting')} with the flags "
                     f"{' '.join(before.get('dcgan_flags', [])) or '(none)'}; give the same flags to grow it, or "
                     "another --out for a new sweep")
    elif args.out.is_dir() and any(args.out.iterdir()):
        cli.fail(f"--out {args.out} holds files that are not a sweep; choose a new or empty folder")
    try:
        runs.check_writable(args.out)
        (args.out / "logs").mkdir(exist_ok=True)
    except runs.RunError as e:
        cli.fail(str(e))
    runs.replace_atomically(record, lambda path: path.write_text(json.dumps(shared, indent=2) + "\n"))


def checked_config(folder):
    """A run's checked config.json; one that cannot be used stops the sweep with what to do."""
    return presets.read_run_config(folder, f"delete {folder} and give the same command: the sweep trains it again")


def state_of(folder):
    """'done', 'diverged' (stopped on a NaN loss: resuming would repeat the same steps, so it is kept as it is),
    'resume' (trained part-way, a checkpoint kept) or 'new' (nothing trained worth keeping)."""
    if not runs.is_run(folder):
        return "new"
    if runs.read_diverged(folder):
        return "diverged"
    history, config = runs.read_history(folder), checked_config(folder)
    if config.get("epochs") and len(history) >= config["epochs"]:
        return "done"
    return "resume" if runs.complete_checkpoints(folder) else "new"


def train(folder, words, log, place):
    """Train one run of the sweep, unless it is done; True when it trained. `place`: "run 3 of 6"."""
    state = state_of(folder)
    if state == "done":
        print(f"== {place}, {folder.name}: trained already, kept")
        return False
    if state == "diverged":
        print(f"== {place}, {folder.name}: diverged before, kept as it is (training it again would repeat the "
              "same steps)")
        return False
    words = words + (["--resume"] if state == "resume" else ["--overwrite"] if folder.exists() else [])
    print(f"\n== {place}, {folder.name}: {cli.command('python', *words)}", flush=True)
    status, _, _, last = cli.run_script(words, log)
    if status in (dcgan.EXIT_INTERRUPTED, 129, 143) or status < 0:  # Ctrl-C, a hangup, a kill: it resumes later
        raise KeyboardInterrupt
    if status == dcgan.EXIT_DIVERGED:  # a result too (an lr too high): the other runs still answer the question
        print(f"== {folder.name} diverged; its last good checkpoint is kept, and the sweep goes on without it")
        return True
    if status != 0:
        cli.fail(f"the run {folder} failed ({last}); its output is in {log}. Mend it and run the same command: "
                 "finished runs are kept", status=1)
    return True


def result_of(folder):
    """A run's figures at its last epoch (FD: its last scored epoch's), its last frame, whether it trained all
    its epochs (one stopped part-way, or diverged, is shown but not compared) and where it diverged, if it
    did; None before its first epoch's end, unless it diverged before it."""
    history = runs.read_history(folder) if runs.is_run(folder) else []
    diverged = runs.read_diverged(folder) if runs.is_run(folder) else None
    if not history and not diverged:
        return None
    last, scored = (history or [{}])[-1], [row for row in history if row.get("fd") is not None]
    frames = runs.frames_in_epoch_order(folder / "images")
    epochs = last.get("epoch", 0)
    return dict(epochs=epochs, finished=not diverged and epochs >= checked_config(folder).get("epochs", 0),
                diverged=f"epoch {diverged['epoch']}, step {diverged['step']}" if diverged else "",
                fd=scored[-1]["fd"] if scored else None, fd_epoch=scored[-1]["epoch"] if scored else None,
                classes_covered=scored[-1]["classes_covered"] if scored else None,
                d_loss=last.get("d_loss"), g_loss=last.get("g_loss"), seconds=sum(row["seconds"] for row in history),
                run=str(folder), frame=viz.read_grey_picture(frames[-1]) if frames else None)


def luck_odds(n, m):
    """If the setting made no difference, every run is as likely as any other to score best: all n runs of one
    value land below all m of another, or all above, in 2 of the comb(n + m, n) orders. Returns N of "1 time
    in N"."""
    return math.comb(n + m, n) / 2


def verdict(setting, fds_by_value):
    """Lines that say which value scored best and, against each other value, whether its seeds all beat that
    value's seeds (and how often luck alone would do that) or their FD overlap."""
    scored = {value: fds for value, fds in fds_by_value.items() if fds}
    if len(scored) < 2:
        return ["fewer than two values scored yet: nothing to compare"]
    best = min(scored, key=lambda value: np.median(scored[value]))
    lines = [f"lowest median FD: {setting} {best} ({np.median(scored[best]):.1f} over {len(scored[best])} seed(s))"]
    if min(len(fds) for fds in scored.values()) < 2:
        return lines + ["one seed for some value: no telling the setting from luck; add seeds (--seeds 1 2 3)"]
    for value, fds in scored.items():
        if value == best:
            continue
        against = f"  against {setting} {value} (median {np.median(fds):.1f}): "
        if max(scored[best]) < min(fds):
            odds = luck_odds(len(scored[best]), len(fds))
            lines.append(against + f"every seed of {best} beat every seed of {value}; luck alone does that 1 time "
                         f"in {odds:.0f}" + ("" if odds >= SURE_ENOUGH else ": more seeds to be sure"))
        else:
            lines.append(against + f"their seeds' FD overlap ({min(scored[best]):.1f}-{max(scored[best]):.1f} and "
                         f"{min(fds):.1f}-{max(fds):.1f}): luck could have done it; more seeds or longer runs to tell")
    return lines


def summarize(args, planned):
    """Write sweep.csv and sweep.png from the runs trained so far; return the verdict's lines."""
    results = {(value, seed): result_of(folder) for value, seed, folder, _ in planned}
    results = {key: found for key, found in results.items() if found}

    def write_csv(path):
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
            writer.writeheader()
            for (value, seed), found in results.items():
                writer.writerow(dict(found, value=value, seed=seed))
    runs.replace_atomically(args.out / "sweep.csv", write_csv)
    title = f"{args.setting}: {', '.join(args.values)}; seeds {' '.join(map(str, args.seeds))}"
    if args.dcgan_flags:
        title += f"   ({' '.join(args.dcgan_flags)})"
    shown = {key: dict(found, fd=found["fd"] if found["finished"] else None,
                       note=f"diverged at\n{found['diverged']}" if found["diverged"] else None)
             for key, found in results.items()}
    runs.replace_atomically(args.out / "sweep.png", lambda path: viz.plot_sweep(
        path, title, args.setting, args.values, args.seeds, shown))
    compared = {key: found for key, found in results.items() if found["finished"] and found["fd"] is not None}
    fds_by_value = {value: [compared[value, seed]["fd"] for seed in args.seeds if (value, seed) in compared]
                    for value in args.values}
    rows = [[value, str(seed), str(found["epochs"]) + (f" (diverged at {found['diverged']})" if found["diverged"]
                                                       else "" if found["finished"] else " (unfinished)"),
             "-" if found["fd"] is None else f"{found['fd']:.1f}",
             str(found["classes_covered"] or "-"), f"{found['seconds']:.0f}"]
            for (value, seed), found in sorted(results.items(), key=lambda item: (args.values.index(item[0][0]),
                                                                                  args.seeds.index(item[0][1])))]
    return rows, verdict(args.setting, fds_by_value)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    planned = planned_runs(args)
    claim_folder(args)
    try:
        print(f"{len(planned)} runs ({args.setting} {', '.join(args.values)}; seeds {' '.join(map(str, args.seeds))}) "
              f"into {args.out}", flush=True)
        for number, (_, _, folder, words) in enumerate(planned, 1):
            if train(folder, words, args.out / "logs" / f"{folder.name}.log", f"run {number} of {len(planned)}"):
                summarize(args, planned)  # so that a sweep stopped part-way shows what it has
        rows, lines = summarize(args, planned)
    except KeyboardInterrupt:
        summarize(args, planned)
        cli.fail(f"interrupted; what finished is in {args.out}, and the same command goes on from there",
                 status=dcgan.EXIT_INTERRUPTED)
    except runs.RunError as e:  # a run's config.json or history.csv that cannot be read
        cli.fail(str(e))
    print()
    cli.print_columns([args.setting, "seed", "epochs", "FD", "classes", "seconds"], rows)
    print("\n".join(lines))
    print(f"wrote {args.out / 'sweep.png'} and {args.out / 'sweep.csv'}")
    return dict(rows=rows, verdict=lines)


if __name__ == "__main__":
    cli.run(main)
