"""A classifier behind its dataset's normalisation, as every artifact outside training takes it."""

from __future__ import annotations


def preprocessed(model, mean: float, std: float):
    """`model` behind the dataset's normalisation: uint8 0-255 or float 0-1 in, logits out."""
    import torch
    from torch import nn

    class Preprocessed(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = model
            self.register_buffer("mean", torch.tensor(float(mean)))
            self.register_buffer("std", torch.tensor(float(std)))

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            x = images.unsqueeze(0) if images.dim() == 3 else images
            x = x.float() / 255.0 if images.dtype == torch.uint8 else x.float()
            return self.net((x - self.mean) / self.std)

    return Preprocessed().eval()
