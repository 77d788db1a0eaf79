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


def object_places(state: np.ndarray, action: np.ndarray, objects: int = 2, same: float = 0.04) -> np.ndarray:
    """(L, 2 * objects): where each object the demonstrator handles lies (x, y), frame by frame, in
    the order they are first grasped; NaN for an object never grasped.

    Read off the hand alone, so a real rig's store has it too: an object lies where it is first
    grasped until then, moves with the hand while held, and lies where it was let go until it is
    grasped again (a grasp within `same` metres of where an object lies takes that object, else
    it is a new one). Unlike the next reach, where things lie is what one frame shows, whatever
    was done before: a code that says it leaves the choice of what to do next to the memory."""
    L = len(state)
    out = np.full((L, 2 * objects), np.nan, np.float32)
    grip = action[:, -1]
    away = np.abs(grip - grip[0])
    if state.shape[1] < 2 or away.max() < 1e-6:
        return out
    closed = away > away.max() / 2
    hand = state[:, :2]
    lying: list[np.ndarray | None] = []   # per object: where it lies, None while held
    since: list[int] = []                 # per object: the frame its current state began
    held = None
    for t in np.nonzero(np.diff(closed.astype(np.int8)))[0] + 1:
        if closed[t]:                     # a grasp: the nearest object lying at the hand, else a new one
            near = [(np.linalg.norm(xy - hand[t]), j) for j, xy in enumerate(lying) if xy is not None]
            j = min(near)[1] if near and min(near)[0] < same else None
            if j is None:
                j = len(lying)
                lying.append(hand[t].copy())
                since.append(0)
            if j < objects:
                out[since[j]:t, 2 * j:2 * j + 2] = lying[j]
            lying[j], since[j], held = None, t, j
        elif held is not None:            # a release: it lies where the hand let it go
            if held < objects:
                out[since[held]:t, 2 * held:2 * held + 2] = hand[since[held]:t]
            lying[held], since[held], held = hand[t].copy(), t, None
    for j in range(min(len(lying), objects)):
        out[since[j]:, 2 * j:2 * j + 2] = hand[since[j]:] if lying[j] is None else lying[j]
    return out


TARGETS = {"first_reach": first_reach, "places": object_places}


def train_autoencoder(frames: list[torch.Tensor], size: int, latent_dim: int, steps: int, batch: int, lr: float,
                      augment: Augment, seed: int, progress=None, standardized: bool = False,
                      keypoints: int = 0, targets: list[np.ndarray] | None = None,
                      target_weight: float = 0.0, shading: float = 0.0, bf16: bool = False) -> tuple[ImageAutoencoder, list[float]]:
    """Reconstruct augmented frames (random shift, and rotation and colour jitter when asked);
    with `target_weight`, a linear head on the code also predicts each frame's target (one of
    TARGETS, standardized; NaN: none), so the code spends numbers on where the objects lie, not
    only on the table and the light. The head is dropped after training. `bf16`: the forward
    pass under bf16 autocast, the optimizer step outside it (with the step inside, the coder did
    not learn at all: tests/test_training.py)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    all_frames = torch.cat(frames)
    ae = ImageAutoencoder(size, latent_dim, standardized=standardized, keypoints=keypoints, shading=shading)
    params = list(ae.parameters())
    head = y_all = None
    if target_weight > 0 and targets is not None:
        y_all = torch.from_numpy(np.concatenate(targets)).float()
        known = ~torch.isnan(y_all)
        if known.any():
            filled = torch.where(known, y_all, torch.zeros(()))
            count = known.sum(0).clamp_min(1)
            mean = filled.sum(0) / count
            spread = (((filled - mean) ** 2 * known).sum(0) / count).sqrt() + 1e-3
            y_all = (y_all - mean) / spread
            head = torch.nn.Linear(latent_dim, y_all.shape[1])
            params += list(head.parameters())
    opt = adamw(params, lr=lr, weight_decay=1e-5)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1))
    losses = []
    for step in range(steps):
        idx = torch.randint(0, len(all_frames), (batch,), generator=gen)
        x, target = augment.pair(as_float(all_frames[idx]), gen)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            z = ae.encode(x)
            loss = reconstruction = ae.reconstruction_loss(z, target)
            if head is not None:
                y = y_all[idx]
                known = ~torch.isnan(y)
                if known.any():
                    loss = loss + target_weight * ((head(z) - y.nan_to_num()) ** 2)[known].mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(reconstruction.item())
        if progress is not None:
            progress(step, reconstruction.item())
    return ae.eval(), losses


@torch.no_grad()
def encode_views(ae: ImageAutoencoder, frames: torch.Tensor, views: int, augment: Augment, seed: int,
                 bf16: bool = False) -> np.ndarray:
    """(L, V, latent_dim): view 0 the frame itself, views 1.. augmented copies of it (the table
    cloth as recorded: stage 1 has learnt to give another one the same code)."""
    gen = torch.Generator().manual_seed(seed)
    x = as_float(frames)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = [ae.encode(x)]
        for _ in range(views - 1):
            out.append(ae.encode(augment.scene(x, gen)))
    return torch.stack(out, dim=1).float().numpy()
