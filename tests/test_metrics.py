"""The metrics on inputs whose answer is known."""

import numpy as np

from machinery import metrics


def gaussian_features(n=2000, dim=16, shift=0.0, scale=1.0, seed=0):
    return np.random.default_rng(seed).normal(shift, scale, (n, dim))


def test_fd_of_a_set_with_itself_is_zero_and_grows_with_shift_and_noise():
    a = gaussian_features()
    assert metrics.frechet_distance(a, a) < 1e-6
    same_distribution = metrics.frechet_distance(a, gaussian_features(seed=1))
    shifted = metrics.frechet_distance(a, gaussian_features(seed=1, shift=0.5))
    more_shifted = metrics.frechet_distance(a, gaussian_features(seed=1, shift=1.0))
    noisier = metrics.frechet_distance(a, gaussian_features(seed=1, scale=1.5))
    assert same_distribution < 0.5 < shifted < more_shifted
    assert abs(shifted - 16 * 0.25) < 0.5          # |mu_a - mu_b|^2 = 16 dims * 0.5^2
    assert noisier > 16 * 0.25 * 0.9                # Tr: 16 * (1 + 2.25 - 2 * 1.5) = 4
    low, high = metrics.frechet_distance_interval(gaussian_features(seed=1, shift=0.5), a)
    assert low <= shifted <= high


def test_kid_is_near_zero_for_the_same_distribution_and_positive_when_shifted():
    a, b = gaussian_features(), gaussian_features(seed=1)
    same_mean, _ = metrics.kernel_inception_distance(a, b, subset_size=500)
    shifted_mean, _ = metrics.kernel_inception_distance(a, gaussian_features(seed=1, shift=0.5), subset_size=500)
    assert abs(same_mean) < 0.05 < shifted_mean


def test_one_class_only_covers_one_class():
    probabilities = np.zeros((500, 10))
    probabilities[:, 3] = 1.0
    coverage = metrics.class_coverage(probabilities)
    assert coverage["classes_covered"] == 1
    assert abs(coverage["tv_from_uniform"] - 0.9) < 1e-9
    assert metrics.classifier_score(probabilities) < 1.01  # confident but no variety: score 1


def test_balanced_confident_predictions_score_ten_and_cover_everything():
    probabilities = np.eye(10)[np.arange(1000) % 10]
    assert abs(metrics.classifier_score(probabilities) - 10) < 1e-3
    coverage = metrics.class_coverage(probabilities)
    assert coverage["classes_covered"] == 10 and coverage["tv_from_uniform"] < 1e-9


def test_precision_recall_of_real_vs_real_is_high_and_collapse_loses_recall():
    real, other_real = gaussian_features(n=1000, dim=8), gaussian_features(n=1000, dim=8, seed=1)
    precision, recall = metrics.precision_recall(other_real, real)
    assert precision > 0.8 and recall > 0.8
    collapsed = np.repeat(gaussian_features(n=5, dim=8, seed=2), 200, axis=0) * 0.1  # five near-identical modes
    precision, recall = metrics.precision_recall(collapsed, real)
    assert recall < 0.1


def test_copies_of_training_images_are_nearer_than_held_out_ones():
    train = gaussian_features(n=1000)
    copies = train[:200] + 1e-3
    held_out = gaussian_features(n=200, seed=5)
    assert metrics.nearest_train_distances(copies, train).max() < 0.01 < metrics.nearest_train_distances(held_out, train).min()


def test_nearest_points_are_the_brute_force_ones_in_order():
    points, queries = gaussian_features(n=500, dim=6), gaussian_features(n=7, dim=6, seed=4)
    between = np.linalg.norm(queries[:, None] - points[None], axis=2)
    np.testing.assert_array_equal(metrics.nearest_points(queries, points, 3), np.argsort(between, axis=1)[:, :3])
    np.testing.assert_array_equal(metrics.nearest_points(points[[42, 7]], points, 1), [[42], [7]])


def brute_force_within(queries, reference, k):
    """The k-NN manifold test written the slow, obvious way: full float64 distance matrices."""
    between = np.linalg.norm(queries[:, None] - reference[None], axis=2)
    among = np.linalg.norm(reference[:, None] - reference[None], axis=2)
    radii = np.sort(among, axis=1)[:, k]  # column 0 is each point itself
    return float((between <= radii[None]).any(axis=1).mean())


def test_precision_recall_equal_the_definition_across_chunks_and_with_radii_given(monkeypatch):
    monkeypatch.setattr(metrics, "CHUNK", 64)  # several chunks, the last one short
    real, generated = gaussian_features(n=300, dim=6), gaussian_features(n=250, dim=6, shift=0.4, seed=3)
    expected = brute_force_within(generated, real, 3), brute_force_within(real, generated, 3)
    assert 0 < expected[0] < 1 and 0 < expected[1] < 1  # a set where the answer is neither extreme
    assert metrics.precision_recall(generated, real) == expected
    radii = metrics.manifold_radii(real)
    assert metrics.precision_recall(generated, real, real_radii=radii) == expected
    nearest = np.linalg.norm(generated[:, None] - real[None], axis=2).min(axis=1)
    np.testing.assert_allclose(metrics.nearest_train_distances(generated, real), nearest, atol=1e-4)
