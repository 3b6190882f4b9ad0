"""Labels must be class indices 0..K-1: one check (check_labels) for .npz, folder and torchvision data."""

import numpy as np
import pytest

from nas.config import check_labels, probe_npz
from nas.errors import DataError

IMAGES = np.zeros((6, 1, 4, 4), dtype=np.uint8)


def labels_error(match, labels, class_names=None):
    with pytest.raises(DataError, match=match) as caught:
        check_labels("data.npz", labels, "y_train", class_names)
    assert "\n" not in str(caught.value)
    return str(caught.value)


def test_good_labels_give_their_class_names():
    labels = {"y_train": np.array([0, 1, 2, 1, 0, 2]), "y_val": np.array([2, 0])}
    assert check_labels("data.npz", labels, "y_train") == ("0", "1", "2")
    assert check_labels("data.npz", labels, "y_train", ("a", "b", "c")) == ("a", "b", "c")


def test_a_huge_label_is_quoted_with_its_array_and_index():
    labels = {"y_train": np.array([0, 1, 0, 1, 0, 1]), "y_val": np.array([1, 0, 1_000_000_000])}
    message = labels_error(r"data.npz: label 1000000000 at y_val\[2\] would make 1,000,000,001 classes, more than "
                           r"the 6 images of y_train", labels)
    assert "0..K-1" in message and "return_inverse" in message


def test_a_negative_label_is_quoted_with_its_array_and_index():
    labels_error(r"data.npz: y_train\[3\] = -1 is negative; labels must be class indices 0..K-1",
                 {"y_train": np.array([0, 1, 0, -1, -5, 1])})
    labels_error(r"y_train\[0\] = -3 is negative", {"y_train": np.array([-3, -2, -1])})  # all negative


def test_classes_without_an_image_are_named():
    labels_error(r"data.npz: labels run 0..5 \(y_train, y_val\), but no image has label 2, 3, 4; map them",
                 {"y_train": np.array([0, 1, 5, 0, 1, 5]), "y_val": np.array([1, 0])})
    many = np.array([0] * 20 + [19])
    labels_error(r"no image has label 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 \.\.\. \(18 in all\)", {"y_train": many})


def test_class_names_bound_the_labels_and_the_classes():
    labels_error(r"label 3 at y_train\[4\] has no name: class_names lists 3 classes \(indices 0..2\)",
                 {"y_train": np.array([0, 1, 2, 1, 3, 3])}, ("a", "b", "c"))
    labels_error(r"class_names lists 7 classes but y_train has 6 images",
                 {"y_train": np.array([0, 1, 2, 3, 4, 5])}, tuple("abcdefg"))


def test_one_class_is_not_a_classifier():
    labels_error(r"the labels name 1 class\(es\); a classifier needs at least 2", {"y_train": np.zeros(6, int)})


def test_probe_npz_checks_the_labels_of_every_split(tmp_path):
    path = tmp_path / "a.npz"
    np.savez(path, x_train=IMAGES, y_train=np.array([0, 1, 0, 1, 0, 1]), x_test=IMAGES[:2],
             y_test=np.array([1, 7]))
    with pytest.raises(DataError, match=r"a.npz: label 7 at y_test\[1\] would make 8 classes, more than the 6 "
                                        r"images of y_train"):
        probe_npz(path, "NCHW", None)
