"""Arrays to pictures: the sample grid and the loss curves.

Bottom floor of the kit: knows images and plots, nothing of GANs.
"""

import matplotlib

matplotlib.use("Agg")  # files only; no screen is needed or assumed
import imageio.v3 as iio
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator
import numpy as np

GRID_GAP = 2    # pixels of black between tiles, so neighbouring samples don't merge
GRID_ZOOM = 2   # 28-pixel tiles are tiny on a modern screen; repeat each pixel this many times


def image_grid(images_uint8, rows, cols):
    """uint8 [N, H, W] -> one uint8 [rows*(H+gap)-gap, ...] picture, filled row by row."""
    n, h, w = images_uint8.shape
    grid = np.zeros((rows * (h + GRID_GAP) - GRID_GAP, cols * (w + GRID_GAP) - GRID_GAP), np.uint8)
    for i in range(min(n, rows * cols)):
        r, c = divmod(i, cols)
        grid[r * (h + GRID_GAP):r * (h + GRID_GAP) + h, c * (w + GRID_GAP):c * (w + GRID_GAP) + w] = images_uint8[i]
    return np.kron(grid, np.ones((GRID_ZOOM, GRID_ZOOM), np.uint8))


def save_grid(images_uint8, path, rows, cols):
    iio.imwrite(path, image_grid(images_uint8, rows, cols))


def plot_losses(history, path, title="DCGAN training"):
    """history: dicts with epoch, d_loss, g_loss, d_acc_real, d_acc_fake (and fd where scored) -> a PNG."""
    scored = [row for row in history if row.get("fd") not in (None, "")]
    epochs = [row["epoch"] for row in history]
    fig, axes = plt.subplots(1, 3 if scored else 2, figsize=(15 if scored else 10, 4))
    ax_loss, ax_acc = axes[0], axes[1]
    ax_loss.plot(epochs, [row["d_loss"] for row in history], "o-", label="discriminator")
    ax_loss.plot(epochs, [row["g_loss"] for row in history], "o-", label="generator")
    ax_loss.set(xlabel="epoch", ylabel="mean loss", title="losses")
    ax_loss.legend()
    ax_acc.plot(epochs, [row["d_acc_real"] for row in history], "o-", label="D on real")
    ax_acc.plot(epochs, [row["d_acc_fake"] for row in history], "o-", label="D on fake")
    ax_acc.axhline(0.5, color="grey", lw=0.8, ls="--")  # a D at 0.5 on both can no longer tell them apart
    ax_acc.set(xlabel="epoch", ylabel="accuracy", ylim=(-0.02, 1.02), title="discriminator accuracy")
    ax_acc.legend()
    if scored:  # FD: the judge's distance from the test images; lower is better
        axes[2].plot([r["epoch"] for r in scored], [float(r["fd"]) for r in scored], "o-", color="purple")
        axes[2].set(xlabel="epoch", ylabel="FD (lower is better)", title="sample quality (judge)")
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
