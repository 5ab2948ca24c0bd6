"""Arrays to pictures: the sample grid and the training curves, sized to be shown to a room.

It knows images and plots, nothing of GANs. Matplotlib is imported only to plot, so scripts that merely
import this module (and print --help) start fast.
"""

import numpy as np
from PIL import Image, ImageDraw, ImageFont

GRID_GAP = 2          # pixels of black between tiles, so neighbouring samples don't merge
PICTURE_SIZE = 720    # default: a grid's longer side, in pixels; reads on a projector from the back row
MIN_PICTURE_SIZE, MAX_PICTURE_SIZE = 100, 4000
FONT_SHARE = 0.045    # caption letters are this share of the picture's longer side...
MIN_FONT, MAX_FONT = 14, 48  # ...within these sizes, in pixels


def grid_side(count):
    """Pixels along a side of `count` 28-pixel tiles with their gaps, before zooming."""
    return count * (28 + GRID_GAP) - GRID_GAP


def zoom_for(rows, cols, size=PICTURE_SIZE):
    """How many times to repeat each pixel so the grid's longer side is about `size`: a whole number, so
    every sample pixel becomes a sharp square (no blur from resampling)."""
    return max(1, round(size / max(grid_side(rows), grid_side(cols))))


def image_grid(images_uint8, rows, cols, zoom=1):
    """uint8 [N, 28, 28] -> one uint8 picture of rows x cols tiles, filled row by row, each pixel `zoom`
    times."""
    n, h, w = images_uint8.shape
    grid = np.zeros((grid_side(rows), grid_side(cols)), np.uint8)
    for i in range(min(n, rows * cols)):
        r, c = divmod(i, cols)
        grid[r * (h + GRID_GAP):r * (h + GRID_GAP) + h, c * (w + GRID_GAP):c * (w + GRID_GAP) + w] = images_uint8[i]
    return np.kron(grid, np.ones((zoom, zoom), np.uint8))


def _font(picture_width):
    return ImageFont.load_default(size=int(np.clip(FONT_SHARE * picture_width, MIN_FONT, MAX_FONT)))


def _text_band(width, font, texts):
    """A black band as wide as the picture with white `texts` on it: [(x_centre or None, text)]; None
    centres the text on the band."""
    height = int(font.size * 1.5)
    band = Image.new("L", (width, height))
    draw = ImageDraw.Draw(band)
    for x, text in texts:
        fitting = font
        if x is None and font.getlength(text) > 0.96 * width:  # a long caption: smaller letters, not cut off
            fitting = ImageFont.load_default(size=max(8, int(font.size * 0.96 * width / font.getlength(text))))
        draw.text((width / 2 if x is None else x, height / 2), text, fill=255, font=fitting, anchor="mm")
    return np.asarray(band)


def _label_column(height, font, pitch, zoom, texts):
    """A black column as tall as the grid with white `texts` right-aligned beside each row's middle."""
    width = int(max(font.getlength(text) for text in texts) + font.size)
    column = Image.new("L", (width, height))
    draw = ImageDraw.Draw(column)
    for row, text in enumerate(texts):
        draw.text((width - font.size / 2, row * pitch + 14 * zoom), text, fill=255, font=font, anchor="rm")
    return np.asarray(column)


def captioned_grid(images_uint8, rows, cols, size=PICTURE_SIZE, caption=None, column_labels=None,
                   row_labels=None):
    """The grid zoomed to about `size` pixels, under a caption band (the epoch, what is shown) and a band of
    column labels ({column: text}, e.g. a walk's start and end) when given, with row labels ([text per row],
    e.g. class names) in a column on its left."""
    zoom = zoom_for(rows, cols, size)
    grid = image_grid(images_uint8, rows, cols, zoom)
    font = _font(max(grid.shape))
    pitch = (28 + GRID_GAP) * zoom
    left = 0
    if row_labels:
        labels = _label_column(grid.shape[0], font, pitch, zoom, row_labels)
        left = labels.shape[1]
        grid = np.concatenate([labels, grid], axis=1)
    bands = []
    if caption:
        bands.append(_text_band(grid.shape[1], font, [(None, caption)]))
    if column_labels:
        bands.append(_text_band(grid.shape[1], font, [(left + c * pitch + 14 * zoom, text)
                                                      for c, text in column_labels.items()]))
    return np.concatenate([*bands, grid])


