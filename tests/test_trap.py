"""trap.py: the Keras 2 habit (D frozen once) leaves D untrained on TensorFlow and PyTorch and is refused by
JAX; the kit's way trains D. Both from the same start."""

import keras
import pytest

import trap
from conftest import EVERY_BACKEND

pytestmark = [EVERY_BACKEND, pytest.mark.tier("training")]  # the trap differs per backend


def test_the_keras2_way_never_trains_d_and_the_kits_way_does(tiny_data, tmp_path, capsys):
    out = tmp_path / "trap.png"
    results = trap.main(["--steps", "3", "--batch", "8", "--data-dir", str(tiny_data), "--out", str(out)])
    printed = capsys.readouterr().out
    assert results["kit"]["d_moved"] > 0 and len(results["kit"]["steps"]) == 3
    if keras.backend.backend() == "jax":
        assert "the optimizer was built with 6 variables" in results["keras2"]["refused"]
        assert not results["keras2"]["steps"] and "refused D's first step" in printed
    else:
        assert results["keras2"]["refused"] is None and len(results["keras2"]["steps"]) == 3
        assert results["keras2"]["d_moved"] == 0.0
        assert "Keras warned once: The model does not have any trainable weights" in printed
    assert out.is_file() and out.stat().st_size > 10_000
