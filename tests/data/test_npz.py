"""An .npz of arrays as a dataset: each layout, optional splits and class names, every bad-input error."""

import numpy as np
import pytest

from nas.config import parse_budget
from nas.data import _datasets as data
from nas.errors import ConfigError, DataError

RNG = np.random.default_rng(0)
IMAGES_NCHW = RNG.integers(0, 256, (60, 3, 5, 7), dtype=np.uint8)  # 3 channels of 5x7: an odd, non-square size
LABELS = np.arange(60) % 3


def budget_for(path, **data_keys):
    table = {"dataset": "npz", "path": str(path), **data_keys}
    return parse_budget({"name": "arrays", "data": table, "target": {"min": 0.5},
                         "budget": {"max_params": 5000, "max_epochs": 2}, "space": {"kernel": [1, 3]},
                         "train": {"lr": 0.01}, "search": {"screen_epochs": 1}}, str(path.parent / "budget.toml"))


def load(path, **data_keys):
    budget = budget_for(path, **data_keys)
    return budget, data.from_config(budget.data)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC", "NHW"])
def test_each_layout_gives_the_same_nchw_images(tmp_path, layout):
    images = IMAGES_NCHW[:, :1] if layout == "NHW" else IMAGES_NCHW
    stored = {"NCHW": images, "NHWC": images.transpose(0, 2, 3, 1), "NHW": images[:, 0]}[layout]
    path = tmp_path / "arrays.npz"
    np.savez(path, x_train=stored[:40], y_train=LABELS[:40], x_val=stored[40:50], y_val=LABELS[40:50],
             x_test=stored[50:], y_test=LABELS[50:])
    budget, ds = load(path, layout=layout)
    assert budget.input_shape == ds.input_shape == images.shape[1:] and budget.classes == ds.classes == 3
    assert np.array_equal(ds.train.images.numpy(), images[:40])
    assert np.array_equal(ds.val.images.numpy(), images[40:50]) and np.array_equal(ds.test.images.numpy(), images[50:])
    assert ds.test.labels.tolist() == LABELS[50:].tolist() and ds.class_names == ("0", "1", "2")


def test_without_val_and_test_they_are_split_off_train_with_class_names(tmp_path):
    path = tmp_path / "arrays.npz"
    np.savez_compressed(path, x_train=IMAGES_NCHW, y_train=LABELS)
    _, ds = load(path, layout="NCHW", class_names=["cat", "dog", "eel"], val_fraction=0.2, test_fraction=0.1)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (42, 12, 6)
    assert ds.class_names == ("cat", "dog", "eel")
    seen = np.concatenate([s.images.numpy() for s in (ds.train, ds.val, ds.test)])
    assert sorted(map(bytes, seen)) == sorted(map(bytes, IMAGES_NCHW))  # a partition: nothing lost or repeated


def error(path, match, **keys):
    with pytest.raises(ConfigError, match=match) as caught:
        budget_for(path, **keys)
    assert "\n" not in str(caught.value) and "data." in str(caught.value)


def test_a_missing_key_is_named(tmp_path):
    path = tmp_path / "a.npz"
    np.savez(path, x_train=IMAGES_NCHW, labels=LABELS)
    error(path, r"a.npz: has no array 'y_train' \(found labels, x_train\)", layout="NCHW")
    np.savez(path, x_train=IMAGES_NCHW, y_train=LABELS, x_val=IMAGES_NCHW)
    error(path, r"has 'x_val' but no 'y_val'", layout="NCHW")


def test_a_layout_that_does_not_fit_the_array_is_named(tmp_path):
    path = tmp_path / "a.npz"
    np.savez(path, x_train=IMAGES_NCHW.transpose(0, 2, 3, 1), y_train=LABELS)
    error(path, r"x_train has shape \(60, 5, 7, 3\) \(4 axes\), but layout 'NHW' has 3; set layout to 'NHWC' or "
                r"'NCHW'", layout="NHW")
    np.savez(path, x_train=RNG.integers(0, 256, (60, 32, 32, 3), dtype=np.uint8), y_train=LABELS)
    error(path, r"with layout 'NCHW' that is 32 channels; if the images are stored NHWC, set layout = 'NHWC'",
          layout="NCHW")
    error(path, r"data.layout: 'HWC' is not one of NHW, NHWC, NCHW", layout="HWC")


def test_bad_dtypes_labels_and_names_are_errors(tmp_path):
    path = tmp_path / "a.npz"
    np.savez(path, x_train=IMAGES_NCHW.astype(np.float32) / 255, y_train=LABELS)
    error(path, r"x_train is float32, expected uint8", layout="NCHW")
    np.savez(path, x_train=IMAGES_NCHW, y_train=LABELS[:50])
    error(path, r"y_train is int64 \(50,\); expected integer class indices of shape \(60,\)", layout="NCHW")
    np.savez(path, x_train=IMAGES_NCHW, y_train=LABELS)
    error(path, r"label 2 at y_train\[2\] has no name: class_names lists 2 classes", layout="NCHW",
          class_names=["a", "b"])
    error(tmp_path / "none.npz", r"none.npz: no such file", layout="NCHW")
    (tmp_path / "text.npz").write_text("hello")
    error(tmp_path / "text.npz", r"is not a readable .npz archive", layout="NCHW")


def test_a_class_absent_from_a_given_split_is_named(tmp_path):
    path = tmp_path / "a.npz"
    np.savez(path, x_train=IMAGES_NCHW, y_train=LABELS, x_val=IMAGES_NCHW[:6], y_val=np.array([0, 1] * 3),
             x_test=IMAGES_NCHW[:6], y_test=LABELS[:6])
    with pytest.raises(DataError, match=r"a.npz: class '2' has no images in the val split") as caught:
        load(path, layout="NCHW")
    assert "\n" not in str(caught.value)
