"""Stage 1: train one image autoencoder per camera on a store's frames, then cache latents.

Frames are read episode by episode and kept as small uint8 images (the policy's resolution),
so a hundred demonstrations fit in memory; latents are cached for a centre view and a few
random-shift views of every frame (the augmentation stage 2 draws from).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

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


def first_reach(state: np.ndarray, action: np.ndarray) -> np.ndarray:
    """(L, 2): where the hand is (x, y) when the demonstrator first works the gripper, on every
    frame before that moment, NaN after it (and everywhere when the gripper never moves).

    A frame before the first grasp shows what will be reached for (in fruit swap, the apple
    wherever it lies), and nothing else decides it: an unambiguous target read off the store's
    own state and actions, so a real rig's store has it too. Later reaches depend on what was
    done before, which one frame does not show."""
    target = np.full((len(state), 2), np.nan, np.float32)
    changes = np.nonzero(np.abs(np.diff(action[:, -1])) > 1e-6)[0]
    if len(changes) and state.shape[1] >= 2:
        at = changes[0] + 1
        target[:at] = state[at, :2]
    return target


def train_autoencoder(frames: list[torch.Tensor], size: int, latent_dim: int, steps: int, batch: int, lr: float,
                      augment: Augment, seed: int, progress=None, standardized: bool = False,
                      keypoints: int = 0, reach: list[np.ndarray] | None = None,
                      reach_weight: float = 0.0) -> tuple[ImageAutoencoder, list[float]]:
    """Reconstruct augmented frames (random shift, and rotation and colour jitter when asked);
    with `reach_weight`, a linear head on the code also predicts each frame's `first_reach`
    (standardized), so the code spends numbers on where the first object lies, not only on the
    table and the light. The head is dropped after training."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    all_frames = torch.cat(frames)
    ae = ImageAutoencoder(size, latent_dim, standardized=standardized, keypoints=keypoints)
    params = list(ae.parameters())
    head = targets = None
    if reach_weight > 0 and reach is not None:
        targets = torch.from_numpy(np.concatenate(reach)).float()
        known = ~torch.isnan(targets[:, 0])
        if known.any():
            mean, spread = targets[known].mean(0), targets[known].std(0) + 1e-3
            targets = (targets - mean) / spread
            head = torch.nn.Linear(latent_dim, 2)
            params += list(head.parameters())
    opt = adamw(params, lr=lr, weight_decay=1e-5)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1))
    losses = []
    for step in range(steps):
        idx = torch.randint(0, len(all_frames), (batch,), generator=gen)
        x = augment(as_float(all_frames[idx]), gen)
        if head is None:
            loss = reconstruction = ae.loss(x)
        else:
            z = ae.encode(x)
            loss = reconstruction = ae.reconstruction_loss(z, x)
            y, known = targets[idx], ~torch.isnan(targets[idx, 0])
            if known.any():
                loss = loss + reach_weight * F.mse_loss(head(z[known]), y[known])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(reconstruction.item())
        if progress is not None:
            progress(step, reconstruction.item())
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
