"""Image augmentation for stage 1: what a camera's picture does when the rig drifts.

Geometric: a random shift of a few pixels (Diffusion Policy's random crop) and, when asked, a
small rotation (a camera turned a little on its mount). Photometric, when asked: brightness,
contrast, saturation and per-channel gains (another room light, another white balance); and
light falling differently (`light`): a smooth gain across the picture (a lamp turned), a
highlight moved or gone, and a tone curve (a dimmer room clips other parts of the picture);
and another table cloth (`table`), which stage 1 undoes rather than reconstructs.
Standardizing an image takes out a global gain; these survive it, as a moved lamp's do.
Only the shift is on by default: light and colour are taken out by standardizing each image
(`policy.standardize_images`, autoencoder.py), which measured better (docs/method.md). An autoencoder asked to undo the colour jitter (a light-invariant latent)
was tried and dropped: on randomized demonstrations it cannot tell the jitter from the
table's own colour, blurred the fruits into look-alikes, and the policy fell from 88% to 30%
clean (docs/experiments.md, 2026-12-02).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from df_robot.policy.autoencoder import random_shift


@dataclass(frozen=True)
class Augment:
    shift: int = 4           # pixels, each direction
    rotate: float = 0.0      # degrees, each direction
    colour: float = 0.0      # relative amplitude of brightness, contrast, saturation; half of it per-channel gain
    light: float = 0.0       # relative amplitude of the gain's slope and highlight; the tone curve's log-gamma
    table: float = 0.0       # most a channel of the table's colour changes (0-1 scale); undone by stage 1

    @classmethod
    def from_config(cls, pc) -> "Augment":
        return cls(shift=int(pc.aug_shift), rotate=float(pc.get("aug_rotate", 0.0)), colour=float(pc.get("aug_colour", 0.0)),
                   light=float(pc.get("aug_light", 0.0)), table=float(pc.get("aug_table", 0.0)))

    def geometric(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """(N, 3, H, W) in [-1, 1]. Without a rotation, exactly the random shift of earlier runs."""
        if self.rotate <= 0:
            return random_shift(x, self.shift, gen)
        n, _, h, w = x.shape
        angle = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(self.rotate)
        move = (torch.rand(n, 2, generator=gen) * 2 - 1) * self.shift * 2 / torch.tensor([w, h])
        cos, sin = angle.cos(), angle.sin()
        theta = torch.stack([torch.stack([cos, -sin, move[:, 0]], 1), torch.stack([sin, cos, move[:, 1]], 1)], 1)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    def photometric(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if self.colour <= 0:
            return x
        n, c = len(x), self.colour
        u = lambda *shape: 1 + (torch.rand(*shape, generator=gen) * 2 - 1) * c  # noqa: E731
        img = (x + 1) / 2
        img = img * u(n, 1, 1, 1) * (1 + (torch.rand(n, 3, 1, 1, generator=gen) * 2 - 1) * c / 2)
        mean = img.mean(dim=(1, 2, 3), keepdim=True)
        img = (img - mean) * u(n, 1, 1, 1) + mean
        grey = img.mean(dim=1, keepdim=True)
        img = (img - grey) * u(n, 1, 1, 1) + grey
        return img.clamp(0, 1) * 2 - 1

    def lighting(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """The scene under a lamp turned or dimmed: img**gamma * (1 + slope + highlight)."""
        if self.light <= 0:
            return x
        n, _, h, w = x.shape
        a = self.light
        sym = lambda *shape: torch.rand(*shape, generator=gen) * 2 - 1  # noqa: E731
        v, u = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
        angle = torch.rand(n, 1, 1, generator=gen) * 2 * math.pi
        slope = sym(n, 1, 1) * a * (u * angle.cos() + v * angle.sin())
        centre, width = sym(n, 2, 1, 1), 0.2 + 0.4 * torch.rand(n, 1, 1, generator=gen)
        blob = torch.exp(-((u - centre[:, 0]) ** 2 + (v - centre[:, 1]) ** 2) / (2 * width ** 2))
        gain = (1 + slope + sym(n, 1, 1) * a * blob).clamp_min(0.05)[:, None]
        gamma = torch.exp(sym(n, 1, 1, 1) * a)
        img = ((x + 1) / 2).clamp(0, 1) ** gamma * gain
        return img.clamp(0, 1) * 2 - 1

    def retable(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Another table cloth: the pixels of the picture's median hue (the table, which fills
        most of it, in light and in shadow) get another colour, each channel up to `table` off;
        the fruits, the hand and the shading stay. Standardizing cannot take it out (it is not the
        whole picture's gain), so stage 1 is asked to undo it: the code keeps no numbers for it."""
        if self.table <= 0:
            return x
        n = len(x)
        img = (x + 1) / 2
        def hue(c):  # colour over brightness: the cloth in shadow matches the cloth in light
            return c / (c.sum(1, keepdim=True) + 0.05)

        median = img[..., ::4, ::4].flatten(2).median(-1).values[..., None, None]   # (N, 3, 1, 1)
        cloth = torch.exp(-((hue(img) - hue(median)) ** 2).sum(1, keepdim=True) / (2 * 0.03 ** 2))
        sign = torch.randint(0, 2, (n, 3, 1, 1), generator=gen) * 2 - 1
        change = sign * torch.rand(n, 3, 1, 1, generator=gen) * self.table
        img = img * (1 + cloth * change / median.clamp_min(0.05))
        return img.clamp(0, 1) * 2 - 1

    def scene(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """The picture as another day's rig might show it, its table cloth as recorded."""
        return self.lighting(self.photometric(self.geometric(x, gen), gen), gen)

    def pair(self, x: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(what the encoder sees, what the decoder must give back): the cloth changed only in the first."""
        scene = self.scene(x, gen)
        return self.retable(scene, gen), scene

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return self.pair(x, gen)[0]

    def as_dict(self) -> dict:
        return {"shift": self.shift, "rotate": self.rotate, "colour": self.colour, "light": self.light,
                "table": self.table}
