"""Torch datasets over the preprocessing cache, with the recipe's training augmentation."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2

from ..data.cache import CachedSplit
from ..data.preprocess import model_input
from ..image_model import ImageModelSpec


def augmentation(spec: ImageModelSpec) -> v2.Compose:
    """Random scaled crop, rotation, horizontal flip and zoom, as the recipe says."""
    aug, size = spec.augmentation, spec.image_size
    return v2.Compose(
        [
            v2.RandomCrop(max(1, round(size * aug.crop_fraction))),
            v2.Resize(size, antialias=True),
            v2.RandomApply([v2.RandomRotation(aug.rotate_degrees)], p=aug.rotate_p),
            v2.RandomHorizontalFlip(aug.hflip_p),
            v2.RandomAffine(degrees=0, scale=aug.zoom),
        ]
    )


class CachedImages(Dataset):
    """Images from a :class:`CachedSplit` as float tensors [C, H, W] in [0, 1]."""

    def __init__(self, split: CachedSplit, spec: ImageModelSpec, train: bool) -> None:
        self.split, self.channels = split, spec.in_chans
        self.transform = augmentation(spec) if train else None

    def __len__(self) -> int:
        return len(self.split.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = torch.from_numpy(model_input(self.split.images[index][None], 1)[0])
        if self.transform is not None:
            image = self.transform(image)
        if self.channels > 1:
            image = image.expand(self.channels, -1, -1)
        return image, torch.tensor(self.split.labels[index])
