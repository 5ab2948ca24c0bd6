import gzip

import numpy as np
import pytest

import data


def test_idx_round_trip(tmp_path):
    images = np.arange(3 * 28 * 28, dtype=np.uint32).reshape(3, 28, 28).astype(np.uint8)
    data.write_idx(tmp_path / "x.gz", images)
    back = data.read_idx(tmp_path / "x.gz")
    assert back.shape == (3, 28, 28) and back.dtype == np.uint8
    np.testing.assert_array_equal(back, images)


def test_wrong_magic_is_reported_with_the_file_name(tmp_path):
    path = tmp_path / "bad.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"\x01\x02\x08\x01" + (5).to_bytes(4, "big") + bytes(5))
    with pytest.raises(data.DataError, match=r"bad\.gz: not an IDX file"):
        data.read_idx(path)


def test_truncated_data_is_reported(tmp_path):
    path = tmp_path / "short.gz"
    with gzip.open(path, "wb") as f:
        f.write(bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in (10, 28, 28)) + bytes(100))
    with pytest.raises(data.DataError, match=r"short\.gz: IDX data holds 100 bytes .* truncated"):
        data.read_idx(path)


def test_bytes_beyond_the_header_s_size_are_reported_and_unpacked_files_read(tmp_path):
    path = tmp_path / "long"
    path.write_bytes(bytes([0, 0, 8, 1]) + (5).to_bytes(4, "big") + bytes(7))
    with pytest.raises(data.DataError, match=r"long: IDX data holds 7 bytes but its header \(5,\) needs 5"):
        data.read_idx(path)
    path.write_bytes(bytes([0, 0, 8, 1]) + (5).to_bytes(4, "big") + bytes(range(5)))
    np.testing.assert_array_equal(data.read_idx(path), np.arange(5, dtype=np.uint8))


def test_truncated_gzip_is_reported(tmp_path):
    good = tmp_path / "good.gz"
    data.write_idx(good, np.zeros((50, 28, 28), np.uint8))
    cut = tmp_path / "cut.gz"
    cut.write_bytes(good.read_bytes()[:40])
    with pytest.raises(data.DataError, match=r"cut\.gz: not a readable gzip file"):
        data.read_idx(cut)


def test_mismatched_image_and_label_counts(tiny_data):
    data.write_idx(tiny_data / data.FILES["train"][1], np.zeros(7, np.uint8))
    with pytest.raises(data.DataError, match="96 images but 7 labels"):
        data.load_split("train", tiny_data)


def test_images_of_the_wrong_size_are_refused(tiny_data):
    data.write_idx(tiny_data / data.FILES["train"][0], np.zeros((96, 20, 20), np.uint8))
    with pytest.raises(data.DataError, match="expected 28x28"):
        data.load_split("train", tiny_data)


def test_load_split_and_limit(tiny_data):
    images, labels = data.load_split("train", tiny_data, limit=10)
    assert images.shape == (10, 28, 28) and labels.shape == (10,)
    test_images, _ = data.load_split("test", tiny_data)
    assert test_images.shape == (32, 28, 28)


def test_search_order_explicit_then_env_then_defaults(tiny_data, tmp_path, monkeypatch):
    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.setenv(data.ENV_VAR, str(other))
    assert data.find_data_dir(tiny_data) == tiny_data          # --data-dir wins over the variable
    assert data.find_data_dir(None) == other                    # then the variable
    monkeypatch.delenv(data.ENV_VAR)
    monkeypatch.setattr(data, "KERAS_CACHE", tmp_path / "empty_cache")
    monkeypatch.setattr(data, "DEBIAN_DIR", tiny_data)
    assert data.find_data_dir(None) == tiny_data                # then the default places


def test_nothing_found_lists_every_place_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    monkeypatch.setattr(data, "KERAS_CACHE", tmp_path / "cache")
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "debian")
    with pytest.raises(data.DataError) as e:
        data.find_data_dir(None, allow_download=False)
    message = str(e.value)
    assert "\n" not in message
    for expected in ("--data-dir", data.ENV_VAR, "cache", "debian", "download", "apt-get install dataset-fashion-mnist"):
        assert expected in message


def test_missing_named_folder_is_an_error_not_a_fallback(tmp_path):
    with pytest.raises(data.DataError, match="does not exist"):
        data.find_data_dir(tmp_path / "nope")


def test_pixel_scaling_round_trips_for_both_ranges():
    images = np.array([[[0, 128, 255]]], np.uint8).repeat(28, 1)[:, :, :3]
    for pixel_range in ((-1, 1), (0, 1)):
        x = data.scale_pixels(images, pixel_range)
        assert x.shape == (1, 28, 3, 1)
        assert x.min() == pixel_range[0] and x.max() == pixel_range[1]
        np.testing.assert_array_equal(data.to_uint8(x, pixel_range), images)


def test_unpacked_files_without_gz_are_read_too(tiny_data):
    for pair in data.FILES.values():
        for name in pair:
            packed = tiny_data / name
            (tiny_data / name.removesuffix(".gz")).write_bytes(gzip.decompress(packed.read_bytes()))
            packed.unlink()
    images, labels = data.load_split("train", tiny_data)
    assert images.shape == (96, 28, 28) and len(labels) == 96
    assert data.find_data_dir(str(tiny_data)) == tiny_data


def test_a_path_that_cannot_be_read_is_one_line(tmp_path):
    (tmp_path / "folder").mkdir()
    with pytest.raises(data.DataError, match=r"folder: cannot be read .* check the file"):
        data.read_idx(tmp_path / "folder")
