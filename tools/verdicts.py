"""What D thinks: its verdicts on training images, on test images it never saw, and on G's fakes.

    python tools/verdicts.py                      # out/ -> out/verdicts.png and out/verdicts.json
    python tools/verdicts.py --run runs/kit --count 2000 --seed 1

The loop prints how often D is right on each batch; this shows how sure it is, image by image. D and G
come from the run's newest checkpoint: the G that D trained against (for the kit preset that is not
generator.keras, which holds G's weight average), its fakes made as D met them in training (BatchNorm in
training mode where the preset trains so), D in inference mode (no dropout). The picture holds:
- D's probability that an image is real, as three histograms: training images, test images, fakes. Where
  the fakes' hump sits on the reals', D cannot tell them apart; where the training images' hump sits right
  of the test images', D has learnt the training set by heart rather than what a garment looks like
  (dcgan.py --eval-every N follows that gap during training: machinery/memorisation.py).
- beside them, class by class: D's mean verdict on the test images of each class and on the fakes of each,
  classed by the kit's judge (judge.py's classifier; for a conditional preset, by the class G was asked
  for), with how many fakes fell in each: which garments D doubts, and which of G's it believes. For a
  conditional preset, the test images named as another class too, grouped by their own: whose label D reads.
- the fakes D believed most and the test images it doubted most, each with its probability.
Where the run keeps G's weight average (kit, conditional, wgan) D also judges the average's fakes, from the
same noise: the G whose pictures the run shows, which D never met in training.
For a conditional preset D is asked one more thing: the test images, each named as another class. A D that
checks the class as well as the garment calls them fake.
A WGAN-GP critic (preset wgan) gives scores, not probabilities: only their differences mean anything,
so the picture shows raw scores, and "called real" means above the midpoint of the test and fake means.
"""

import json
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

# Run as `python tools/verdicts.py`, Python looks for modules in tools/: the lesson and machinery/ are one
# folder up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import data
import viz
from machinery import backends, cli, presets, runs
from machinery.memorisation import scores_of

SHOWN = 8  # images per row of examples
# As the table and the picture name a set, where not by its key.
SET_NAMES = {"test_wrong_class": "test, wrong class", "fakes_of_average": "fakes, G's average"}


def add_flags(parser):
    parser.add_argument("--run", default="out", help="run folder written by dcgan.py (default: out)")
    parser.add_argument("--count", type=cli.int_at_least(SHOWN, 10_000), default=1000,
                        help=f"images of each kind to judge: training, test, fakes; {SHOWN} to 10000 (default: 1000; "
                             "all the training images where the run trained on fewer)")
    parser.add_argument("--seed", type=cli.seed, default=0,
                        help="which images and noise, 0 to 2**32 - 1 (default: 0)")
    parser.add_argument("--data-dir", help="folder with the four Fashion-MNIST .gz files (default: the run's, else the "
                                            "usual search)")
    backends.add_flag(parser)


def config_and_preset(run):
    """(the run's config, its preset), or a one-line error before Keras's import: no run, an unreadable
    config, or no checkpoint to take D from."""
    try:
        train = cli.command("python", "dcgan.py", "--out", run)
        config = presets.read_run_config(run, f"train the run again with {train} --overwrite",
                                         if_missing="train one with python dcgan.py, or pass --run",
                                         needs=("preset", "latent", "noise", "batch", "fakes_in_training_mode"))
    except runs.RunError as e:
        cli.fail(str(e))
    if (kind := presets.data_kind_of(config)) != data.FASHION_MNIST:
        cli.fail(f"{run} trained on {data.KIND_IN_WORDS[kind]}: D's verdicts are set beside "
                 f"held-out test images classed by the judge, and {data.JUDGE_KNOWS_ONLY}; look at its frames "
                 "instead: " + cli.command("python", "make_gif.py", "--run", run))
    if not runs.complete_checkpoints(run):
        cli.fail(f"{run} has no checkpoint to take D from (the shipped pretrained/ runs hold G alone); train a run "
                 "with python dcgan.py")
    return config, presets.PRESETS[config["preset"]]


def judged_images(config, data_dir, count, seed):
    """{"training": (uint8 images, classes), "test": ...}: `count` of each (all, where there are fewer), drawn
    with `seed`; the training images from those the run trained on (its --limit)."""
    rng = np.random.default_rng(seed)
    chosen = {}
    for kind, split, limit in (("training", "train", config.get("limit")), ("test", "test", None)):
        images, classes = data.load_split(split, data_dir, limit)
        rows = rng.choice(len(images), min(count, len(images)), replace=False)
        chosen[kind] = images[rows], classes[rows].astype(np.int32)
    return chosen


