"""Several runs side by side: their curves on shared axes, their last grids, and the settings that differ.

    python tools/compare.py out runs/kit                  # -> compare.png (--out to name another file)
    python tools/compare.py runs/lr_*                     # what changing one setting did

The way to learn what a setting does: train twice, changing only it (`--lr`, `--batch`, `--preset`...),
then compare. compare.png puts the runs' losses, D's accuracies and, where scored, FD on shared axes, one
colour a run, labelled with what differs between them, and each run's last grid of samples beneath.
"""

import json
import sys
from pathlib import Path

import numpy as np

# Run as `python tools/compare.py`, Python looks for modules in tools/: the lesson and machinery/ are one
# folder up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import viz
from machinery import cli, presets, runs

MAX_RUNS = 6  # a colour and a picture each; more would not read
# Settings that say how a run was recorded or where, not how it trained: never named as a difference.
NOT_A_DIFFERENCE = ("system", "data_dir", "keras", "backend_version", "picture_size", "ckpt_every", "eval_every",
                    "images", "steps_per_epoch")
FLAGS_FIRST = ("preset", "lr", "batch", "latent", "average_decay", "precision", "epochs", "limit", "seed", "backend")


def run_to_show(folder):
    """A run folder -> dict(folder, config, steps, history, frame path or None); RunError if it holds no
    trained epoch."""
    train_first = cli.command("python", "dcgan.py", "--out", folder)
    config = presets.read_run_config(folder, f"train the run again with {train_first} --overwrite",
                                     if_missing=f"train one with {train_first}")
    steps, history = runs.read_steps(folder), runs.read_history(folder)
    if not steps:  # a run shipped without steps.csv (pretrained/kit): its epochs' means, one point an epoch
        steps = [dict(row, step=1) for row in history]
    if not steps:
        raise runs.RunError(f"{folder} has no trained epoch to show (history.csv, steps.csv); train with "
                            f"{train_first}")
    frames = runs.frames_in_epoch_order(folder / "images")
    samples = folder / "samples.png"  # a run shipped without its frames (pretrained/): what generate.py drew
    frame = frames[-1] if frames else samples if samples.is_file() else None
    return dict(folder=folder, config=config, steps=steps, history=history, frame=frame)


def differences(configs):
    """{setting: [its value in each run]} for the settings that are not the same in every run that records
    them (a run made before a setting existed does not record it: None)."""
    keys = [k for k in dict.fromkeys(k for config in configs for k in config) if k not in NOT_A_DIFFERENCE]
    return {k: [config.get(k) for config in configs] for k in keys
            if len({json.dumps(config[k]) for config in configs if k in config}) > 1}


def first_the_flags(differing):
    """The differing setting names, those a user sets with a flag first (preset first of all): a preset
    brings a dozen settings with it, which the preset's name already says."""
    return sorted(differing, key=lambda k: FLAGS_FIRST.index(k) if k in FLAGS_FIRST else len(FLAGS_FIRST))


def label_of(folder, differing, index, widest=60):
    """The run's folder, and its values of the settings that differ (as many as fit)."""
    settings = ", ".join(f"{k} {differing[k][index]}" for k in first_the_flags(differing))
    text = f"{folder}: {settings}" if settings else str(folder)
    return text if len(text) <= widest else text[:widest - 1] + "…"


def summary_rows(found):
    """One row a run: epochs trained, the last epoch's figures, the best FD, the seconds an epoch took."""
    rows = []
    for run in found:
        last = run["history"][-1] if run["history"] else {}
        scored = [row for row in run["history"] if row.get("fd") is not None]
        best = min(scored, key=lambda row: row["fd"]) if scored else None
        seconds = [row["seconds"] for row in run["history"]]
        rows.append([str(run["folder"]), run["config"].get("preset", "?"), str(len(run["history"])),
                     f"{last['d_loss']:.3f}" if last else "-", f"{last['g_loss']:.3f}" if last else "-",
                     f"{best['fd']:.1f} (epoch {best['epoch']})" if best else "-",
                     f"{np.median(seconds):.0f}" if seconds else "-"])
    return rows


def print_table(rows, differing):
    cli.print_columns(["run", "preset", "epochs", "d_loss", "g_loss", "best FD", "s/epoch"], rows)
    if differing:
        print("they differ in: " + "; ".join(f"{k} ({' / '.join(map(str, differing[k]))})"
                                             for k in first_the_flags(differing)))
    else:
        print("they differ in no setting (on a CPU the same settings and seed train the same run)")


def compare(folders, out):
    found = [run_to_show(folder) for folder in folders]
    differing = differences([run["config"] for run in found])
    runs.check_writable(out.parent, named=f"{out.parent} (for {out.name})")
    shown = []
    for index, run in enumerate(found):
        frame, frame_title = viz.read_grey_picture(run["frame"]), f"{run['folder']}: no frame"
        if run["frame"] is None:
            print(f"{run['folder']} holds no frame; python generate.py --run {run['folder']} draws samples.png, "
                  f"which compare.py then shows")
        elif frame is not None:
            frame_title = f"{run['folder']}: {run['frame'].stem}"
        elif run["frame"]:
            frame_title = f"{run['folder']}: {run['frame'].name} unreadable"
            print(f"warning: {run['frame']} cannot be read; {run['folder']} is drawn without it")
        shown.append(dict(label=label_of(run["folder"], differing, index), steps=run["steps"],
                          history=run["history"], frame=frame, frame_title=frame_title,
                          critic=presets.trains_a_critic(run["config"])))
    names = first_the_flags(differing)
    what = ", ".join(names[:4]) + (", …" if len(names) > 4 else "") if names else "same settings"
    existed = out.exists()
    runs.replace_atomically(out, lambda path: viz.plot_runs(path, f"{len(found)} runs ({what})", shown))
    print_table(summary_rows(found), differing)
    print(runs.wrote(out, existed))
    return dict(differences=differing, picture=out)


def main(argv=None):
    p = cli.OneLineParser(prog="tools/compare.py", description="Put runs side by side: curves on shared axes, last "
                                                         "grids, and the settings that differ.")
    p.add_argument("runs", nargs="+", help=f"run folders written by dcgan.py, 1 to {MAX_RUNS}")
    p.add_argument("--out", default="compare.png", help="picture to write (default: compare.png, here)")
    args = p.parse_args(argv)
    if len(args.runs) > MAX_RUNS:
        p.error(f"{len(args.runs)} runs given; at most {MAX_RUNS} fit one picture")
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        p.error(f"--out {out} must end in .png")
    try:
        return compare([Path(folder) for folder in args.runs], out)
    except runs.RunError as e:
        cli.fail(str(e))
    except KeyboardInterrupt:  # the picture is written atomically: the old one, if any, is untouched
        cli.fail("interrupted; nothing was written", status=130)


if __name__ == "__main__":
    cli.run(main)
