"""Augmentation as numbers: an AffineAugment does on whole batches what its numbers say, a table
with a preset's numbers is that preset, and training with one is seeded like the presets."""

import pytest
import torch

from nas.config import AFFINE_RANGES, AffineAugment, Schedule
from nas.train import TrainOptions, affine_augment, augment_batch, seed_everything, train


@pytest.mark.parametrize("preset", ["affine", "rotate"])
def test_a_table_with_a_presets_numbers_is_that_preset(digits, preset):
    degrees, shift, scale = AFFINE_RANGES[preset]
    x = digits.train.images[:64].float()
    params = torch.rand(64, 4, generator=torch.Generator().manual_seed(1))
    table = AffineAugment(degrees, shift, scale)
    assert torch.equal(augment_batch(x, params, table), augment_batch(x, params, preset))


def test_a_shift_table_moves_the_image_by_whole_pixels():
    # shift 0.25 of an 8-pixel image is 2 pixels; params: angle 0, x shift at its maximum, y 0, scale 1.
    x = torch.arange(64.0).view(1, 1, 8, 8) + 1
    params = torch.tensor([[0.5, 1.0, 0.5, 0.5]])
    out = affine_augment(x, params, AffineAugment(shift=0.25))
    assert torch.allclose(out[..., :, :6], x[..., :, 2:], atol=1e-4)  # content moved 2 pixels left
    assert torch.allclose(out[..., :, 6:], torch.zeros(1, 1, 8, 2), atol=1e-4)  # black shifted in
    half = affine_augment(x, params, AffineAugment(shift=0.125))
    assert torch.allclose(half[..., :, :7], x[..., :, 1:], atol=1e-4)


def test_a_scale_table_zooms_by_its_range():
    x = torch.zeros(1, 1, 9, 9)
    x[..., 3:6, 3:6] = 1.0  # a 3x3 square in the centre
    zoom_in = affine_augment(x, torch.tensor([[0.5, 0.5, 0.5, 1.0]]), AffineAugment(scale=(1.0, 2.0)))
    same = affine_augment(x, torch.tensor([[0.5, 0.5, 0.5, 0.0]]), AffineAugment(scale=(1.0, 2.0)))
    assert torch.allclose(same, x, atol=1e-4)
    assert zoom_in.sum().item() == pytest.approx(4 * x.sum().item(), rel=0.05)  # twice the side, 4x the area


def test_training_with_a_table_is_seeded_and_differs_from_no_augmentation(digits):
    def run(augment) -> list[float]:
        seed_everything(0)
        model = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                                    torch.nn.Linear(8 * 8 * 8, 10))
        options = TrainOptions(Schedule("constant", 2, 3e-3), batch_size=64, augment=augment)
        return [r.train_loss for r in train(model, digits, options).epochs]

    table = AffineAugment(7, 0.05, (0.98, 1.02))
    assert run(table) == run(table)
    assert run(table) != run("none")
    assert run({"rotate_deg": 7, "shift": 0.05, "scale": [0.98, 1.02]}) == run(table), "a dict is the table"
