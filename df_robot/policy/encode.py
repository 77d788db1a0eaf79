"""Stage 1: train one image autoencoder per camera on a store's frames, then cache latents.

Frames are read episode by episode and kept as small uint8 images (the policy's resolution),
so a hundred demonstrations fit in memory; latents are cached for a centre view and a few
random-shift views of every frame (the augmentation stage 2 draws from).
"""

from __future__ import annotations

import numpy as np
import torch

from df_robot.policy.augment import Augment
from df_robot.policy.autoencoder import ImageAutoencoder, to_model_input
from df_robot.policy.optim import adamw
from df_robot.store import EpisodeStore, image_key


def load_frames(store: EpisodeStore, episodes: list[int], camera: str, size: int) -> list[torch.Tensor]:
    """Per episode: (L, 3, size, size) uint8, resized to the policy's resolution (uint8 saves memory)."""
    out = []
    for e in episodes:
        imgs = torch.from_numpy(store.get(image_key(camera), e))
        x = to_model_input(imgs, size)
        out.append(((x + 1) * 127.5).round().to(torch.uint8))
    return out


def as_float(x_uint8: torch.Tensor) -> torch.Tensor:
    return x_uint8.float() / 127.5 - 1.0


def train_autoencoder(frames: list[torch.Tensor], size: int, latent_dim: int, steps: int, batch: int, lr: float,
                      augment: Augment, seed: int, progress=None, standardized: bool = False,
                      keypoints: int = 0) -> tuple[ImageAutoencoder, list[float]]:
    """Reconstruct augmented frames (random shift, and rotation and colour jitter when asked)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    all_frames = torch.cat(frames)
    ae = ImageAutoencoder(size, latent_dim, standardized=standardized, keypoints=keypoints)
    opt = adamw(ae.parameters(), lr=lr, weight_decay=1e-5)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1))
    losses = []
    for step in range(steps):
        idx = torch.randint(0, len(all_frames), (batch,), generator=gen)
        loss = ae.loss(augment(as_float(all_frames[idx]), gen))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if progress is not None:
            progress(step, loss.item())
    return ae.eval(), losses


@torch.no_grad()
def encode_views(ae: ImageAutoencoder, frames: torch.Tensor, views: int, augment: Augment, seed: int) -> np.ndarray:
    """(L, V, latent_dim): view 0 the frame itself, views 1.. augmented copies of it."""
    gen = torch.Generator().manual_seed(seed)
    x = as_float(frames)
    out = [ae.encode(x)]
    for _ in range(views - 1):
        out.append(ae.encode(augment(x, gen)))
    return torch.stack(out, dim=1).numpy()