def restore_g_and_d(run, config, preset):
    """(G, D, G's weight average or None, checkpoint folder, epoch, step): the run's models with the newest
    checkpoint's weights; the average where the run keeps one (average_decay above 0)."""
    from machinery import averaging, checkpoints
    import keras
    import models

    keras.mixed_precision.set_global_policy("float32")  # whatever trained them: the weights are float32
    generator, discriminator, _ = models.build_models(preset, config["latent"], config.get("dropout"))
    groups = dict(generator=generator.weights, discriminator=discriminator.weights)
    average = averaging.GeneratorAverage(generator, config["average_decay"]) if config.get("average_decay") else None
    if average:
        groups[checkpoints.AVERAGE_GROUP] = average.variables
    folder, state, skipped = checkpoints.restore_newest(run, groups, backends.current())
    for path, why in skipped:  # a newer one that cannot be read: say which D is asked instead
        print(f"skipped checkpoint {path.name}: {why}")
    return generator, discriminator, average, folder, state["epoch"], state["step"]


def make_fakes(generator, config, preset, count, seed, bar=None):
    """(fakes in D's pixel range, their classes or None): drawn as the batch maker draws them in training,
    a run's batch at a time (BatchNorm's batch statistics are a batch's), classes at random. `bar`: a tqdm
    bar advanced by each image."""
    import keras

    from machinery import sampling

    rng = np.random.default_rng(seed + 1)  # +1: not the same draws as the images'
    noise = sampling.noise_on_host(config["noise"], count, config["latent"], seed + 1)
    classes = rng.integers(0, preset.classes, (count, 1)).astype(np.int32) if preset.conditional else None
    fakes = []
    for start in range(0, count, config["batch"]):
        z = noise[start:start + config["batch"]]
        inputs = [z, classes[start:start + len(z)]] if preset.conditional else z
        fakes.append(keras.ops.convert_to_numpy(generator(inputs, training=config["fakes_in_training_mode"])))
        if bar is not None:
            bar.update(len(z))
    return np.concatenate(fakes).astype(np.float32), classes


def wrong_classes(classes, count, seed):
    """Each class moved to another one of `count`, at random: a real image with a label that is not its own."""
    shift = np.random.default_rng(seed + 2).integers(1, count, len(classes))  # +2: not the images' draws
    return ((classes + shift) % count).astype(np.int32)


def summary(scores, threshold):
    """A set's numbers; for an empty set (a class G drew none of) its mean and share are None."""
    if not len(scores):
        return dict(images=0, mean=None, called_real=None)
    return dict(images=len(scores), mean=float(np.mean(scores)), called_real=float(np.mean(scores > threshold)))


def judged_classes(fakes, preset, bar=None):
    """The class of each fake (int array): the one the kit's judge gives it, the likeliest of its ten."""
    from machinery import judge

    _, feature_model, _ = judge.load_classifier()
    _, probabilities = judge.features_and_probabilities(feature_model, data.to_uint8(fakes, preset.pixel_range),
                                                        bar=bar)
    return np.argmax(probabilities, axis=1)


def by_class(classes_of, scores, threshold):
    """[{"class": name, kind: summary of its images of that class}] for each Fashion-MNIST class, from
    classes_of = {kind: each image's class} and scores = {kind: D's verdicts}."""
    return [dict({"class": name}, **{kind: summary(scores[kind][np.asarray(classes).ravel() == index], threshold)
                                     for kind, classes in classes_of.items()})
            for index, name in enumerate(data.CLASS_NAMES)]


def sets_by_class(report):
    """The sets report["by_class"] splits by class, in its order: test, (test_wrong_class,) fakes."""
    return [kind for kind in report["by_class"][0] if kind != "class"]


def verdicts(run, config, preset, count, seed, data_dir=None):
    """(report, {kind: D's numbers}, example rows for the picture) of the run's newest checkpoint."""
    critic = presets.trains_a_critic(config)
    recorded = config.get("data_dir")  # the data D trained on, where it still is
    data_dir = data.find_data_dir(data_dir or (recorded if recorded and Path(recorded).is_dir() else None))
    reals = judged_images(config, data_dir, count, seed)
    generator, discriminator, average, folder, epoch, step = restore_g_and_d(run, config, preset)
    # Progress on a terminal only (tqdm's disable=None): a log gets the table, not carriage returns.
    judged = (sum(len(images) for images, _ in reals.values()) + (2 + 2 * bool(average)) * count
              + preset.conditional * len(reals["test"][0]) + (not preset.conditional) * count)
    with tqdm(total=judged, unit="img", unit_scale=True,
              desc="making fakes, asking D", disable=None) as bar:
        fakes, fake_classes = make_fakes(generator, config, preset, count, seed, bar)
        pixels = {kind: data.scale_pixels(images, preset.pixel_range) for kind, (images, _) in reals.items()}
        scores = {kind: scores_of(discriminator, pixels[kind], classes if preset.conditional else None, critic, bar)
                  for kind, (_, classes) in reals.items()}
        scores["fakes"] = scores_of(discriminator, fakes, fake_classes, critic, bar)
        if average:  # the G whose pictures the run shows: D never met its fakes, made from the same noise
            with average.swapped_in():
                averaged, _ = make_fakes(generator, config, preset, count, seed, bar)
            scores["fakes_of_average"] = scores_of(discriminator, averaged, fake_classes, critic, bar)
        if preset.conditional:  # does D check the class? the same test images, each named as another class
            scores["test_wrong_class"] = scores_of(discriminator, pixels["test"],
                                                   wrong_classes(reals["test"][1], preset.classes, seed), critic, bar)
        # What each fake is: the class G was asked for, where D is told it; else what the judge sees.
        fake_kinds = fake_classes if preset.conditional else judged_classes(fakes, preset, bar)
    # A critic's scores may all move by one number without changing its loss: its line between real and
    # fake is the midpoint, as its accuracy's is a batch's mean (models.real_fake_accuracy).
    threshold = (scores["test"].mean() + scores["fakes"].mean()) / 2 if critic else 0.5
    report = dict(checkpoint=folder.name, epoch=epoch, step=step, preset=preset.name, critic=critic, count=count,
                  seed=seed, threshold=float(threshold),
                  sets=list(scores), **{kind: summary(values, threshold) for kind, values in scores.items()})
    report["memorised"] = report["training"]["mean"] - report["test"]["mean"]
    report["fakes_classed_by"] = "the class asked" if preset.conditional else "the judge"
    classes_of = {"test": reals["test"][1]}
    if preset.conditional:  # the test images named as another class, by their own: whose label D reads
        classes_of["test_wrong_class"] = reals["test"][1]
    classes_of["fakes"] = fake_kinds
    report["by_class"] = by_class(classes_of, scores, threshold)
    believed = np.argsort(-scores["fakes"], kind="stable")[:SHOWN]
    doubted = np.argsort(scores["test"], kind="stable")[:SHOWN]
    examples = [("the fakes D believed most", data.to_uint8(fakes[believed], preset.pixel_range),
                 scores["fakes"][believed]),
                ("the test images D doubted most", reals["test"][0][doubted], scores["test"][doubted])]
    return report, scores, examples


