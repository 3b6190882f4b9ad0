"""Image folders: layouts, stratified splits, the decode cache, and every bad-input error."""

import os

import numpy as np
import pytest
from PIL import Image
from shapes import CLASSES, make_shapes

from nas.config import parse_budget
from nas.data import _datasets as data
from nas.data import _folder as folder
from nas.data import _sources as sources
from nas.errors import ConfigError, DataError


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("NAS_CACHE", str(root))
    return root


@pytest.fixture
def decodes(monkeypatch):
    """Counts the files decoded (not read from the cache)."""
    counted = []
    real = folder.decode_all

    def counting(root, entries, *args):
        counted.append(len(entries))
        return real(root, entries, *args)

    monkeypatch.setattr(folder, "decode_all", counting)
    return counted


def budget_for(path, **data_keys) -> dict:
    table = {"dataset": "folder", "path": str(path), **data_keys}
    return {"name": "own", "data": table, "target": {"min": 0.5}, "budget": {"max_params": 5000, "max_epochs": 2},
            "search": {"screen_epochs": 1},
            "space": {}, "train": {"lr": 0.01}}


def load(path, **data_keys):
    budget = parse_budget(budget_for(path, **data_keys), str(path.parent / "budget.toml"))
    return budget, data.from_config(budget.data)


def write_png(path, size_hw=(8, 8), mode="RGB", value=100):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (size_hw[1], size_hw[0]), value if mode == "L" else (value, 0, 0)).save(path)


