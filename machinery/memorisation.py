"""Does D learn its training images by heart? Its verdicts on images it trains on against test images it never sees.

dcgan.py --eval-every asks it at each scored epoch (d_real_train and d_real_test in history.csv, their gap in
losses.png); tools/verdicts.py draws the whole picture of D's verdicts from a checkpoint.
"""

import numpy as np

import data
from machinery import backends


def scores_of(discriminator, images, classes, critic, bar=None):
    """D's verdict on each image: the probability it gives the image of being real (sigmoid of its logit),
    or a critic's raw score."""
    inputs = [images, classes.reshape(-1, 1)] if classes is not None else images
    logits = backends.predict_in_batches(discriminator, inputs, 250, bar=bar).astype(np.float64).ravel()
    return logits if critic else np.exp(-np.logaddexp(0.0, -logits))  # the sigmoid, without overflow at -1000


MEMORY_COUNT = 1000  # images of each split that D judges at each scored epoch of training


def memory_check(images, classes, data_dir, preset, critic, seed):
    """For dcgan.py --eval-every: check(discriminator) -> {"d_real_train", "d_real_test"}, D's mean verdict on
    1,000 of the images the run trains on (uint8 `images`, their `classes`) and on 1,000 test images it never
    sees, the same ones at every call. Where the first pulls away from the second, D is learning its training
    set by heart (Karras et al. 2020 watched D's overfitting by this gap). Its own random draws: training's
    streams are untouched, so a resumed run stays exact."""
    rng = np.random.default_rng(seed)
    test_images, test_classes = data.load_split("test", data_dir)
    judged = {}
    for key, pool, pool_classes in (("d_real_train", images, classes), ("d_real_test", test_images, test_classes)):
        rows = rng.choice(len(pool), min(MEMORY_COUNT, len(pool)), replace=False)
        labels = pool_classes[rows].astype(np.int32) if preset.conditional else None  # D reads its own label
        judged[key] = data.scale_pixels(pool[rows], preset.pixel_range), labels

    def check(discriminator):
        return {key: float(np.mean(scores_of(discriminator, pixels, labels, critic)))
                for key, (pixels, labels) in judged.items()}
    return check
