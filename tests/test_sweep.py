"""sweep.py: every value of one setting with every seed, each run its own dcgan.py process; it grows, keeping
what it trained, and tells a setting from luck only when the seeds say so."""

import csv
import subprocess
import sys
from types import SimpleNamespace

import pytest

from tools import sweep
from conftest import ROOT

TINY_RUN = ["--epochs", "1", "--batch", "8", "--limit", "32"]


def run_sweep(*args, cwd):
    return subprocess.run([sys.executable, str(ROOT / "tools" / "sweep.py"), *args], capture_output=True, text=True,
                          cwd=cwd)


def rows(folder):
    with open(folder / "sweep.csv") as f:
        return [(row["value"], int(row["seed"]), row["fd"] != "") for row in csv.DictReader(f)]


# Backend-neutral (tests/conftest.py): sweep.py only starts dcgan.py processes, whose training the other
# tests cover per backend.
@pytest.mark.tier("scripts")
def test_a_sweep_trains_each_value_then_grows_keeping_what_it_trained(tiny_data, tmp_path):
    out = tmp_path / "sweeps" / "lr"
    first = run_sweep("lr", "0.001", "0.0001", "--seeds", "3", *TINY_RUN, "--data-dir", str(tiny_data),
                      "--out", str(out), cwd=tmp_path)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr
    assert rows(out) == [("0.001", 3, True), ("0.0001", 3, True)]  # both runs scored with the judge
    for value in ("0.001", "0.0001"):
        assert sweep.checked_config(out / f"lr_{value}_seed_3")["lr"] == float(value)
    assert "one seed for some value: no telling the setting from luck" in first.stdout
    assert (out / "sweep.png").stat().st_size > 0 and (out / "logs" / "lr_0.001_seed_3.log").is_file()
    kept = {path: path.stat().st_mtime_ns for path in out.glob("lr_*_seed_3/history.csv")}

    grown = run_sweep("lr", "0.001", "0.0001", "0.01", "--seeds", "3", *TINY_RUN, "--data-dir", str(tiny_data),
                      "--out", str(out), cwd=tmp_path)  # one value more: one run more
    assert grown.returncode == 0, grown.stdout[-2000:] + grown.stderr
    assert grown.stdout.count("trained already, kept") == 2 and grown.stdout.count("python dcgan.py") == 1
    assert "== run 3 of 3, lr_0.01_seed_3: python dcgan.py --lr 0.01 --seed 3" in grown.stdout
    assert {path: path.stat().st_mtime_ns for path in kept} == kept
    assert rows(out) == [("0.001", 3, True), ("0.0001", 3, True), ("0.01", 3, True)]
    assert grown.stdout.splitlines()[-1] == f"wrote {out / 'sweep.png'} and {out / 'sweep.csv'}"


def test_luck_alone_puts_every_run_of_one_value_below_the_other_this_often():
    assert sweep.luck_odds(1, 1) == 1  # one run each: one of them is lower, always
    assert sweep.luck_odds(2, 2) == 3  # 2 of the 6 orders of 4 runs
    assert sweep.luck_odds(3, 3) == 10
    assert sweep.luck_odds(5, 5) == 126


def test_the_verdict_tells_a_setting_from_luck_only_when_the_seeds_do_not_overlap():
    apart = sweep.verdict("lr", {"0.001": [300.0, 310.0, 320.0], "0.0002": [400.0, 410.0, 390.0]})
    assert apart[0].startswith("lowest median FD: lr 0.001 (310.0 over 3 seed(s))")
    assert "every seed of 0.001 beat every seed of 0.0002; luck alone does that 1 time in 10: more seeds" in apart[1]
    overlapping = sweep.verdict("lr", {"0.001": [300.0, 420.0, 320.0], "0.0002": [400.0, 410.0, 390.0]})
    assert "their seeds' FD overlap (300.0-420.0 and 390.0-410.0): luck could have done it" in overlapping[1]
    sure = sweep.verdict("batch", {"32": [1.0, 2.0, 3.0, 4.0], "64": [5.0, 6.0, 7.0, 8.0]})
    assert sure[1].endswith("1 time in 35")  # 4 seeds each: past SURE_ENOUGH, no call for more
    assert "one seed for some value" in sweep.verdict("lr", {"0.1": [5.0], "0.2": [6.0, 7.0]})[1]
    assert sweep.verdict("lr", {"0.1": [5.0], "0.2": []}) == ["fewer than two values scored yet: nothing to compare"]


