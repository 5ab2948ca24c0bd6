import dataclasses
import json
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest

import dcgan
import models
from machinery import preflight, presets, sampling, settings
from conftest import EVERY_BACKEND, ROOT

# Parameter counts that the systems write-ups state (docs/systems.md), per preset: (generator, discriminator).
SEED_COUNTS = {"upsample": (2_155_137, 1_113_345), "legacy": (840_705, 212_865),
               "wide": (4_454_720, 212_865), "tutorial": (None, 212_865)}


@pytest.mark.parametrize("name", list(presets.PRESETS))
@EVERY_BACKEND
def test_each_preset_builds_with_the_seed_parameter_counts(name):
    preset = presets.PRESETS[name]
    generator, discriminator, gan = models.build_gan(preset)
    assert generator.inputs[0].shape == (None, preset.latent)
    assert len(generator.inputs) == len(discriminator.inputs) == len(gan.inputs) == 1 + preset.conditional
    assert generator.output_shape == (None, 28, 28, 1)
    assert discriminator.output_shape == (None, 1)
    counts = generator.count_params(), discriminator.count_params()
    assert counts == presets.PARAMETERS.get(name), f"presets.PARAMETERS: {name!r}: ({counts[0]:_}, {counts[1]:_})"
    g_count, d_count = SEED_COUNTS.get(name, (None, None))
    if g_count:
        assert generator.count_params() == g_count
    if d_count:
        assert discriminator.count_params() == d_count
    if name == "wide":  # the write-up: 50,560 of them not trainable (BatchNorm's moving statistics)
        assert sum(int(np.prod(w.shape)) for w in generator.non_trainable_weights) == 50_560


@pytest.mark.parametrize("name", list(presets.PRESETS))
@pytest.mark.tier("training")
@EVERY_BACKEND
def test_tiny_run_of_each_preset_writes_outputs_in_its_pixel_range(name, tiny_data, tmp_path):
    preset = presets.PRESETS[name]
    run = tmp_path / name
    two_steps = 2 * 8 * preset.critic_steps  # WGAN-GP's step takes a batch per critic update
    dcgan.main(["--preset", name, "--epochs", "1", "--batch", "8", "--limit", str(two_steps), "--seed", "0",
                "--data-dir", str(tiny_data), "--out", str(run)])
    for output in ("config.json", "history.csv", "generator.keras", "losses.png", "images/epoch_0001.png"):
        assert (run / output).is_file(), output
    config = json.loads((run / "config.json").read_text())
    assert config["preset"] == name and config["grid"] == preset.grid and config["noise"] == preset.noise
    generator = keras.models.load_model(run / "generator.keras")
    noise = np.random.default_rng(0).normal(0, 3, (64, preset.latent)).astype("float32")  # wide z, far tails
    samples = keras.ops.convert_to_numpy(generator(sampling.inputs_for(generator, noise)))
    low, high = preset.pixel_range
    assert samples.min() >= low and samples.max() <= high
    assert samples.std() > 0  # not a constant image


@pytest.mark.tier("training")
def test_a_flag_overrides_the_preset_and_lands_in_config(tiny_data, tmp_path, built_gans):
    run = tmp_path / "run"
    dcgan.main(["--preset", "tutorial", "--lr", "0.0005", "--batch", "8", "--epochs", "1", "--limit", "16",
                "--dropout", "0.5", "--data-dir", str(tiny_data), "--out", str(run)])
    config = json.loads((run / "config.json").read_text())
    assert config["lr"] == 0.0005 and config["batch"] == 8 and config["epochs"] == 1 and config["dropout"] == 0.5
    assert config["latent"] == 100 and config["noise"] == "normal"  # the rest stays the preset's
    discriminator, _ = built_gans[-1]
    assert dropout_rates(discriminator) == [0.5, 0.5]


def test_the_demo_trains_on_its_own_limit_unless_limit_is_given(tiny_data, tmp_path, monkeypatch):
    """The demo's minute is a budget of images (presets.Preset.limit): a run of it reads that many, --limit
    another number, and every other preset all of them."""
    assert presets.PRESETS["demo"].limit and all(presets.PRESETS[name].limit is None for name in presets.PRESETS
                                                 if name != "demo")
    monkeypatch.setitem(presets.PRESETS, "demo", dataclasses.replace(presets.PRESETS["demo"], limit=40))

    def read(*flags):
        args = dcgan.parse_args(["--data-dir", str(tiny_data), "--out", str(tmp_path / "run"), "--overwrite", *flags])
        return len(preflight.check_and_read_first(args).images), settings.from_flags(args)["limit"]

    assert read("--preset", "demo") == (40, 40)
    assert read("--preset", "demo", "--limit", "64") == (64, 64)
    assert read("--preset", "legacy") == (96, None)  # all of tiny_data's 96


