"""lesson.ipynb, executed top to bottom as Jupyter would (nbclient, a real kernel) on a small budget, under
the backend of this test run (the kernel inherits $KERAS_BACKEND), and its run folder handed to dcgan.py."""

import json
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from test_evaluate import real_data_or_skip

from conftest import EVERY_BACKEND


ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "lesson.ipynb"


def budget_cell_index(notebook):
    """The cell tagged "parameters" (papermill's convention): the one a teacher edits, and a test overrides."""
    tagged = [i for i, cell in enumerate(notebook.cells) if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, "lesson.ipynb must have exactly one cell tagged 'parameters', its budget"
    return tagged[0]


def test_the_committed_notebook_holds_no_outputs_so_its_diffs_stay_readable():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)
    budget = notebook.cells[budget_cell_index(notebook)].source
    for name in ("PRESET", "EPOCHS", "LIMIT", "BATCH", "SEED", "HAND_STEPS", "RUN", "JUDGE_SAMPLES"):
        assert f"\n{name} = " in "\n" + budget, f"the budget cell no longer sets {name}"


@pytest.fixture
def real_data_dir():
    return real_data_or_skip()


@pytest.mark.tier("scripts")
@EVERY_BACKEND
def test_the_lesson_runs_top_to_bottom_and_leaves_a_run_the_scripts_take(tmp_path, real_data_dir, monkeypatch):
    import dcgan

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    run = tmp_path / "lesson_run"
    small_budget = (f"EPOCHS, LIMIT, BATCH, HAND_STEPS, JUDGE_SAMPLES = 1, 320, 32, 3, 100\n"
                    f"RUN = {str(run)!r}")
    notebook.cells.insert(budget_cell_index(notebook) + 1, nbformat.v4.new_code_cell(small_budget))
    monkeypatch.setenv("FASHION_MNIST_DIR", str(real_data_dir))  # the kernel inherits this process's environment
    client = NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}})
    client.execute()  # a cell that raises fails the test (nbclient's CellExecutionError)

    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    printed = "".join(output.get("text", "") for output in outputs if output.output_type == "stream")
    pictures = [output for output in outputs if "image/png" in output.get("data", {})
                or "image/gif" in output.get("data", {})]
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    assert f"on {backend}" in printed                       # the cell that says which backend runs
    assert "step 3: D's loss" not in printed                # printed every 20 hand steps only
    # real images, G after the hand steps, the frames, the GIF and the losses, samples and walks of both generators
    assert len(pictures) == 1 + 1 + 1 + 2 + 2 * 2
    for made in ("config.json", "generator.keras", "dcgan.gif", "losses.png", "samples.png", "walks.png", "eval.json"):
        assert (run / made).is_file(), made
    assert "the Keras 2 way, D left frozen: D's weights moved: False" in printed or f"{backend} refuses" in printed
    assert "the kit's way, D.trainable = True: D's weights moved: True" in printed
    judged = [line.split() for line in printed.splitlines() if line.endswith(" of 10")]
    assert [words[0] for words in judged] == [str(run), "pretrained/kit"]
    assert float(judged[1][1]) < float(judged[0][1])      # FD: the trained generator is far ahead of 10 steps
    assert json.loads((run / "eval.json").read_text())["samples"] == 100
    assert json.loads((run / "config.json").read_text())["preset"] == "demo"  # the classroom's minute (README step 2)

    # a normal run folder: dcgan.py --resume goes on from it
    history = dcgan.main(["--out", str(run), "--resume", "--epochs", "2", "--data-dir", str(real_data_dir)])
    assert [row["epoch"] for row in history] == [1, 2]
