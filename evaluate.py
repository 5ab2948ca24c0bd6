"""How good is the generator? Figures native to Fashion-MNIST, each beside the same figure for real data.

    python evaluate.py --run out                      # samples 10,000 images from out/generator.keras
    python evaluate.py --generator some/generator.keras
    python evaluate.py --train-classifier             # (re)train the judge; commits judge/*.keras + .json

Every figure compares a set of images with the 10,000 test images through the judge's features
(machinery/judge.py). The "real data" column scores 10,000 *training* images the same way: that is what perfect
looks like at this sample size. Output: a table on screen, eval.json in the run folder (or beside the
generator file), and eval.png beside it: the class histogram (or, for a conditional generator, the class
agreement) beside real data's, and the memorisation check as pictures: the samples that came nearest to a
training image, each beside its nearest training images. A copying generator shows its copies there.
"""

import json
import time

import numpy as np
from tqdm import tqdm

import data
import viz
from machinery import backends, cli, metrics, presets, runs, sampling

ROWS = [  # (key, label, how to read it)
    ("fd", "Frechet distance (FD)", "lower is better"),
    ("fd_interval", "  FD bootstrap 90% interval", ""),
    ("kid_mean", "KID (x1000)", "lower is better"),
    ("classifier_score", "classifier score", "higher is better, 10 at most"),
    ("classes_covered", "classes with >= 5% of samples", "10 is all"),
    ("tv_from_uniform", "class histogram: TV from uniform", "lower is better"),
    ("precision", "precision (k=3)", "share of samples that look real"),
    ("recall", "recall (k=3)", "share of real variety covered"),
    ("nearest_train", "nearest training image distance", "far below real = copying"),
]
# A conditional generator is also asked for classes: does the judge see the class that was asked for? The
# real column scores real images with their own labels, which is the judge's own accuracy.
CONDITIONAL_ROWS = [("class_agreement", "class agreement (judged = asked)", "1 is all; real: judge's accuracy")]
# eval.png's memorisation check: this many samples, those nearest to a training image, each beside this many
# of its nearest training images (in the judge's features, as the nearest-distance figure measures).
CLOSEST_SAMPLES, NEIGHBOURS = 8, 3


def score(feats, probs, reference, reference_radii, seed=0):
    """All figures of one image set (its judge features and class probabilities) against the test split
    (reference = its features, reference_radii = metrics.manifold_radii of them), but memorisation, which
    needs the training features."""
    kid_mean, kid_std = metrics.kernel_inception_distance(feats, reference, seed=seed)
    precision, recall = metrics.precision_recall(feats, reference, real_radii=reference_radii)
    return dict(fd=metrics.frechet_distance(feats, reference),
                fd_interval=metrics.frechet_distance_interval(feats, reference, seed=seed),
                kid_mean=1000 * kid_mean, kid_std=1000 * kid_std,
                classifier_score=metrics.classifier_score(probs),
                **metrics.class_coverage(probs),
                precision=precision, recall=recall)


def print_table(generated, real, title):
    print(title)
    print(f"{'figure':34} {'generator':>14} {'real data':>14}  reading")
    for key, label, reading in ROWS + (CONDITIONAL_ROWS if "class_agreement" in generated else []):
        def cell(result):
            value = result[key]
            if key == "fd_interval":
                return f"[{value[0]:.2f}, {value[1]:.2f}]"
            if key == "kid_mean":
                return f"{value:.2f}±{result['kid_std']:.2f}"
            return f"{value}" if isinstance(value, int) else f"{value:.3f}"
        print(f"{label:34} {cell(generated):>14} {cell(real):>14}  {reading}")
    print("class shares (generator; 0.10 each is even):",
          ", ".join(f"{name} {share:.2f}" for name, share in zip(data.CLASS_NAMES, generated["histogram"])))
    if "class_agreement" in generated:
        print("class agreement per class asked (generator):", ", ".join(
            f"{name} {share:.2f}" for name, share in zip(data.CLASS_NAMES, generated["class_agreement_per_class"])))


