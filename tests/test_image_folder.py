"""Training on a folder of your own images (machinery/image_folder.py, data.load_training_set): folders the tests
draw themselves, in several formats, sizes and colour modes; class names that travel with the run; the judge
that refuses what it does not know; and the folders a careless user gives."""

import json
import os
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

import data
import dcgan
import evaluate
import generate
from machinery import image_folder, preflight
from conftest import write_fake_fashion_mnist

SHAPES = {"circle": lambda x, y: x * x + y * y < 0.5, "bar": lambda x, y: abs(x) < 0.25,
          "cross": lambda x, y: (abs(x) < 0.2) | (abs(y) < 0.2)}


def shape_picture(kind, size, jitter=0.0, mode="L"):
    """A white shape on black, `size` (w, h), shifted a little by `jitter`, in Pillow `mode`."""
    w, h = size
    y, x = np.mgrid[-1:1:h * 1j, -1:1:w * 1j]  # the image's own corners at +-1, whatever its shape
    grey = np.where(SHAPES[kind](x - jitter, y + jitter), 255, 0).astype(np.uint8)
    return Image.fromarray(grey).convert(mode)


def draw_folder(root, per_class=12, with_classes=True):
    """Three classes of shapes, each image another format, size or colour mode."""
    formats = [("png", "L", (28, 28)), ("jpg", "RGB", (64, 48)), ("png", "RGBA", (40, 40)), ("bmp", "RGB", (30, 90)),
               ("gif", "P", (56, 56)), ("webp", "RGB", (33, 33))]
    for kind in SHAPES:
        folder = root / kind if with_classes else root
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            ending, mode, size = formats[i % len(formats)]
            shape_picture(kind, size, (i % 5 - 2) / 20, mode).save(folder / f"{kind}_{i:02d}.{ending}")
        if not with_classes:
            break
    return root


@pytest.fixture
def shapes(tmp_path):
    return draw_folder(tmp_path / "shapes")


def test_a_folder_of_class_folders_is_read_as_28x28_grey_with_the_folders_as_classes(shapes):
    (shapes / "notes.txt").write_text("not an image, not read")
    (shapes / ".ipynb_checkpoints").mkdir()
    shutil.copy(shapes / "bar" / "bar_00.png", shapes / ".ipynb_checkpoints" / "bar_00.png")  # hidden: no class
    read = data.load_training_set(shapes)
    assert read.kind == data.IMAGE_FOLDER and read.class_names == ["bar", "circle", "cross"]  # alphabetical
    assert read.images.shape == (36, 28, 28) and read.images.dtype == np.uint8
    assert np.bincount(read.classes).tolist() == [12, 12, 12]
    assert not read.judge_knows_it()
    # Every format and size came out as the same kind of picture: a white shape in the middle, black corners
    # (but for the cross, whose arms reach the edges).
    for image, label in zip(read.images, read.classes):
        assert image[12:16, 12:16].mean() > 200, read.class_names[label]
        assert read.class_names[label] == "cross" or image[:3, :3].mean() < 40 and image[-3:, -3:].mean() < 40


def test_images_directly_in_the_folder_are_one_class_named_after_it(tmp_path):
    folder = draw_folder(tmp_path / "my-drawings", with_classes=False)
    read = data.load_training_set(folder)
    assert read.class_names == ["my-drawings"] and set(read.classes) == {0} and len(read.images) == 12


def test_colour_becomes_luminance_transparency_lies_on_white_and_the_long_side_is_cropped(tmp_path):
    folder = tmp_path / "colours"
    folder.mkdir()
    Image.new("RGB", (40, 40), (255, 0, 0)).save(folder / "red.png")
    Image.new("RGBA", (40, 40), (0, 0, 0, 0)).save(folder / "clear.png")  # fully transparent: white
    wide = np.zeros((28, 84), np.uint8)
    wide[:, 28:56] = 255  # black | white | black: the centred square is all white
    Image.fromarray(wide).save(folder / "wide.png")
    pictures = {path.stem: image_folder.to_28x28(path) for path in folder.iterdir()}
    assert abs(int(pictures["red"][0].mean()) - 76) <= 1  # 0.299 x 255
    assert pictures["clear"][0].min() == 255
    assert pictures["wide"][0].min() > 250 and pictures["wide"][1] == (84, 28)


