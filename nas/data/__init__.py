"""Layer 3: datasets as uint8 tensors with a fingerprint: built-in sets, image folders, .npz arrays,
torchvision by name; splits and the cache."""

from nas.data._datasets import Dataset, Split, class_name, class_names, from_config, load, main_fetch
from nas.data._mnist import fetch_mnist
from nas.data._folder import decode

__all__ = ["Dataset", "Split", "class_name", "class_names", "decode", "fetch_mnist", "from_config", "load",
           "main_fetch"]
