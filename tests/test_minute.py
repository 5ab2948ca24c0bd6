"""tools/minute.py: the demo's runs timed as whole processes and judged, its curve scored, one table of
their own figures."""

import json

import pytest

from tools import minute
from conftest import write_fake_fashion_mnist


@pytest.mark.tier("scripts")
def test_a_tiny_minute_times_each_seed_judges_it_and_scores_the_curve(tmp_path):
    folder = write_fake_fashion_mnist(tmp_path / "fashion", n_train=96, n_test=32)
    out = tmp_path / "minute"
    result = minute.main(["--seeds", "4", "--marks", "1", "1", "--samples", "200",
                          "--data-dir", str(folder), "--out", str(out)])
    # the seed's row: a real run of the demo preset at that seed, judged by evaluate.py (200 samples, more than
    # the 96 training images it scores beside them: all of those), whose figures the row quotes
    assert [row["seed"] for row in result["runs"]] == [4]
    for row in result["runs"]:
        run = out / f"seed_{row['seed']}"
        config = json.loads((run / "config.json").read_text())
        assert config["preset"] == "demo" and config["seed"] == row["seed"] and config["limit"] == 16_000
        judged = json.loads((run / "eval.json").read_text())
        assert judged["samples"] == 200 and row["fd"] == round(judged["generated"]["fd"], 1)
        assert 0 < row["seconds"] < 600
    # the curve: one point for the mark asked twice, after at least a second of training
    [point] = result["curve"]
    assert point["seconds"] >= 1 and point["steps"] >= 1 and point["fd"] > 0
    table = (out / "minute.md").read_text()
    assert f"| 4 | {result['runs'][0]['seconds']:.0f} s | {result['runs'][0]['fd']:.1f} |" in table
    assert f"| FD (classes) | {point['fd']:.0f} ({point['classes']}) |" in table
    assert json.loads((out / "minute.json").read_text())["runs"] == result["runs"]