def test_the_digest_of_what_was_read_survives_a_copy_and_sees_a_redrawn_image_of_the_same_size(shapes, tmp_path):
    first = image_folder.read(shapes)
    assert image_folder.read(shutil.copytree(shapes, tmp_path / "copied")).contents == first.contents
    target = shapes / "bar" / "bar_03.bmp"  # a BMP's size is its width x height: redrawn, the same bytes
    size = target.stat().st_size
    shape_picture("circle", (30, 90), mode="RGB").save(target)
    assert target.stat().st_size == size and image_folder.read(shapes).contents != first.contents


def test_a_photo_taken_sideways_stands_up_and_its_size_is_told_upright(tmp_path):
    folder = tmp_path / "phone"
    folder.mkdir()
    wide = np.zeros((60, 120), np.uint8)
    wide[:, :60] = 255  # left half white; the camera was held turned: EXIF 6 says turn it 90 degrees clockwise
    exif = Image.Exif()
    exif[image_folder.ORIENTATION] = 6
    Image.fromarray(wide).save(folder / "photo.jpg", exif=exif)
    picture, size = image_folder.to_28x28(folder / "photo.jpg")
    assert size == (60, 120)
    assert picture[:10].mean() > 200 and picture[-10:].mean() < 50  # the white half is on top now


def test_limit_takes_a_mix_of_the_classes_and_reads_no_more_files_than_it_keeps(shapes, monkeypatch):
    opened = []
    real = image_folder.to_28x28
    monkeypatch.setattr(image_folder, "to_28x28", lambda path: opened.append(path) or real(path))
    read = data.load_training_set(shapes, limit=9)
    assert len(read.images) == 9 and len(set(read.classes)) == 3 and len(opened) == 9


def test_a_file_pillow_cannot_read_is_skipped_and_named(shapes, capsys):
    (shapes / "bar" / "broken.png").write_bytes(b"\x89PNG not really")
    read = data.load_training_set(shapes)
    assert len(read.images) == 36
    said = capsys.readouterr().out
    assert "read 36 of 37 image files" in said and "skipped 1 file Pillow cannot read: bar/broken.png" in said


@pytest.mark.parametrize("make, expected", [
    (lambda root: None, "holds neither Fashion-MNIST's files nor images"),
    (lambda root: (root / "readme.txt").write_text("hi"), "holds neither Fashion-MNIST's files nor images"),
    (lambda root: [(root / name).write_bytes(junk) for name, junk in (("a.png", b"junk"), ("b.jpg", b""))],
     "none of its 2 image files could be read (first: "),
    (lambda root: draw_folder(root, 2) and shutil.copy(root / "bar" / "bar_00.png", root / "loose.png"),
     "holds images (loose.png, ...) beside class folders (bar, circle, cross); move them into a class folder"),
    (lambda root: draw_folder(root, 2) and (root / "dog").mkdir(),
     "class folder {root}/dog holds no image (.png, .jpg, ...); add some, or move it out of the folder"),
])
def test_a_folder_that_cannot_be_trained_on_is_one_line_that_says_what_to_do(tmp_path, make, expected):
    root = tmp_path / "careless"
    root.mkdir()
    make(root)
    with pytest.raises(data.DataError) as e:
        data.load_training_set(root)
    assert expected.format(root=root) in str(e.value) and "\n" not in str(e.value)


def test_too_few_images_for_one_batch_is_refused(tmp_path, capsys):
    folder = draw_folder(tmp_path / "few", per_class=3)
    with pytest.raises(SystemExit) as e:
        dcgan.main(["--data-dir", str(folder), "--out", str(tmp_path / "run")])
    assert e.value.code == 2
    assert "--batch 32 is larger than the 9 training images; lower --batch or add images" in capsys.readouterr().err


