"""torchvision datasets by name: their labels pass the same check as an .npz's."""

import numpy as np
import pytest
import torch

from nas.data import _torchvision as vision
from nas.errors import DataError


def fake_kmnist(train_labels: list[int]):
    """A stand-in for torchvision.datasets.KMNIST that is 'already downloaded'."""

    class Fake:
        classes = []  # like a dataset without class names: the labels give them

        def __init__(self, root, train, download):
            labels = train_labels if train else [0, 1]
            self.data = torch.zeros((len(labels), 4, 4), dtype=torch.uint8)
            self.targets = torch.tensor(labels)

    return Fake


def test_good_labels_name_their_classes(monkeypatch, tmp_path):
    import torchvision

    monkeypatch.setattr(torchvision.datasets, "KMNIST", fake_kmnist([0, 1, 2, 1]))
    *_, names = vision.load("kmnist", tmp_path)
    assert names == ("0", "1", "2")


def test_a_bad_label_is_named_with_its_split_and_index(monkeypatch, tmp_path):
    import torchvision

    monkeypatch.setattr(torchvision.datasets, "KMNIST", fake_kmnist([0, 1, 0, 1, 99]))
    with pytest.raises(DataError, match=r"label 99 at train labels\[4\] would make 100 classes, more than the 5 "
                                        r"images of train labels"):
        vision.load("kmnist", tmp_path)
    assert np.array_equal(vision._arrays("kmnist", fake_kmnist([0, 1])(tmp_path, True, False))[1], [0, 1])