def main(argv=None):
    p = cli.OneLineParser(prog="evaluate.py", description="Score a generator with metrics native to "
                                                          "Fashion-MNIST, beside the same figures for real data.")
    what = sampling.add_flags(p, "to score")
    what.add_argument("--train-classifier", action="store_true",
                      help="train the judge's classifier on the training split and save it under judge/")
    p.add_argument("--samples", type=cli.int_at_least(100, 60_000), default=10_000,
                   help="images to generate, 100 to 60000 (as many real training images, or all there are, "
                        "are scored beside them; default: 10000)")
    p.add_argument("--seed", type=cli.seed, default=0, help="noise seed, 0 to 2**32 - 1 (default: 0)")
    p.add_argument("--data-dir", help="folder with the four Fashion-MNIST .gz files (default: the usual search)")
    backends.add_flag(p)
    args = p.parse_args(argv)
    try:
        if not args.train_classifier:  # a mistyped --run or --generator, told before the backend's slow import
            path = sampling.path_from(args)
            sampling.require_file(path)
            refuse_other_data(sampling.config_beside(path), path.parent)
            runs.check_writable(path.parent, named=f"{path.parent} (for eval.json and eval.png)")
        backends.use(args.backend)
        from machinery import judge  # imports Keras: only now that the backend is chosen

        if args.train_classifier:
            info = judge.train_classifier(args.data_dir)
            print(f"saved {judge.MODEL_FILE}: test accuracy {info['test_accuracy']}, sha256 {info['sha256'][:12]}…")
            return info
        return evaluate(args)
    except (data.DataError, runs.RunError) as e:  # runs.RunError includes judge.JudgeError (judge imports Keras)
        cli.fail(str(e))
    except KeyboardInterrupt:  # eval.json is written atomically, at the end: the old one is untouched
        cli.fail("interrupted; nothing was written", status=130)


def refuse_other_data(run_config, run, classes=len(data.CLASS_NAMES)):
    """What the judge says of a generator of other images would mean nothing (its classes would name digits or
    your drawings as T-shirts and trousers): known from its run's config.json, or for a conditional G with
    no run beside it, from its count of classes."""
    kind = presets.data_kind_of(run_config or {})
    if kind == data.FASHION_MNIST and classes == len(data.CLASS_NAMES):
        return
    trained_on = (f"{data.KIND_IN_WORDS[kind]} in {run_config['data_dir']}" if kind != data.FASHION_MNIST
                  else f"{classes} classes, not Fashion-MNIST's 10")
    cli.fail(f"{data.JUDGE_KNOWS_ONLY}; this generator was trained on {trained_on}, so its figures would mean "
             f"nothing. Look at its pictures instead: {cli.command('python', 'generate.py', '--run', run)}")


def evaluate(args):
    from machinery import judge

    path = sampling.path_from(args)
    generator, noise_kind, pixel_range = sampling.load(path, args.noise)
    if sampling.is_conditional(generator):  # a conditional G of other classes with no run beside it
        refuse_other_data(None, path.parent, sampling.class_count(generator))
    _, feature_model, info = judge.load_classifier()
    started = time.perf_counter()
    data_dir = data.find_data_dir(args.data_dir)
    test_images, _ = data.load_split("test", data_dir)
    train_images, train_classes = data.load_split("train", data_dir)
    # Progress on a terminal only (tqdm's disable=None): a log gets the table, not carriage returns.
    with tqdm(total=len(test_images) + len(train_images) + 2 * args.samples, unit="img", unit_scale=True,
              desc="judging real images, making and judging samples", disable=None) as bar:
        reference, _ = judge.real_features(feature_model, info, "test", test_images, bar=bar)
        train_features, train_probs = judge.real_features(feature_model, info, "train", train_images, bar=bar)
        # Gone before the generator runs: under TensorFlow 0.72 GB of the 0.96 GB this run peaks at are
        # TensorFlow's own, and the 55 MB of real images are not needed again.
        del test_images, train_images
        asked = sampling.every_class(args.samples) if sampling.is_conditional(generator) else None
        images = sampling.sample(generator, args.samples, noise_kind, pixel_range, args.seed, asked, bar=bar)
        sample_features, sample_probs = judge.features_and_probabilities(feature_model, images, bar=bar)
    # As many real images as samples, or all of them where the data holds fewer (a small --data-dir)
    real_subset = np.random.default_rng(args.seed).choice(len(train_features), min(args.samples, len(train_features)),
                                                          replace=False)
    with tqdm(total=4, desc="scoring", unit="figure set", disable=None) as bar:
        reference_radii = metrics.manifold_radii(reference)
        generated = score(sample_features, sample_probs, reference, reference_radii, args.seed)
        bar.update()
        real = score(train_features[real_subset], train_probs[real_subset], reference, reference_radii, args.seed)
        bar.update()
        # Memorisation: samples against held-out test images, both measured to their nearest training image.
        sample_distances = metrics.nearest_train_distances(sample_features, train_features)
        generated["nearest_train"] = float(sample_distances.mean())
        bar.update()
        test_distances = metrics.nearest_train_distances(reference, train_features)
        real["nearest_train"] = float(test_distances.mean())
        bar.update()
    closest, neighbours = closest_to_training(sample_features, train_features, sample_distances)
    if asked is not None:
        generated.update(metrics.class_agreement(sample_probs, asked))
        real.update(metrics.class_agreement(train_probs[real_subset], train_classes[real_subset]))
    print_table(generated, real, f"{path}: {args.samples} samples vs the 10,000 test images "
                                 f"(judge: test accuracy {info['test_accuracy']})")
    report = dict(generator=str(path), samples=args.samples, seed=args.seed, judge=info,
                  generated=generated, real_data=real, seconds=round(time.perf_counter() - started, 1))
    out = path.parent / "eval.json"
    runs.replace_atomically(out, lambda path: path.write_text(json.dumps(report, indent=2) + "\n"))
    train_images, _ = data.load_split("train", data_dir)  # again, for a few of them: 0.4 s, not 47 MB held
    picture = path.parent / "eval.png"
    # The yardstick for the nearest samples: the nearest of as many held-out test images (of all 10,000 when
    # more samples were drawn), measured the same way.
    test_subset = np.random.default_rng(args.seed).permutation(len(test_distances))[:args.samples]
    closeness = closeness_grid(images, train_images, closest, neighbours, sample_distances,
                               np.sort(test_distances[test_subset])[:len(closest)])
    runs.replace_atomically(picture, lambda file: save_picture(file, f"{path}: {args.samples} samples, judged",
                                                               generated, real, closeness))
    print(f"wrote {out} and {picture}")
    return report


