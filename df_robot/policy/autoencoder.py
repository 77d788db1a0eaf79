"""Stage 1: a small convolutional autoencoder per camera, image -> compact latent.

Trained frame by frame (minutes on a CPU); its latents are cached once per dataset, and the
diffusion model runs over them (DESIGN.md, "Making it train on a 2-core CPU"). Noising a
fixed latent is well defined, and the decoder turns world-model predictions back into images.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def to_model_input(images_uint8: torch.Tensor, size: int) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, size, size) float in [-1, 1]."""
    x = images_uint8.permute(0, 3, 1, 2).float() / 127.5 - 1.0
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="area")
    return x


def random_shift(x: torch.Tensor, pad: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random-crop augmentation (pad by replication, crop back): Diffusion Policy's essential one."""
    if pad <= 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    return torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])


def standardize(x: torch.Tensor) -> torch.Tensor:
    """Each image's channels to zero mean and unit spread (a third of it, clipped to [-1, 1]):
    a room's brightness, the light's tint and the table's colour are mostly a per-channel gain
    and offset of the whole picture, and vanish here; what stands out from the table (the
    fruits, the arm, the marks) stays, with its colour relative to the scene."""
    mean = x.mean(dim=(2, 3), keepdim=True)
    spread = x.std(dim=(2, 3), keepdim=True)
    return ((x - mean) / (spread + 0.05) / 3).clamp(-1, 1)


def flatten_shading(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Each pixel over the picture's brightness around it (a Gaussian of `sigma` pixels), in
    [-1, 1]: light that falls differently (a dimmer room, a lamp turned) is a smooth gain across
    the picture, and goes; an object's edges and its colour against what lies around it stay
    (a retinex-like high-pass, before `standardize`)."""
    img = (x + 1) / 2 + 0.02
    h, w = img.shape[-2:]
    brightness = gaussian_rows(h, sigma, img.dtype) @ img.mean(1, keepdim=True) @ gaussian_rows(w, sigma, img.dtype).T
    return (img / brightness - 1).clamp(-1, 1)


def gaussian_rows(n: int, sigma: float, dtype=torch.float32) -> torch.Tensor:
    """(n, n): a Gaussian blur along one axis as a matrix, the edge pixel repeated beyond the
    edge: a picture blurred by two matrix products (BLAS) rather than a one-channel convolution."""
    radius = max(1, int(3 * sigma))
    taps = torch.arange(-radius, radius + 1, dtype=torch.float64)
    weights = torch.exp(-taps ** 2 / (2 * sigma ** 2))
    weights = weights / weights.sum()
    rows, matrix = torch.arange(n), torch.zeros(n, n, dtype=torch.float64)
    for offset, weight in zip(range(-radius, radius + 1), weights):
        matrix[rows, (rows + offset).clamp(0, n - 1)] += weight
    return matrix.to(dtype)


class SpatialSoftmax(nn.Module):
    """Each feature map's expected position under a softmax over its pixels: (N, K, H, W) ->
    (N, 2K) coordinates in [-1, 1]. A feature that moves moves its point in proportion, where a
    flattened code changes in a tangled way (Levine et al.'s deep spatial autoencoders)."""

    def __init__(self):
        super().__init__()
        self.log_temperature = nn.Parameter(torch.zeros(1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        n, k, h, w = features.shape
        p = torch.softmax(features.reshape(n, k, h * w).float() / self.log_temperature.exp(), -1).view(n, k, h, w)
        x = (p.sum(2) * torch.linspace(-1, 1, w, device=p.device)).sum(-1)
        y = (p.sum(3) * torch.linspace(-1, 1, h, device=p.device)).sum(-1)
        return torch.stack([x, y], -1).flatten(1)


class ImageAutoencoder(nn.Module):
    """Four strided convolutions and a linear code; with `keypoints`, that many feature points
    too (read off the quarter-resolution features), taking 2 x keypoints of the latent."""

    def __init__(self, image_size: int = 64, latent_dim: int = 32, width: int = 32, standardized: bool = False,
                 keypoints: int = 0, shading: float = 0.0):
        super().__init__()
        assert image_size % 16 == 0, "image_size must be a multiple of 16"
        if not 0 <= 2 * keypoints < latent_dim:
            raise ValueError(f"{keypoints} keypoints take {2 * keypoints} of latent_dim {latent_dim}: "
                             "expected fewer, leaving a code")
        self.image_size, self.latent_dim, self.standardized = image_size, latent_dim, standardized
        self.shading = float(shading)  # > 0: flatten_shading at this many pixels first
        c, s = width, image_size // 16
        self.encoder = nn.Sequential(
            nn.Conv2d(3, c, 4, 2, 1), nn.SiLU(),
            nn.Conv2d(c, 2 * c, 4, 2, 1), nn.SiLU(),
            nn.Conv2d(2 * c, 4 * c, 4, 2, 1), nn.SiLU(),
            nn.Conv2d(4 * c, 4 * c, 4, 2, 1), nn.SiLU(),
            nn.Flatten(), nn.Linear(4 * c * s * s, latent_dim - 2 * keypoints),
        )
        self.points = nn.Sequential(
            nn.Conv2d(2 * c, 2 * c, 3, 1, 1), nn.SiLU(), nn.Conv2d(2 * c, keypoints, 1), SpatialSoftmax(),
        ) if keypoints else None
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, 4 * c * s * s), nn.SiLU(), nn.Unflatten(1, (4 * c, s, s)),
            nn.ConvTranspose2d(4 * c, 4 * c, 4, 2, 1), nn.SiLU(),
            nn.ConvTranspose2d(4 * c, 2 * c, 4, 2, 1), nn.SiLU(),
            nn.ConvTranspose2d(2 * c, c, 4, 2, 1), nn.SiLU(),
            nn.ConvTranspose2d(c, 3, 4, 2, 1), nn.Tanh(),
        )
        # Channels-last convolutions: the same numbers, 1.22x faster to encode on a 2-core CPU
        # (oneDNN's preferred layout; bench/stage1_cost.py). Loaded state dicts keep the layout.
        self.to(memory_format=torch.channels_last)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        x = self.model_input(x).contiguous(memory_format=torch.channels_last)
        if self.points is None:
            return self.encoder(x)
        quarter = self.encoder[:4](x)
        return torch.cat([self.encoder[4:](quarter), self.points(quarter)], 1)

    def model_input(self, x: torch.Tensor) -> torch.Tensor:
        """What the encoder sees and the decoder gives back: the picture, its shading flattened and
        its channels standardized where asked."""
        x = flatten_shading(x, self.shading) if self.shading > 0 else x
        return standardize(x) if self.standardized else x

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The picture back, as `model_input` gives it."""
        return self.decoder(z)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        return self.reconstruction_loss(self.encode(x), x)

    def reconstruction_loss(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(self.decode(z), self.model_input(x))


def load_autoencoder(stage1, camera: str) -> ImageAutoencoder:
    """A checkpoint's (stage-1 record's) trained autoencoder of one camera, ready to encode."""
    ae = ImageAutoencoder(stage1.image_size, stage1.latent_dim, standardized=stage1.standardize_images,
                          keypoints=stage1.keypoints, shading=stage1.flatten_shading.get(camera, 0.0))
    ae.load_state_dict(stage1.autoencoders[camera])
    return ae.eval()


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) in [-1, 1] -> (N, H, W, 3) uint8."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1)