def print_report(report, run):
    what = "score (mean)" if report["critic"] else "P(real) (mean)"
    print(f"D of {run}, checkpoint {report['checkpoint']}:")
    cli.print_columns(["", "images", what, "called real"],
                      [[SET_NAMES.get(kind, kind), str(report[kind]["images"]), f"{report[kind]['mean']:.3f}",
                        f"{report[kind]['called_real']:.0%}"] for kind in report["sets"]])
    print(f"training - test: {report['memorised']:+.3f} (above 0: D trusts the images it trained on more)")
    print(f"\nby class (fakes classed by {report['fakes_classed_by']}; each set's images, {what}, called real):")

    def cells(numbers):
        if numbers["mean"] is None:  # no image of the class in the set
            return [str(numbers["images"]), "-", "-"]
        return [str(numbers["images"]), f"{numbers['mean']:.3f}", f"{numbers['called_real']:.0%}"]

    kinds = sets_by_class(report)
    cli.print_columns([""] + [words for kind in kinds for words in (SET_NAMES.get(kind, kind), "", "")],
                      [[row["class"]] + [cell for kind in kinds for cell in cells(row[kind])]
                       for row in report["by_class"]])


def main(argv=None):
    p = cli.OneLineParser(prog="tools/verdicts.py", description="What D thinks of training images, test images and "
                                                          "G's fakes, overall and class by class, from a run's "
                                                          "newest checkpoint.")
    add_flags(p)
    args = p.parse_args(argv)
    run = Path(args.run)
    config, preset = config_and_preset(run)  # before Keras's import: a wrong --run is told at once
    try:
        if args.data_dir:
            data.find_data_dir_before_keras(args.data_dir)
        runs.check_writable(run, named=f"{run} (for verdicts.png and verdicts.json)")
        backends.use(args.backend)
        report, scores, examples = verdicts(run, config, preset, args.count, args.seed, args.data_dir)
        print_report(report, run)
        save(run, config, preset, report, scores, examples)
    except (runs.RunError, data.DataError) as e:
        cli.fail(str(e))
    except KeyboardInterrupt:  # each file is written atomically: the old one, if any, stays whole
        cli.fail("interrupted; no file was left half-written", status=130)
    return report


def save(run, config, preset, report, scores, examples):
    picture, figures = run / "verdicts.png", run / "verdicts.json"
    when = (f"after epoch {report['epoch']}" if report["step"] == config.get("steps_per_epoch")
            else f"at epoch {report['epoch']}, step {report['step']}")
    title = f"What D thinks: {run}, preset {preset.name}, {when}"
    critic = report["critic"]
    xlabel = "D's score (higher: more real)" if critic else "D's probability that the image is real"
    named = {SET_NAMES.get(kind, kind): values for kind, values in scores.items()}
    by_class = (f"By class (fakes classed by {report['fakes_classed_by']})",
                [f"{row['class']}: {row['fakes']['images']} fake{'s' * (row['fakes']['images'] != 1)}"
                 for row in report["by_class"]],
                {SET_NAMES.get(kind, kind): [row[kind]["mean"] for row in report["by_class"]]
                 for kind in sets_by_class(report)})
    runs.replace_atomically(picture, lambda path: viz.plot_scores(
        path, title, named, examples, xlabel, (report["threshold"], "D's line between real and fake"), not critic,
        by_class))
    runs.replace_atomically(figures, lambda path: path.write_text(json.dumps(report, indent=2) + "\n"))
    print(f"wrote {picture} and {figures}")


if __name__ == "__main__":
    cli.run(main)