def test_eval_every_is_refused_on_data_the_judge_does_not_know(shapes, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        dcgan.main(["--data-dir", str(shapes), "--eval-every", "1", "--batch", "4", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "knows only Fashion-MNIST" in err and err.count("\n") == 1


def test_a_slow_folder_is_read_from_the_cache_until_a_file_changes(shapes, tmp_path, monkeypatch):
    monkeypatch.setenv(image_folder.CACHE_ENV_VAR, str(tmp_path / "cache"))
    monkeypatch.setattr(image_folder, "CACHE_WHEN_SLOWER_THAN", 0.0)  # every read counts as slow
    first = image_folder.read(shapes)
    again = image_folder.read(shapes)
    assert not first.from_cache and again.from_cache
    np.testing.assert_array_equal(first.images, again.images)
    np.testing.assert_array_equal(first.classes, again.classes)
    assert (again.contents, again.sizes) == (first.contents, first.sizes)
    shape_picture("bar", (28, 28)).save(shapes / "bar" / "new.png")
    changed = image_folder.read(shapes)
    assert not changed.from_cache and len(changed.images) == 37 and changed.contents != first.contents
    (shapes / "bar" / "new.png").unlink()
    target = shapes / "bar" / "bar_03.bmp"  # redrawn with the same size, and its old time put back
    times = target.stat()
    shape_picture("circle", (30, 90), mode="RGB").save(target)
    os.utime(target, ns=(times.st_atime_ns, times.st_mtime_ns))
    assert not image_folder.read(shapes).from_cache  # the inode's change time gives it away


def test_a_cache_file_that_cannot_be_read_is_passed_over(shapes, tmp_path, monkeypatch):
    monkeypatch.setattr(image_folder, "CACHE_WHEN_SLOWER_THAN", 0.0)
    first = image_folder.read(shapes, cache=tmp_path / "cache")
    for cached in (tmp_path / "cache").iterdir():
        cached.write_bytes(cached.read_bytes()[:100])  # cut short, as by a full disk
    again = image_folder.read(shapes, cache=tmp_path / "cache")
    assert not again.from_cache and again.contents == first.contents


def test_links_to_nothing_and_16_bit_greys(tmp_path):
    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "gone.png").symlink_to(tmp_path / "nowhere.png")  # passed over, like a file of another kind
    ramp = (np.arange(28 * 28).reshape(28, 28) * 83).astype(np.uint16)  # 0 to 65,000: a 16-bit scan
    Image.fromarray(ramp).save(folder / "scan.png")
    read = data.load_training_set(folder)
    assert len(read.images) == 1 and read.class_names == ["odd"]
    assert 100 < read.images[0].mean() < 155  # the ramp's middle grey, not clipped to white


def test_a_fast_folder_leaves_no_cache(shapes, tmp_path, monkeypatch):
    monkeypatch.setenv(image_folder.CACHE_ENV_VAR, str(tmp_path / "cache"))
    monkeypatch.setattr(image_folder, "CACHE_WHEN_SLOWER_THAN", 1e9)
    image_folder.read(shapes)
    assert not image_folder.read(shapes).from_cache and not (tmp_path / "cache").exists()


def test_other_idx_files_are_named_by_a_classes_txt_beside_them(tmp_path):
    folder = write_fake_fashion_mnist(tmp_path / "digits")
    assert data.load_training_set(folder).kind == data.FASHION_MNIST
    (folder / data.CLASS_NAMES_FILE).write_text("\n".join(f"digit {d}" for d in range(10)) + "\n")
    read = data.load_training_set(folder)
    assert read.kind == data.OTHER_IDX and read.class_names[3] == "digit 3" and not read.judge_knows_it()
    (folder / data.CLASS_NAMES_FILE).write_text("zero\none\n")
    with pytest.raises(data.DataError, match="names 2 classes but the labels go up to 9"):
        data.load_training_set(folder)


def test_a_class_is_asked_for_by_its_name_its_command_line_spelling_or_its_index():
    names = ["Ankle boot", "cat/dog", "Zebra"]
    assert data.class_flags(names) == ("ankle-boot", "cat-dog", "zebra")
    assert [data.class_index(text, names) for text in ("ankle-boot", "Cat/Dog", "ZEBRA", "2")] == [0, 1, 2, 2]
    with pytest.raises(ValueError, match="use one of ankle-boot, cat-dog, zebra or an index 0 to 2"):
        data.class_index("sneaker", names)
    assert data.class_index("sneaker") == 7  # Fashion-MNIST's, as before


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    """One epoch of the conditional preset on a folder of three classes of shapes: (the folder, the run)."""
    root = tmp_path_factory.mktemp("folder_run")
    shapes = draw_folder(root / "shapes", per_class=16)
    run = root / "run"
    dcgan.main(["--preset", "conditional", "--epochs", "1", "--batch", "8", "--seed", "0", "--data-dir", str(shapes),
                "--out", str(run)])
    return shapes, run


@pytest.fixture
def folder_run_copy(folder_run, tmp_path):
    shapes, run = folder_run
    return shapes, shutil.copytree(run, tmp_path / "run")


@pytest.mark.tier("training")
def test_a_run_on_a_folder_records_its_classes_and_shows_what_it_read(folder_run):
    shapes, run = folder_run
    config = json.loads((run / "config.json").read_text())
    assert config["class_names"] == ["bar", "circle", "cross"] and config["data_kind"] == data.IMAGE_FOLDER
    assert config["data_contents"] and config["data_dir"] == str(shapes) and config["images"] == 48
    seen = np.asarray(Image.open(run / "training_images.png"))
    frame = np.asarray(Image.open(run / "images" / "epoch_0001.png"))
    assert seen.ndim == 2 and frame.shape[0] < frame.shape[1]  # a row per class: 3 rows of the grid's 5 columns


@pytest.mark.tier("training")
def test_a_folder_run_resumes_without_data_dir_and_refuses_a_changed_folder(folder_run_copy, capsys):
    shapes, run = folder_run_copy
    dcgan.main(["--resume", "--epochs", "2", "--out", str(run)])  # the recorded folder: no --data-dir needed
    assert len((run / "history.csv").read_text().splitlines()) == 3
    shape_picture("bar", (28, 28)).save(shapes / "bar" / "added.png")
    try:
        with pytest.raises(SystemExit) as e:
            dcgan.main(["--resume", "--epochs", "3", "--out", str(run)])
    finally:
        (shapes / "bar" / "added.png").unlink()
    err = capsys.readouterr().err
    assert e.value.code == 2 and f"{shapes} has changed since this run trained on it" in err
    with pytest.raises(SystemExit):
        dcgan.main(["--resume", "--epochs", "3", "--out", str(run), "--data-dir", str(write_fake_fashion_mnist(
            run.parent / "fashion"))])
    assert f"this run trained on a folder of images in {shapes}, not on Fashion-MNIST" in capsys.readouterr().err


@pytest.mark.tier("training")
def test_generate_names_the_folder_s_classes_and_evaluate_refuses_them(folder_run_copy, capsys):
    _, run = folder_run_copy
    pictures = {}
    for asked in ("circle", "Cross", "2"):  # by name, as the folder spells it in another case, by index
        generate.main(["--run", str(run), "--class", asked, "--walks", "2", "--count", "4", "--out", str(run / asked)])
        pictures[asked] = np.asarray(Image.open(run / asked / "samples.png"))
        assert (run / asked / "walks.png").is_file()
    assert not np.array_equal(pictures["circle"], pictures["Cross"])  # the class asked for is drawn
    assert np.array_equal(pictures["Cross"][40:], pictures["2"][40:])  # the same class (the captions differ)
    with pytest.raises(SystemExit):
        generate.main(["--run", str(run), "--class", "sneaker"])
    assert "use one of bar, circle, cross" in capsys.readouterr().err
    from machinery import sampling

    generator, noise_kind, pixel_range = sampling.load(run / "generator.keras")
    assert sampling.class_count(generator) == 3
    _, rows, cols, labels, _ = generate.draw_samples(generator, 6, noise_kind, pixel_range, 0,
                                                     class_names=["bar", "circle", "cross"])
    assert (rows, cols, labels) == (3, 2, ["bar", "circle", "cross"])
    with pytest.raises(SystemExit) as e:
        evaluate.main(["--run", str(run)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "the judge knows only Fashion-MNIST" in err and err.count("\n") == 1
    # The generator file alone, its run's config.json left behind: its classes are counted from the model
    alone = run.parent / "alone"
    alone.mkdir()
    shutil.copy(run / "generator.keras", alone / "generator.keras")
    generate.main(["--generator", str(alone / "generator.keras"), "--class", "class-2", "--walks", "0"])
    assert (alone / "samples.png").is_file()
    with pytest.raises(SystemExit):
        evaluate.main(["--generator", str(alone / "generator.keras")])
    assert "trained on 3 classes, not Fashion-MNIST's 10" in capsys.readouterr().err


@pytest.mark.parametrize("change, expected", [
    (dict(kind=data.FASHION_MNIST, contents=None), "this run trained on a folder of images in /mine, not on "
                                                   "Fashion-MNIST in /given; resume with --data-dir /mine"),
    (dict(contents="another"), "/given has changed since this run trained on it"),
    (dict(class_names=["bar", "round"]), "/given has changed since this run trained on it"),
])
def test_a_resumed_run_refuses_other_data(change, expected):
    config = dict(data_kind=data.IMAGE_FOLDER, data_dir="/mine", data_contents="digest", class_names=["bar", "circle"])
    now = dict(images=None, classes=None, class_names=["bar", "circle"], folder="/given", kind=data.IMAGE_FOLDER,
               contents="digest")
    args = SimpleNamespace(resume=True, eval_every=None)
    preflight.check_data_suits(args, config, data.TrainingSet(**now))  # the same data: accepted
    with pytest.raises(preflight.runs.RunError) as e:
        preflight.check_data_suits(args, config, data.TrainingSet(**{**now, **change}))
    assert expected in str(e.value)


def test_a_resumed_run_of_other_idx_files_refuses_a_changed_classes_txt():
    config = dict(data_kind=data.OTHER_IDX, data_dir="/digits", class_names=["zero", "one"])
    renamed = data.TrainingSet(None, None, ["nought", "one"], "/digits", data.OTHER_IDX)
    with pytest.raises(preflight.runs.RunError, match="classes renamed"):
        preflight.check_data_suits(SimpleNamespace(resume=True, eval_every=None), config, renamed)


def test_a_resumed_run_s_data_folder_is_the_recorded_one_only_for_a_folder_of_images():
    class Args:
        data_dir, resume = None, True
    assert preflight.data_dir_of(Args, {"data_kind": data.IMAGE_FOLDER, "data_dir": "/mine"}) == "/mine"
    assert preflight.data_dir_of(Args, {"data_kind": data.FASHION_MNIST, "data_dir": "/x"}) is None
    Args.data_dir = "/given"
    assert preflight.data_dir_of(Args, {"data_kind": data.IMAGE_FOLDER, "data_dir": "/mine"}) == "/given"


def test_the_timing_tool_writes_two_folders_and_reads_each_twice(capsys, monkeypatch):
    from test_evaluate import real_data_or_skip
    from tools import folder_timing

    real_data_or_skip()
    monkeypatch.setattr(image_folder, "CACHE_WHEN_SLOWER_THAN", 0.0)  # so that the second reads come from it
    folder_timing.main(["--small", "20", "--large", "2"])
    table = capsys.readouterr().out
    assert "| 20 small PNGs, 56x56 colour" in table and "| 2 large JPEGs, 3000x2000 colour" in table
    assert table.count("from the cache") == 2 and "CPU: " in table
