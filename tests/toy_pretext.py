"""A toy pretext task, as a user would add one: which of two flips (none, horizontal) an image went through. One
file and its `register` call; nothing else in the package changes."""

import torch

from rotnet_repro.pretext import PretextTask, register


class Flip(PretextTask):
    name = "flip"

    def classes(self, variant: str) -> int:
        return 2

    def transform(self, images: torch.Tensor, variant: str) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([images, images.flip(-1)])
        return x, torch.arange(2, device=images.device).repeat_interleave(images.shape[0])


register(Flip())