def test_a_run_is_resumed_only_from_a_checkpoint_and_kept_once_its_epochs_are_done(tmp_path):
    run = tmp_path / "run"
    assert sweep.state_of(run) == "new"
    run.mkdir()
    (run / "config.json").write_text('{"epochs": 2}')
    assert sweep.state_of(run) == "new"  # stopped during start-up: nothing to resume, nothing to lose
    (run / "checkpoints" / "epoch_0001_step_000003").mkdir(parents=True)
    assert sweep.state_of(run) == "new"  # a checkpoint cut short: its state file is written last
    (run / "checkpoints" / "epoch_0001_step_000003" / "state.json").write_text("{}")
    assert sweep.state_of(run) == "resume"
    header = ",".join(sweep.runs.HISTORY_FIELDS)
    (run / "history.csv").write_text(f"{header}\n1,0.5,1.0,0.5,0.5,3.0,,\n2,0.5,1.0,0.5,0.5,3.0,,\n")
    assert sweep.state_of(run) == "done"


def test_a_diverged_run_is_kept_as_it_is_since_resuming_would_repeat_the_same_steps(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text('{"epochs": 2}')
    (run / "checkpoints" / "epoch_0001_step_000003").mkdir(parents=True)
    (run / "checkpoints" / "epoch_0001_step_000003" / "state.json").write_text("{}")
    assert sweep.state_of(run) == "resume"
    sweep.runs.write_diverged(run, 1, 5, float("nan"))
    assert sweep.state_of(run) == "diverged"
    assert sweep.train(run, ["dcgan.py"], tmp_path / "log", "run 1 of 1") is False  # nothing started
    assert "diverged before, kept as it is" in capsys.readouterr().out


def fake_run(folder, epochs_asked, fds):
    """A run folder as dcgan.py leaves it, without the training: config.json and one history row an epoch."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(f'{{"epochs": {epochs_asked}}}')
    rows = [f"{epoch},0.5,1.0,0.5,0.5,3.0,{fd},6" for epoch, fd in enumerate(fds, 1)]
    (folder / "history.csv").write_text(",".join(sweep.runs.HISTORY_FIELDS) + "\n" + "\n".join(rows) + "\n")


def test_a_run_stopped_part_way_is_shown_but_not_compared(tmp_path):
    """Its FD is of an earlier epoch than the others': an interrupted or diverged run would skew the verdict."""
    args = SimpleNamespace(out=tmp_path, setting="lr", values=["0.1", "0.2"], seeds=[1, 2], dcgan_flags=[])
    planned = [(value, seed, tmp_path / f"lr_{value}_seed_{seed}", []) for seed in (1, 2) for value in ("0.1", "0.2")]
    fake_run(planned[0][2], 2, [500.0, 400.0])
    fake_run(planned[1][2], 2, [500.0, 450.0])
    fake_run(planned[2][2], 2, [500.0, 410.0])
    fake_run(planned[3][2], 2, [100.0])  # lr 0.2, seed 2: one epoch of two, its FD far lower
    rows, lines = sweep.summarize(args, planned)
    assert ["0.2", "2", "1 (unfinished)", "100.0"] == rows[3][:4]
    assert lines[0] == "lowest median FD: lr 0.1 (405.0 over 2 seed(s))"
    assert "one seed for some value" in lines[1]  # lr 0.2 has one finished run, not two
    with open(tmp_path / "sweep.csv") as f:
        assert [row["finished"] for row in csv.DictReader(f)] == ["True", "True", "True", "False"]


def test_a_diverged_run_is_shown_where_it_diverged_even_before_its_first_epoch_s_end(tmp_path):
    args = SimpleNamespace(out=tmp_path, setting="lr", values=["0.1", "0.9"], seeds=[1, 2], dcgan_flags=[])
    planned = [(value, seed, tmp_path / f"lr_{value}_seed_{seed}", []) for seed in (1, 2) for value in ("0.1", "0.9")]
    fake_run(planned[0][2], 2, [500.0, 400.0])
    fake_run(planned[1][2], 2, [500.0])
    sweep.runs.write_diverged(planned[1][2], 2, 7, float("nan"))
    fake_run(planned[2][2], 2, [500.0, 410.0])
    fake_run(planned[3][2], 2, [])
    sweep.runs.write_diverged(planned[3][2], 1, 3, float("inf"))
    rows, lines = sweep.summarize(args, planned)
    assert [row[2] for row in rows] == ["2", "2", "1 (diverged at epoch 2, step 7)", "0 (diverged at epoch 1, step 3)"]
    assert lines == ["fewer than two values scored yet: nothing to compare"]  # lr 0.9 has no finished run
    assert (tmp_path / "sweep.png").stat().st_size > 0