def test_flat_folder_is_split_stratified_and_deterministically_by_seed(tmp_path, cache):
    root = make_shapes(tmp_path / "shapes", per_class=30)
    budget, ds = load(root)
    assert budget.input_shape == ds.input_shape == (3, 16, 16) and budget.classes == ds.classes == 3
    assert ds.class_names == CLASSES
    assert (len(ds.train), len(ds.val), len(ds.test)) == (72, 9, 9)
    for split in (ds.train, ds.val, ds.test):
        assert np.bincount(split.labels.numpy()).tolist() == [len(split) // 3] * 3  # every class, equally
    again = load(root)[1]
    assert again.fingerprint == ds.fingerprint
    reseeded = load(root, seed=1)[1]
    assert reseeded.fingerprint != ds.fingerprint
    assert sorted(reseeded.val.images.flatten(1).sum(1).tolist()) != sorted(ds.val.images.flatten(1).sum(1).tolist())
    # the pixels are the files' pixels, channels first
    first = np.asarray(Image.open(root / "circle" / "circle_0000.png"))
    assert any(np.array_equal(img.numpy().transpose(1, 2, 0), first) for img in ds.train.images[:30])


def test_split_folders_are_the_splits_and_a_missing_test_split_is_taken_from_train(tmp_path, cache):
    root = make_shapes(tmp_path / "shapes", per_class=20, splits=True)
    _, ds = load(root)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (36, 12, 12)
    (root / "test").rename(tmp_path / "elsewhere")
    _, ds = load(root, test_fraction=0.25)
    assert (len(ds.val), len(ds.test), len(ds.train)) == (12, 9, 27)


def test_image_size_and_channels_resize_and_convert(tmp_path, cache):
    root = make_shapes(tmp_path / "shapes", per_class=6, size_hw=(20, 30))
    budget, ds = load(root, image_size=[10, 12], channels=1, val_fraction=0.2, test_fraction=0.2)
    assert budget.input_shape == ds.input_shape == (1, 10, 12)
    assert ds.train.images.shape[1:] == (1, 10, 12)
    expected = np.asarray(Image.open(root / "circle" / "circle_0000.png").convert("L").resize(
        (12, 10), Image.Resampling.BILINEAR))
    assert any(np.array_equal(img[0].numpy(), expected) for img in ds.train.images)


def test_second_load_reads_the_cache_and_a_changed_file_is_decoded_again(tmp_path, cache, decodes):
    root = make_shapes(tmp_path / "shapes", per_class=10)
    first = load(root)[1]
    assert decodes == [30]
    assert load(root)[1].fingerprint == first.fingerprint and decodes == [30]  # nothing decoded
    changed = root / "square" / "square_0003.png"
    write_png(changed, (16, 16), value=250)
    os.utime(changed, ns=(1, 1))  # a new mtime even on a coarse-clock file system
    again = load(root)[1]
    assert decodes == [30, 30] and again.fingerprint != first.fingerprint
    assert any(int(img[0].max()) == 250 and int(img[1].max()) == 0 for img in
               [*again.train.images, *again.val.images, *again.test.images])
    (root / "square" / "square_0004.png").unlink()  # a removed file changes the listing too
    fewer = load(root)[1]
    assert decodes == [30, 30, 29] and len(fewer.train) + len(fewer.val) + len(fewer.test) == 29


def test_decoding_in_parallel_processes_gives_the_same_images(tmp_path, cache, monkeypatch):
    root = make_shapes(tmp_path / "shapes", per_class=10)
    inline = load(root)[1]
    for f in (cache / "folders").glob("*.npy"):
        f.unlink()
    monkeypatch.setattr(folder, "PARALLEL_MIN_FILES", 0)
    monkeypatch.setattr(folder, "_CHUNK_FILES", 8)
    monkeypatch.setenv("NAS_CORES", "2")
    assert load(root)[1].fingerprint == inline.fingerprint


# --- errors: one line, naming the file or class and the fix ------------------------------------


def one_line_error(root, match, **keys):
    with pytest.raises((DataError, ConfigError), match=match) as caught:
        load(root, **keys)
    assert "\n" not in str(caught.value)
    return str(caught.value)


def test_an_unreadable_file_is_named(tmp_path, cache):
    root = make_shapes(tmp_path / "shapes", per_class=5)
    (root / "triangle" / "triangle_0002.png").write_bytes(b"not a png")
    message = one_line_error(root, "cannot be decoded as an image", val_fraction=0.2, test_fraction=0.2)
    assert str(root / "triangle" / "triangle_0002.png") in message and "replace or remove" in message


def test_an_empty_class_is_named(tmp_path, cache):
    root = make_shapes(tmp_path / "shapes", per_class=5)
    (root / "hexagon").mkdir()
    (root / "hexagon" / "notes.txt").write_text("no images here")
    message = one_line_error(root, "class 'hexagon' has no PNG, JPEG or BMP images")
    assert str(root / "hexagon") in message


def test_a_class_missing_from_a_split_folder_is_named(tmp_path, cache):
    root = make_shapes(tmp_path / "shapes", per_class=10, splits=True)
    for f in (root / "val" / "square").iterdir():
        f.unlink()
    (root / "val" / "square").rmdir()
    message = one_line_error(root, "class 'square' is missing from the val split")
    assert str(root / "val" / "square") in message


def test_a_class_only_in_a_split_folder_is_named(tmp_path, cache):
    root = make_shapes(tmp_path / "shapes", per_class=10, splits=True)
    write_png(root / "test" / "star" / "a.png", (16, 16))
    one_line_error(root, r"class 'star' is not in .*train")


def test_a_class_too_small_to_split_is_named(tmp_path, cache):
    root = make_shapes(tmp_path / "shapes", per_class=10)
    for f in sorted((root / "circle").iterdir())[2:]:
        f.unlink()
    one_line_error(root, r"class 'circle' has 2 image\(s\), too few to split off val and test")


def test_mixed_sizes_without_image_size_name_the_file_and_the_key(tmp_path, cache):
    root = make_shapes(tmp_path / "shapes", per_class=5)
    write_png(root / "square" / "zz_big.png", (20, 18))
    message = one_line_error(root, r"zz_big.png: is 20x18 \(height x width\), other images are 16x16",
                             val_fraction=0.2, test_fraction=0.2)
    assert "image_size = [height, width]" in message
    assert load(root, image_size=[16, 16], val_fraction=0.2, test_fraction=0.2)[1].input_shape == (3, 16, 16)


def test_a_missing_folder_and_a_single_class_are_config_errors_naming_the_key(tmp_path, cache):
    message = one_line_error(tmp_path / "nope", r"data.path: .*nope: no such folder")
    assert "budget.toml" in message
    write_png(tmp_path / "one" / "only" / "a.png")
    one_line_error(tmp_path / "one", r"data.path: .*has 1 class folder")
    with pytest.raises(ConfigError, match="data.channels: 2 is not one of 1"):
        load(make_shapes(tmp_path / "shapes", per_class=4), channels=2)
    with pytest.raises(ConfigError, match=r"data.train: does not apply to dataset = 'folder'"):
        load(tmp_path / "shapes", train=100)
    with pytest.raises(ConfigError, match=r"data.image_size: must be \[height, width\]"):
        load(tmp_path / "shapes", image_size=[16])


def test_a_dataset_over_half_the_ram_fails_before_decoding(tmp_path, cache, decodes, monkeypatch):
    root = make_shapes(tmp_path / "shapes", per_class=10)
    monkeypatch.setattr(sources, "ram_bytes", lambda: 40_000)  # 30 images x 768 bytes = 23,040 > 20,000
    message = one_line_error(root, r"0.00 GB as uint8 exceeds the limit of 0.00 GB \(half of this machine's RAM\)")
    assert "30 images of 3x16x16" in message and decodes == []


def test_a_relative_path_is_resolved_against_the_budget_file(tmp_path, cache):
    make_shapes(tmp_path / "data" / "shapes", per_class=5)
    budget = parse_budget(budget_for("data/shapes"), str(tmp_path / "budget.toml"))
    assert budget.data.path == str(tmp_path / "data" / "shapes") and budget.classes == 3
    elsewhere = parse_budget(budget_for("shapes"), "stored/budget.toml", base_dir=tmp_path / "data")
    assert elsewhere.data.path == budget.data.path


def test_the_cli_exits_2_with_one_line_for_a_bad_folder(tmp_path, cache, capsys):
    from nas.cli import main

    root = make_shapes(tmp_path / "shapes", per_class=5)
    (root / "circle" / "circle_0001.png").write_bytes(b"\x89PNG broken")
    (tmp_path / "b.toml").write_text(
        'name = "bad"\n[data]\ndataset = "folder"\npath = "shapes"\nval_fraction = 0.2\ntest_fraction = 0.2\n'
        '[target]\nmin = 0.5\n[budget]\nmax_params = 3000\nmax_epochs = 2\n[space]\n[train]\nlr = 0.01\n'
        '[search]\ntrials = 1\nscreen_epochs = 1\n')
    from nas.model import ArchSpec, ConvSpec, StageSpec

    (tmp_path / "arch.json").write_text(ArchSpec(stages=(StageSpec(convs=(ConvSpec(channels=4),)),)).to_json())
    assert main(["train", str(tmp_path / "b.toml"), "--arch", str(tmp_path / "arch.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "circle_0001.png: cannot be decoded as an image" in err