def dropout_rates(model):
    return [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)]


@pytest.mark.parametrize("name, rates", [("legacy", [0.3, 0.3]), ("upsample", [0.4] * 5), ("conditional", [0.3, 0.3])])
@EVERY_BACKEND
def test_d_s_dropout_is_the_preset_s_unless_asked(name, rates):
    preset = presets.PRESETS[name]
    _, discriminator, _ = models.build_models(preset, preset.latent)
    assert dropout_rates(discriminator) == rates == [preset.dropout] * len(rates)
    _, discriminator, _ = models.build_models(preset, preset.latent, dropout=0.0)
    assert dropout_rates(discriminator) == [0.0] * len(rates)
    images = np.random.default_rng(0).uniform(-1, 1, (4, 28, 28, 1)).astype("float32")
    inputs = [images, np.zeros((4, 1), "int32")] if preset.conditional else images
    trained, shown = (keras.ops.convert_to_numpy(discriminator(inputs, training=mode)) for mode in (True, False))
    np.testing.assert_allclose(trained, shown, rtol=1e-5, atol=1e-5)  # no dropout: training mode changes nothing


@pytest.mark.parametrize("draw", ["on the device", "on the host"])
@EVERY_BACKEND
def test_uniform_preset_draws_noise_in_minus_one_one(draw):
    def noise(kind):
        if draw == "on the host":  # pictures and scores
            return sampling.noise_on_host(kind, 500, 100, seed=0)
        return keras.ops.convert_to_numpy(sampling.noise_on_device(kind, (500, 100), keras.random.SeedGenerator(0)))

    uniform = noise("uniform")
    assert uniform.min() >= -1 and uniform.max() <= 1 and uniform.min() < -0.9 and uniform.max() > 0.9
    assert noise("normal").max() > 2.5  # a normal draw of 50,000 numbers goes past the uniform's edge
    with pytest.raises(ValueError, match="not one of normal, uniform"):
        noise("gaussian")  # no silent fallback to normal


def test_unknown_preset_is_one_line_listing_the_valid_names(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "dcgan.py"), "--preset", "nope"],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    for name in presets.PRESETS:
        assert name in result.stderr