def save_grid(images_uint8, path, rows, cols, size=PICTURE_SIZE, caption=None, column_labels=None,
              row_labels=None):
    picture = captioned_grid(images_uint8, rows, cols, size, caption, column_labels, row_labels)
    Image.fromarray(picture).save(path, format="PNG")


def read_grey_picture(path):
    """A saved picture (a frame) as a grey uint8 array; None when there is none or it cannot be read (a
    damaged file should cost a figure only its picture)."""
    if path is None:
        return None
    try:
        return np.asarray(Image.open(path).convert("L"))
    except (OSError, ValueError, SyntaxError):  # Pillow's answers to a truncated or garbled PNG
        return None


def smoothed(values, window):
    """Trailing mean over the last `window` values (fewer at the start), as long as `values`."""
    values = np.asarray(values, np.float64)
    sums = np.cumsum(np.insert(values, 0, 0.0))
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(0, ends - window)
    return (sums[ends] - sums[starts]) / (ends - starts)


def in_epochs(steps):
    """Per-step rows (epoch, step counting from 1 in its epoch) -> (their places along an axis in epochs,
    fractional; the trailing-mean window of about a fiftieth of them: system E's habit)."""
    steps_per_epoch = max((row["step"] for row in steps), default=1)
    return [row["epoch"] - 1 + row["step"] / steps_per_epoch for row in steps], max(1, len(steps) // 50)


def guessing_loss(critic=False):
    """(D's loss when it cannot tell real from fake, what the line means). BCE: ln 2, each image called real
    with probability 1/2. A WGAN critic (`critic`): 0, reals and fakes scored alike on average (its gradient
    penalty adds a little above that). Its G's loss has no such level: the critic's scores have no zero."""
    if critic:
        return 0.0, "0: D scores real and fake alike"
    return np.log(2), "ln 2 = 0.69: D can only guess"


def plot_training(steps, history, path, title="DCGAN training", critic=False):
    """steps: per-step dicts (epoch, step, d_loss, g_loss, d_acc_real, d_acc_fake; step counts from 1 in its
    epoch), history: per-epoch rows (fd where scored) -> one PNG. Each step is drawn faintly, the trailing
    mean over about a fiftieth of the run boldly (system E's habit), so even a one-epoch demo has curves.
    `critic`: the run trained a WGAN critic (presets.trains_a_critic): its losses are Wasserstein's."""
    import matplotlib

    matplotlib.use("Agg")  # files only; no screen is needed or assumed
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    x, window = in_epochs(steps)
    scored = [row for row in history if row.get("fd") not in (None, "")]
    asked = [row for row in history if row.get("d_real_train") not in (None, "")]  # runs before it: none
    panels_in_all = 2 + bool(scored) + bool(asked)
    with plt.rc_context({"font.size": 16, "axes.titlesize": 20, "legend.fontsize": 14, "lines.linewidth": 2.5}):
        fig, axes = plt.subplots(1, panels_in_all, figsize=(7 * panels_in_all + 1, 6.5))
        panels = [(axes[0], [("d_loss", "D's loss"), ("g_loss", "G's loss")],
                   "loss (Wasserstein + penalty)" if critic else "loss (BCE)", guessing_loss(critic)),
                  (axes[1], [("d_acc_real", "D right on real"), ("d_acc_fake", "D right on fake")], "accuracy",
                   (0.5, "0.5: D can only guess"))]
        for ax, curves, ylabel, (level, meaning) in panels:
            for key, label in curves:
                values = [row[key] for row in steps]
                line, = ax.plot(x, smoothed(values, window), label=label)
                ax.plot(x, values, color=line.get_color(), alpha=0.15, linewidth=0.8)
            ax.axhline(level, color="grey", linestyle="--", linewidth=1.5, label=meaning)
            ax.set(xlabel="epoch", ylabel=ylabel, xlim=(0, max(x, default=1)))
            ax.legend(loc="best")
            ax.grid(alpha=0.3)
        axes[0].set_title("losses, step by step")
        axes[1].set(title="how often D is right", ylim=(-0.02, 1.02))
        if scored:  # FD: the judge's distance from the test images; lower is better
            axes[2].plot([r["epoch"] for r in scored], [float(r["fd"]) for r in scored], "o-", color="purple")
            axes[2].set(xlabel="epoch", ylabel="FD (lower is better)", title="sample quality (judge)")
            axes[2].xaxis.set_major_locator(MaxNLocator(integer=True))  # scored at whole epochs
            axes[2].grid(alpha=0.3)
        if asked:  # D's verdicts on images it trains on minus on unseen ones: above 0, it learns them by heart
            # The gap, not the two means: both swing with the game, by more than the gap itself
            ax, epochs = axes[-1], [r["epoch"] for r in asked]
            ax.plot(epochs, [float(r["d_real_train"]) - float(r["d_real_test"]) for r in asked], "o-", color="brown")
            ax.axhline(0, color="grey", linestyle="--", linewidth=1.5, label="0: D trusts unseen images as much")
            ax.set(xlabel="epoch", ylabel=f"{'score' if critic else 'P(real)'}: training - test images",
                   title="does D know its images by heart?")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.legend(loc="best")
            ax.grid(alpha=0.3)
        fig.suptitle(title, fontsize=22)
        fig.tight_layout()
        fig.savefig(path, dpi=100, format="png")
        plt.close(fig)


def training_so_far(steps, drawn_after, height, critic=False):
    """An RGB picture `height` pixels tall: D's and G's losses (top) and D's accuracies (below) over the
    whole run, faint, the part up to `drawn_after` = (epoch, steps of it done; None: its end) bold, and a line
    there. Beside a frame drawn then, it shows where in the game between D and G the picture was taken.
    For many frames of one run, TrainingCurves draws the figure once."""
    curves = TrainingCurves(steps, height, critic)
    try:
        return curves.at(drawn_after)
    finally:
        curves.close()


class TrainingCurves:
    """training_so_far's figure, made once for a run: each at() only cuts the bold curves and moves the line,
    then redraws: 2.2-2.7x less time a frame than a new figure (make_gif.py --curves draws hundreds)."""

    STYLE = {"font.size": 15, "axes.titlesize": 17, "legend.fontsize": 13, "lines.linewidth": 2.5}

    def __init__(self, steps, height, critic=False):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        x, window = in_epochs(steps)
        self.x = np.asarray(x)
        self.steps_per_epoch = max(row["step"] for row in steps)  # in_epochs's unit: places along the axis in epochs
        self.bold, self.now = [], []  # (line, its values): cut at each frame; the line at the frame's step
        dpi = 100
        with plt.rc_context(self.STYLE):  # ticks are laid out at each draw: the same style then (see at)
            self.fig, self.axes = plt.subplots(2, 1, figsize=(1.15 * height / dpi, height / dpi), dpi=dpi,
                                               sharex=True)
            panels = [(self.axes[0], [("d_loss", "D's loss"), ("g_loss", "G's loss")], guessing_loss(critic)[0],
                       "losses"),
                      (self.axes[1], [("d_acc_real", "D right on real"), ("d_acc_fake", "D right on fake")], 0.5,
                       "how often D is right")]
            for ax, curves, guessing, title in panels:
                for key, label in curves:
                    mean = smoothed([row[key] for row in steps], window)
                    line, = ax.plot(self.x, mean, label=label)
                    ax.plot(self.x, mean, color=line.get_color(), alpha=0.2)  # the rest of the run, to come
                    self.bold.append((line, mean))
                ax.axhline(guessing, color="grey", linestyle="--", linewidth=1.5)  # where D can only guess
                self.now.append(ax.axvline(0, color="black", linewidth=1.5))
                ax.set_title(title)
                ax.legend(loc="upper left")
                ax.grid(alpha=0.3)
            self.axes[1].set(xlabel="epoch", ylim=(-0.02, 1.15), xlim=(0, self.x.max()))
            self.fig.tight_layout()

    def at(self, drawn_after):
        """The picture for a frame drawn after `drawn_after` = (epoch, steps of it done; None: its end)."""
        import matplotlib.pyplot as plt

        epoch, step = drawn_after
        until = epoch - 1 + (self.steps_per_epoch if step is None else step) / self.steps_per_epoch
        done = self.x <= until + 1e-9
        for line, mean in self.bold:
            line.set_data(self.x[done], mean[done])
        for now in self.now:
            now.set_xdata([until, until])
        self.axes[1].set_xlim(0, max(self.x.max(), until))
        with plt.rc_context(self.STYLE):
            self.fig.canvas.draw()
        return np.asarray(self.fig.canvas.buffer_rgba())[..., :3].copy()

    def close(self):
        import matplotlib.pyplot as plt
        plt.close(self.fig)


def plot_bars_beside_picture(path, title, bars, picture):
    """One PNG, two panels. Left, grouped bars: `bars` = dict(title, ylabel, names (one per group),
    series ({label: one value per name}), lines ([(level, label)], across)). Right, `picture` = (title,
    uint8 array, e.g. a captioned_grid, note under it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    picture_title, pixels, note = picture
    with plt.rc_context({"font.size": 16, "axes.titlesize": 18, "legend.fontsize": 14}):
        fig, (left, right) = plt.subplots(1, 2, figsize=(20, 10), gridspec_kw={"width_ratios": [1, 1]})
        width = 0.8 / len(bars["series"])
        positions = np.arange(len(bars["names"]))
        for i, (label, values) in enumerate(bars["series"].items()):
            left.bar(positions + (i - (len(bars["series"]) - 1) / 2) * width, values, width, label=label)
        for (level, label), style in zip(bars.get("lines", []), ("--", ":", "-.")):
            left.axhline(level, color="grey", linestyle=style, linewidth=2, label=label)
        left.set_xticks(positions, bars["names"], rotation=30, ha="right")
        tallest = np.nanmax([np.nanmax(values) for values in bars["series"].values()])  # NaN: a class not asked
        left.set(title=bars["title"], ylabel=bars["ylabel"], ylim=(0, 1.3 * tallest))  # room for the legend
        left.legend(loc="upper center", ncol=2)
        left.grid(alpha=0.3, axis="y")
        right.imshow(pixels, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        right.set_title(picture_title)
        right.set_xlabel(note)
        right.set_xticks([]), right.set_yticks([])
        for side in right.spines.values():
            side.set_visible(False)
        fig.suptitle(title, fontsize=20)
        fig.tight_layout()
        fig.savefig(path, dpi=100, format="png")
        plt.close(fig)


def plot_runs(path, title, runs):
    """Several runs on shared axes: runs = [dict(label, steps, history, frame (uint8 picture or None),
    frame_title, critic (optional))], with steps, history and critic as plot_training takes them. Top: D's and
    G's losses, D's accuracies (real solid, fake dashed) and FD where any run was scored, each run one colour;
    below: each run's frame."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    scored = any(row.get("fd") is not None for run in runs for row in run["history"])
    with plt.rc_context({"font.size": 14, "axes.titlesize": 16, "legend.fontsize": 12, "lines.linewidth": 2}):
        fig = plt.figure(figsize=(6 * (3 + scored), 12))
        curves, frames = fig.subfigures(2, 1, height_ratios=[1, 1.1])
        axes = curves.subplots(1, 3 + scored)
        for colour, run in zip(plt.rcParams["axes.prop_cycle"].by_key()["color"], runs):
            steps = run["steps"]
            x, window = in_epochs(steps)
            for ax, key, style in ((axes[0], "d_loss", "-"), (axes[1], "g_loss", "-"),
                                   (axes[2], "d_acc_real", "-"), (axes[2], "d_acc_fake", "--")):
                ax.plot(x, smoothed([row[key] for row in steps], window), style, color=colour,
                        label=run["label"] if key == "d_loss" else None)
            if scored:
                points = [(row["epoch"], row["fd"]) for row in run["history"] if row.get("fd") is not None]
                if points:
                    axes[3].plot(*zip(*points), "o-", color=colour)
        # Where D can only guess; for the losses only where every run has the same loss (BCE's ln 2, or a
        # critic's 0 for D's loss: guessing_loss)
        kinds = {bool(run.get("critic")) for run in runs}
        bce, critic = kinds == {False}, kinds == {True}
        levels = (guessing_loss(critic)[0] if bce or critic else None, np.log(2) if bce else None, 0.5)
        for (ax, name), level in zip(((axes[0], "D's loss"), (axes[1], "G's loss"),
                                      (axes[2], "D right on real (solid), on fake (dashed)")), levels):
            if level is not None:
                ax.axhline(level, color="grey", linestyle=":", linewidth=1.5)
            ax.set(title=name, xlabel="epoch")
            ax.grid(alpha=0.3)
        if scored:
            axes[3].set(title="FD (lower is better)", xlabel="epoch")
            axes[3].xaxis.set_major_locator(MaxNLocator(integer=True))  # scored at whole epochs
            axes[3].grid(alpha=0.3)
        curves.legend(loc="lower center", ncol=min(len(runs), 2), bbox_to_anchor=(0.5, 0.0))
        curves.subplots_adjust(bottom=0.3, top=0.86, wspace=0.25)
        curves.suptitle(f"{title}   (dotted: where D can only guess)", fontsize=20)
        frames.subplots_adjust(top=0.92, bottom=0.01, wspace=0.05)
        for ax, run in zip(np.atleast_1d(frames.subplots(1, len(runs))), runs):
            if run["frame"] is not None:
                ax.imshow(run["frame"], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            ax.set_title(run["frame_title"])
            ax.axis("off")
        fig.savefig(path, dpi=80, format="png")
        plt.close(fig)


def plot_sweep(path, title, setting, values, seeds, results):
    """One setting's values, each trained with several seeds: results = {(value, seed): dict(fd (None if
    not scored yet), frame (uint8 picture or None), note (a word over the picture, or None))}. Left: each
    run's FD, one dot a seed, a bar at each value's median; right: every run's last grid, a row a value, a
    column a seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with plt.rc_context({"font.size": 14, "axes.titlesize": 15}):
        fig = plt.figure(figsize=(7 + 2.6 * len(seeds), max(6.5, 2.8 * len(values) + 1)))
        scores, grids = fig.subfigures(1, 2, width_ratios=[7, 2.6 * len(seeds)])
        ax = scores.subplots()
        for x, value in enumerate(values):
            scored = [(seed, results[value, seed]["fd"]) for seed in seeds
                      if results.get((value, seed), {}).get("fd") is not None]
            fds = [fd for _, fd in scored]
            for offset, (seed, fd) in zip(np.linspace(-0.15, 0.15, len(scored)) if len(scored) > 1 else [0.0], scored):
                ax.plot(x + offset, fd, "o", markersize=10, color="C0")
                ax.annotate(f"{seed}", (x + offset, fd), xytext=(7, 0), textcoords="offset points", va="center",
                            fontsize=11, color="C0")  # which seed: its pictures are in that column
            if fds:
                ax.hlines(np.median(fds), x - 0.25, x + 0.25, color="C1", linewidth=3)
        ax.set_xticks(range(len(values)), [str(value) for value in values])
        ax.set_xlim(-0.6, len(values) - 0.4)
        ax.set(title="FD at the end: a dot a seed (numbered), a bar the median", xlabel=setting, ylabel="FD (lower is better)")
        ax.grid(alpha=0.3, axis="y")
        scores.subplots_adjust(left=0.18, right=0.95, top=0.88, bottom=0.12)
        cells = np.asarray(grids.subplots(len(values), len(seeds), squeeze=False))
        for row, value in enumerate(values):
            for column, seed in enumerate(seeds):
                cell = cells[row, column]
                frame = results.get((value, seed), {}).get("frame")
                if frame is not None:
                    cell.imshow(frame, cmap="gray", vmin=0, vmax=255, interpolation="antialiased")
                if note := results.get((value, seed), {}).get("note"):  # e.g. where it diverged
                    cell.text(0.5, 0.5, note, transform=cell.transAxes, ha="center", va="center", fontsize=12,
                              color="C3", bbox=dict(facecolor="white", alpha=0.85, edgecolor="C3"))
                cell.set_xticks([]), cell.set_yticks([])
                if row == 0:
                    cell.set_title(f"seed {seed}")
                if column == 0:
                    cell.set_ylabel(f"{setting} {value}")
        grids.subplots_adjust(left=0.1, right=0.98, top=0.9, bottom=0.02, wspace=0.05, hspace=0.08)
        fig.suptitle(title, fontsize=18)
        fig.savefig(path, dpi=80, format="png")
        plt.close(fig)


def plot_scores(path, title, scores, examples, xlabel, line, probabilities=True, by_class=None):
    """Numbers given to several sets of images, and a few images with theirs. Top: one histogram per set
    (`scores` = {name: 1-D array}, each in % of its own size) on shared bins, with a dotted line at `line` =
    (level, label): probabilities on [0, 1], shown in %, or any scores (`probabilities` False) on their own
    range. Beside it, where `by_class` = (panel title, row labels, {name of a set in scores: a mean per row,
    None where the row has none}): those means as bars, each set in its histogram's colour. Below: `examples` =
    [(row title, uint8 [n, 28, 28], n numbers)], a row each, every image titled with its number."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = np.concatenate(list(scores.values()))
    low, high = (0.0, 1.0) if probabilities else (values.min(), max(values.max(), values.min() + 1e-6))
    bins = np.linspace(low, high, 41)
    columns = max(len(images) for _, images, _ in examples)
    colours = dict(zip(scores, ("tab:blue", "tab:green", "tab:red", "tab:orange", "tab:purple")))  # up to five sets
    assert len(colours) == len(scores), "a set without a colour would not be drawn"
    with plt.rc_context({"font.size": 14, "axes.titlesize": 16, "legend.fontsize": 14}):
        fig = plt.figure(figsize=(16 + 6 * bool(by_class), 8 + 2.2 * len(examples)))
        top, bottom = fig.subfigures(2, 1, height_ratios=[8, 2.2 * len(examples)])
        ax, side = top.subplots(1, 2, width_ratios=[5, 3]) if by_class else (top.subplots(), None)
        for name, numbers in scores.items():
            ax.hist(numbers, bins=bins, weights=np.full(len(numbers), 100.0 / len(numbers)), histtype="stepfilled",
                    alpha=0.35, color=colours[name], edgecolor=colours[name], linewidth=2,
                    label=f"{name} (mean {numbers.mean():.2f})")
        ax.axvline(line[0], color="grey", linestyle=":", linewidth=2, label=line[1])
        ax.set(xlabel=xlabel, ylabel="% of the set", xlim=(low, high))
        ax.legend(loc="best")
        ax.grid(alpha=0.3)
        if by_class:
            _bars_by_class(side, *by_class, colours, line[0], (low, high) if probabilities else None)
            top.subplots_adjust(wspace=0.45)  # room for the class names between the two panels
        top.suptitle(title, fontsize=18)
        rows = bottom.subfigures(len(examples), 1)
        for row, (name, images, numbers) in zip(np.atleast_1d(rows), examples):
            row.suptitle(name, fontsize=16)
            cells = row.subplots(1, columns)
            row.subplots_adjust(top=0.7, bottom=0.02, wspace=0.15)  # room for the row's title over the images'
            for cell in cells:
                cell.axis("off")
            for cell, image, number in zip(cells, images, numbers):
                cell.imshow(image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
                cell.set_title(f"{number:.0%}" if probabilities else f"{number:.2f}", fontsize=14)
        fig.savefig(path, dpi=80, format="png")
        plt.close(fig)


def _bars_by_class(ax, title, labels, means, colours, line, limits):
    """plot_scores's side panel: each set's mean per row as horizontal bars, the first set's bar on top."""
    rows, sets = np.arange(len(labels)), list(means)
    height = 0.8 / len(sets)
    for i, name in enumerate(sets):
        numbers = np.array([np.nan if m is None else m for m in means[name]], np.float64)
        ax.barh(rows - 0.4 + height * (i + 0.5), numbers, height, color=colours[name], alpha=0.6, label=name)
    ax.axvline(line, color="grey", linestyle=":", linewidth=2)
    ax.set_yticks(rows, labels)
    ax.invert_yaxis()  # the first row on top, as a table reads
    ax.set(title=title, xlabel="the mean of each class", xlim=limits)
    ax.legend(loc="lower right", fontsize=12)
    ax.grid(alpha=0.3, axis="x")
