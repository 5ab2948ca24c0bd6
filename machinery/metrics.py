"""Sample-quality figures computed from classifier features and class probabilities (numpy only).

Arrays in, numbers out; it knows nothing of GANs or of Keras.
Each function names the published idea it follows; all of them compare a set of generated images with a
set of real ones through the same feature extractor (see judge.py).
"""

import numpy as np


def _gaussian(features):
    features = np.asarray(features, np.float64)
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _trace_sqrt_product(sigma_a, sigma_b):
    """Tr(sqrt(A B)) for covariance matrices, via the symmetric form sqrt(A)^1/2 B sqrt(A)^1/2."""
    values, vectors = np.linalg.eigh(sigma_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = np.linalg.eigvalsh(root_a @ sigma_b @ root_a)
    return float(np.sqrt(np.clip(middle, 0, None)).sum())


def frechet_distance(features_a, features_b):
    """FD (as in FID, Heusel et al. 2017): |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^1/2)."""
    mu_a, sigma_a = _gaussian(features_a)
    mu_b, sigma_b = _gaussian(features_b)
    value = float(((mu_a - mu_b) ** 2).sum() + np.trace(sigma_a) + np.trace(sigma_b)
                  - 2 * _trace_sqrt_product(sigma_a, sigma_b))
    return max(value, 0.0)  # rounding can leave a tiny negative for identical sets


def frechet_distance_interval(generated, real, rounds=10, seed=0):
    """A bootstrap 90% interval of FD: generated features resampled with replacement.

    Resampling repeats points, which shrinks the covariance and inflates FD, so the bootstrap values sit
    above the estimate; their 5th..95th percentiles are shifted back by that bias (median - estimate), so
    the interval shows the spread around the estimate.
    """
    rng = np.random.default_rng(seed)
    values = [frechet_distance(generated[rng.integers(0, len(generated), len(generated))], real)
              for _ in range(rounds)]
    bias = float(np.median(values)) - frechet_distance(generated, real)
    return max(float(np.percentile(values, 5)) - bias, 0.0), float(np.percentile(values, 95)) - bias


def kernel_inception_distance(features_a, features_b, subsets=10, subset_size=1000, seed=0):
    """KID (Binkowski et al. 2018): unbiased MMD^2 with the kernel (x.y / d + 1)^3, mean and std over subsets."""
    rng = np.random.default_rng(seed)
    a, b = np.asarray(features_a), np.asarray(features_b)
    # Scale both sets by the second's root-mean-square feature, so x.y / d is about 1 as the kernel assumes
    # (ReLU features of our judge are far larger than Inception's, and the cube would blow them up).
    scale = np.sqrt(np.square(b, dtype=np.float64).mean())
    size = min(subset_size, len(a), len(b))
    dim = a.shape[1]
    values = []
    for _ in range(subsets):  # float64 subsets, not float64 copies of the whole sets: memory is tight
        x = a[rng.choice(len(a), size, replace=False)].astype(np.float64) / scale
        y = b[rng.choice(len(b), size, replace=False)].astype(np.float64) / scale
        k_xx, k_yy, k_xy = ((x @ x.T / dim + 1) ** 3, (y @ y.T / dim + 1) ** 3, (x @ y.T / dim + 1) ** 3)
        off_diagonal = size * (size - 1)
        values.append((k_xx.sum() - np.trace(k_xx)) / off_diagonal + (k_yy.sum() - np.trace(k_yy)) / off_diagonal
                      - 2 * k_xy.mean())
    return float(np.mean(values)), float(np.std(values))


def classifier_score(probabilities):
    """The Inception Score formula with our classifier: exp(E_x KL(p(y|x) || p(y))). 1 = useless, 10 = best."""
    p = np.clip(np.asarray(probabilities, np.float64), 1e-12, 1)
    marginal = p.mean(axis=0)
    return float(np.exp((p * (np.log(p) - np.log(marginal))).sum(axis=1).mean()))


COVERED_SHARE = 0.05  # a class holding this share of the samples counts as drawn (mode coverage)


def class_coverage(probabilities, classes=10, min_share=COVERED_SHARE):
    """Predicted-class histogram (shares), its total-variation distance from uniform, and how many classes
    hold at least `min_share` of the samples (mode coverage)."""
    predicted = np.asarray(probabilities).argmax(axis=1)
    shares = np.bincount(predicted, minlength=classes) / len(predicted)
    return dict(histogram=shares.round(4).tolist(), tv_from_uniform=float(0.5 * np.abs(shares - 1 / classes).sum()),
                classes_covered=int((shares >= min_share).sum()))


def class_agreement(probabilities, asked, classes=10):
    """For images drawn of known classes (a conditional generator's, or real images with their labels): the
    share whose most likely class is the one asked for, overall and per asked class (NaN for a class never
    asked). With a perfect judge, real images score 1; any images under shuffled labels about 1 / classes."""
    judged = np.asarray(probabilities).argmax(axis=1)
    asked = np.asarray(asked).reshape(-1)
    hits = judged == asked
    per_class = [float(hits[asked == c].mean()) if (asked == c).any() else float("nan") for c in range(classes)]
    return dict(class_agreement=float(hits.mean()), class_agreement_per_class=per_class)


# Queries are compared with all points CHUNK at a time: 128 x 60,000 float32 distances are 31 MB, so
# memorisation against the whole training set adds little to the memory evaluate.py takes (and 128 is as
# fast as 256 on 2 cores).
CHUNK = 128


def _distance_sweep(queries, points, offsets, reduce):
    """reduce(-2 q.p + offsets[p]) for each row of CHUNK queries against all points, concatenated.
    Squared distances are |q|^2 - 2 q.p + |p|^2: one matrix product per chunk and one in-place add, and |q|^2,
    the same along a row, is left for the caller to add after the reduction (a pass over the chunk saved)."""
    queries, points = np.asarray(queries, np.float32), np.asarray(points, np.float32)
    result = np.empty(len(queries), np.float32)  # filled in place: a reduction may be a view of its chunk
    for start in range(0, len(queries), CHUNK):
        partial = (-2 * queries[start:start + CHUNK]) @ points.T
        partial += offsets
        result[start:start + CHUNK] = reduce(partial)
        del partial  # else it lives on while the next chunk's product is made: twice the memory
    return result


def _squared_norms(points):
    return (np.asarray(points, np.float32) ** 2).sum(axis=1)


def _squared_distance_to_kth(queries, points, k):
    """Squared distance from each query to its k-th nearest point (k=1: the nearest)."""
    # The nearest is a plain minimum, several times faster than partitioning every row.
    kth = ((lambda rows: rows.min(axis=1)) if k == 1 else
           (lambda rows: np.partition(rows, k - 1, axis=1)[:, k - 1]))
    return np.clip(_distance_sweep(queries, points, _squared_norms(points), kth) + _squared_norms(queries), 0, None)


def manifold_radii(points, k=3):
    """Squared radius of the ball around each point that reaches its k-th nearest neighbour among the others
    (k+1: each point is its own nearest). Compute once for a set that several others are measured against."""
    return _squared_distance_to_kth(points, points, k + 1)


def _within_manifold(queries, reference, radii):
    """Share of queries inside the union of balls around the reference points (squared radii `radii`).
    Inside some ball: |q - p|^2 <= r_p^2 for some p, i.e. min_p(-2 q.p + |p|^2 - r_p^2) <= -|q|^2."""
    closest = _distance_sweep(queries, reference, _squared_norms(reference) - radii, lambda rows: rows.min(axis=1))
    return float((closest <= -_squared_norms(queries)).mean())


def precision_recall(generated, real, k=3, real_radii=None):
    """k-NN precision and recall (Kynkaanniemi et al. 2019): precision = share of generated samples that fall
    in the real manifold, recall = share of real samples that fall in the generated one.
    `real_radii`: manifold_radii(real, k), when the caller measures several sets against the same real one."""
    real_radii = manifold_radii(real, k) if real_radii is None else real_radii
    precision = _within_manifold(generated, real, real_radii)
    return precision, _within_manifold(real, generated, manifold_radii(generated, k))


def nearest_train_distances(queries, train):
    """Distance from each query to its nearest training feature. Their mean far below what held-out test
    images get suggests the generator copies training images."""
    return np.sqrt(_squared_distance_to_kth(queries, train, 1))


def nearest_points(queries, points, k):
    """Indices of each query's k nearest points, nearest first. For a handful of queries: each gets one full
    row of distances."""
    queries, points = np.asarray(queries, np.float32), np.asarray(points, np.float32)
    # |q - p|^2 less |q|^2, which is the same along a row and so orders it alike.
    rows = _squared_norms(points) - 2 * queries @ points.T
    nearest = np.argpartition(rows, k - 1, axis=1)[:, :k]
    return np.take_along_axis(nearest, np.argsort(np.take_along_axis(rows, nearest, axis=1), axis=1), axis=1)