def test_list_presets_prints_one_row_per_preset(capsys):
    dcgan.main(["--list-presets"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 + len(presets.PRESETS)
    assert "2,155,137" in next(line for line in lines if line.startswith("upsample"))
    assert "uniform" in next(line for line in lines if line.startswith("uniform"))


def test_list_presets_needs_no_keras():
    script = "import sys, dcgan; dcgan.main(['--list-presets']); assert 'keras' not in sys.modules, 'keras imported'"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "conditional" in done.stdout and "2,456,484" in done.stdout


@pytest.mark.tier("scripts")
def test_a_row_of_your_own_is_all_a_new_preset_takes(tmp_path, tiny_data):
    """docs/presets.md, *A preset of your own*: a copy of the kit with one row added to presets.PRESETS lists it (its
    parameter counts built, as presets.PARAMETERS does not know it) and trains it; a builder's name mistyped
    is named, and a setting no run could use is one line before Keras's import."""
    copy = tmp_path / "kit"
    copy.mkdir()
    for path in ROOT.glob("*.py"):
        shutil.copy(path, copy)
    for package in ("machinery", "tools"):
        shutil.copytree(ROOT / package, copy / package, ignore=shutil.ignore_patterns("__pycache__"))
    original = (copy / "machinery" / "presets.py").read_text()
    end_of_table = "]}\nDEFAULT_PRESET"
    assert original.count(end_of_table) == 1
    row = ('    Preset("yours", "a try: the kit, its D leakier", "deconv", "strided", noise="uniform", lr=2e-4, '
           'beta_1=0.5,\n           generator_options=dict(seed_channels=256), discriminator_options=dict(leak=0.3), '
           'average_decay=0.999),\n')

    def with_row(row, *flags, script="dcgan.py"):
        """python `script` `flags` in the copy, its table ending in `row`."""
        (copy / "machinery" / "presets.py").write_text(original.replace(end_of_table, row + end_of_table))
        return subprocess.run([sys.executable, script, *flags], capture_output=True, text=True, cwd=copy)

    listed = with_row(row, "--list-presets")
    assert listed.returncode == 0, listed.stderr
    yours = next(line for line in listed.stdout.splitlines() if line.startswith("yours "))
    assert "2,330,944" in yours and "212,865" in yours and "average 0.999" in yours  # the kit's models: same counts
    run = tmp_path / "run"
    training = ["--preset", "yours", "--epochs", "1", "--batch", "8", "--limit", "32", "--data-dir", str(tiny_data),
                "--out", str(run)]
    trained = with_row(row, *training)
    assert trained.returncode == 0, trained.stderr
    config = json.loads((run / "config.json").read_text())
    assert config["preset"] == "yours" and config["discriminator_options"] == {"leak": 0.3}
    assert (run / "generator.keras").is_file()
    mistyped = with_row(row.replace('"deconv"', '"decon"'), "--list-presets")
    assert mistyped.returncode != 0
    assert ("preset yours names the generator 'decon', which models.py does not build; it builds deconv, legacy, "
            "upsample") in mistyped.stderr
    wrong = with_row(row.replace('noise="uniform"', 'noise="gaussian"'), *training, "--overwrite")
    assert wrong.returncode == 2 and wrong.stderr == ('error: preset yours in machinery/presets.py holds noise = "gaussian", '
                                                      'not one of "normal", "uniform"; mend its row\n')
    timed = with_row(row.replace('noise="uniform"', 'noise="gaussian"'), "--preset", "yours", script="tools/bench.py")
    assert timed.returncode == 2 and timed.stderr == wrong.stderr  # tools/bench.py tells it the same way


@pytest.mark.parametrize("name", list(presets.PRESETS))
def test_the_config_a_run_of_each_preset_records_passes_the_check(name):
    config = settings.from_flags(dcgan.parse_args(["--preset", name, "--limit", "64", "--frames-per-epoch", "2"]))
    config.update(devices=1, processes=1, images=64, steps_per_epoch=2, keras="3", backend="jax")  # set at start
    written = json.loads(json.dumps(config))  # as config.json holds it: tuples become lists
    assert presets.config_problem(written, presets.TRAINING_NEEDS) is None
    assert presets.row_problem(presets.PRESETS[name]) is None  # what dcgan.py checks of the row itself
    assert presets.config_problem({**written, "lr": "fast"}) == 'holds lr = "fast", not a number'


def test_the_shipped_generator_s_config_passes_the_check_though_older_than_some_settings():
    config = json.loads((ROOT / "pretrained" / "kit" / "config.json").read_text())
    assert "dropout" not in config  # recorded before --dropout existed: missing is not wrong
    assert presets.config_problem(config, presets.TRAINING_NEEDS) is None


@pytest.mark.parametrize("config, problem", [
    ([], "is not a JSON object of settings"),
    ({"preset": "dcgan"}, 'holds preset = "dcgan", not one of "tutorial", "upsample", "legacy"'),
    ({"preset": ["legacy"]}, 'holds preset = ["legacy"], not a string'),
    ({"batch": "32"}, 'holds batch = "32", not a whole number'),
    ({"batch": 32.5}, "holds batch = 32.5, not a whole number"),
    ({"batch": True}, "holds batch = true, not a whole number"),
    ({"batch": 0}, "holds batch = 0, below 1"),
    ({"lr": -0.1}, "holds lr = -0.1, below 0"),
    ({"conditional": 1}, "holds conditional = 1, not true or false"),
    ({"noise": "gauss"}, 'holds noise = "gauss", not one of "normal", "uniform"'),
    ({"pixel_range": [0, 255]}, "holds pixel_range = [0, 255], not one of [0, 1], [-1, 1]"),
    ({"precision": "float16"}, 'holds precision = "float16", not one of "float32", "mixed_bfloat16"'),
    ({"frames_per_epoch": "all"}, 'holds frames_per_epoch = "all", not a whole number or one of "auto"'),
    ({"lr": float("nan")}, "holds lr = NaN, not a finite number"),
    ({"devices": 0}, "holds devices = 0, below 1"),
    ({"generator_options": [256]}, "holds generator_options = [256], not a JSON object"),
    ({"preset": "legacy"}, "lacks batch, seed (made by an older kit?)"),
])
def test_a_run_config_that_cannot_be_used_is_named_in_a_few_words(config, problem):
    assert presets.config_problem(config, needs=("preset", "batch", "seed")).startswith(problem)


def test_settings_that_no_script_reads_are_not_checked():
    fine = {"preset": "kit", "batch": 32, "seed": 1, "limit": None, "frames_per_epoch": "auto", "lr": 1}
    assert presets.config_problem({**fine, "system": 5, "later_setting": True}, needs=("preset", "batch")) is None