def closest_to_training(sample_features, train_features, distances, count=CLOSEST_SAMPLES, k=NEIGHBOURS):
    """The `count` samples nearest to a training image (`distances`: each sample's nearest distance), nearest
    first, and for each the indices of its k nearest training images: (sample indices, [count, k] indices)."""
    closest = np.argsort(distances)[:count]
    return closest, metrics.nearest_points(sample_features[closest], train_features, k)


def closeness_grid(samples, train_images, closest, neighbours, distances, test_nearest):
    """(title, uint8 picture, note): a row per close sample: the sample, a black gap, its nearest training
    images; the sample's distance on the left of its row. `test_nearest`: the distances of as many nearest
    test images, the yardstick: a generator that copies comes far nearer than held-out real images do."""
    gap = np.zeros_like(samples[0])
    tiles = [tile for i, near in zip(closest, neighbours) for tile in (samples[i], gap, *train_images[near])]
    grid = viz.captioned_grid(np.stack(tiles), len(closest), 2 + neighbours.shape[1],
                              row_labels=[f"{distances[i]:.1f}" for i in closest])
    title = (f"memorisation check: the {len(closest)} samples nearest to a\ntraining image (left), "
             f"each beside its {neighbours.shape[1]} nearest training images")
    note = (f"left: distance to the nearest training image (judge's features);\nthe {len(test_nearest)} nearest "
            f"held-out test images: {test_nearest[0]:.1f} to {test_nearest[-1]:.1f}")
    return title, grid, note


def save_picture(file, title, generated, real, closeness):
    """eval.png: what the judge sees class by class, beside real data, and the closeness grid."""
    if "class_agreement" in generated:  # a conditional generator: does each class asked come out as itself?
        bars = dict(title="class agreement per class asked", ylabel="share judged as the class asked",
                    series={"generator": generated["class_agreement_per_class"],
                            "real data (the judge's accuracy)": real["class_agreement_per_class"]}, lines=[])
    else:
        bars = dict(title="which classes the judge sees", ylabel="share of the images",
                    series={"generator": generated["histogram"], "real data": real["histogram"]},
                    lines=[(0.1, "even: 0.10"),
                           (metrics.COVERED_SHARE, f"{metrics.COVERED_SHARE:.2f}: counts as drawn")])
    viz.plot_bars_beside_picture(file, title, dict(bars, names=data.CLASS_NAMES), closeness)


if __name__ == "__main__":
    cli.run(main)
