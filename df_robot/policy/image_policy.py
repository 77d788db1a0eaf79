"""A trained diffusion checkpoint as the control loop uses it: images + state in, an action
chunk out. The stage-1 encoders turn each camera's frame into latents; the sampler does the
rest (memory, surprise gate, denoising)."""

from __future__ import annotations

import numpy as np
import torch

from df_robot.checkpoint import Checkpoint
from df_robot.policy.align import ViewAligner
from df_robot.policy.autoencoder import load_autoencoder, to_model_input, to_uint8
from df_robot.policy.model import DiffusionForcingModel, ModelDims
from df_robot.policy.normalizer import Normalizer
from df_robot.policy.options import DeployOptions
from df_robot.policy.sampler import PolicySampler


class ImagePolicy:
    def __init__(self, ckpt: Checkpoint, options: DeployOptions | None = None, use_ema: bool = True):
        o = options or DeployOptions()
        pc = ckpt.policy_config
        model = DiffusionForcingModel(ModelDims(**ckpt.dims), pc["K"])
        model.load_state_dict(ckpt.deploy_weights() if use_ema else ckpt.weights)
        s1 = ckpt.stage1
        self.cameras, self.image_size = list(s1.cameras), s1.image_size
        self.autoencoders = {}
        for cam in self.cameras:
            self.autoencoders[cam] = load_autoencoder(s1, cam)
        self.gate_note = ""
        self.aligner = ViewAligner(s1.reference_views) if o.align and s1.reference_views else None
        surprise = o.gate(ckpt)
        self.sampler = PolicySampler(
            model, ckpt.policy, Normalizer.from_state_dict(ckpt.normalizers["obs"]),
            Normalizer.from_state_dict(ckpt.normalizers["act"]), ckpt.chunk,
            steps=o.steps or pc["sampling_steps"], k_obs=pc["k_obs"] if o.k_obs is None else o.k_obs,
            lookahead=o.lookahead or pc["lookahead"], seed=o.seed, horizon=ckpt.horizon,
            samples=o.samples or pc.get("samples", 1),
            camera_dims=len(self.cameras) * s1.latent_dim, cameras=len(self.cameras), exact_state=o.exact_state,
            surprise=surprise, temperature=pc.get("temperature", 1.0) if o.temperature is None else o.temperature)
        self.chunk, self.task, self.kind = ckpt.chunk, ckpt.task, ckpt.policy

    @property
    def steps(self) -> int:
        return self.sampler.steps

    def describe(self) -> str:
        s = self.sampler
        return f"policy {s.kind}, k_obs {s.k_obs}, {s.steps} steps, temperature {s.temperature:g}"

    def gate_report(self) -> dict:
        """How many views the surprise gate fed above k_obs (masked, or noisier with the adaptive
        level), of those it judged; empty when the gate is off."""
        s = self.sampler
        if s.surprise is None:
            return {}
        return {"views_masked": sum(k != s.k_obs for _, k in s.surprise_log), "views_gated": len(s.surprise_log)}

    def alignment_report(self) -> dict:
        """This episode's view alignment per fixed camera (empty when off or not yet fitted)."""
        return self.aligner.report() if self.aligner is not None else {}

    def gate_trace(self) -> dict:
        """Per policy call after the first (the gate judges from the second on): each camera's
        surprise and the level the view was fed at (k_obs: trusted; 1000: masked)."""
        log = self.sampler.surprise_log
        return {"surprise": np.array([s for s, _ in log], np.float32).reshape(len(log), -1),
                "fed_level": np.array([k for _, k in log], np.int32)}

    def reset(self) -> None:
        self.sampler.reset()
        if self.aligner is not None:
            self.aligner.reset()

    def reseed(self, seed: int) -> None:
        """The noise an episode draws (observation noise, chunk starts) from its own seed, so a
        seeded evaluation episode does not depend on the episodes its worker ran before."""
        self.sampler.generator.manual_seed(seed)

    @torch.no_grad()
    def encode(self, images: dict) -> dict:
        """Per camera given, a batch of (N, H, W, 3) uint8 frames -> (N, latent_dim) latents."""
        return {c: self.autoencoders[c].encode(to_model_input(torch.as_tensor(frames), self.image_size))
                for c, frames in images.items()}

    @torch.no_grad()
    def observation(self, images: dict, state) -> torch.Tensor:
        if self.aligner is not None:
            images = self.aligner(images)
        latents = self.encode({c: images[c][None] for c in self.cameras})
        return torch.cat([latents[c][0] for c in self.cameras] + [torch.as_tensor(state, dtype=torch.float32)])

    def act(self, images: dict, state, steps: int | None = None):
        """(chunk, 10) absolute targets as a numpy array."""
        return self.sampler.act(self.observation(images, state), steps).numpy()

    @property
    def observes_between_chunks(self):
        """Only the memoryless baseline needs a frame between chunks: the one just before the
        next chunk (its 'previous' frame); a memory policy needs none."""
        return "last" if not self.sampler.model.dims.memory else False

    def observe(self, images: dict, state) -> None:
        """Between chunks: only the memoryless baseline needs the frame (as its 'previous' one),
        so a memory-carrying policy skips the encoder passes here, on the control loop's hot path."""
        if not self.sampler.model.dims.memory:
            self.sampler.observe(self.observation(images, state))

    @torch.no_grad()
    def imagine_next_frames(self) -> dict:
        """World-model mode: the next observation's camera latents decoded to images."""
        o = self.sampler.predict_next_obs()
        d = self.autoencoders[self.cameras[0]].latent_dim
        return {c: to_uint8(self.autoencoders[c].decode(o[i * d:(i + 1) * d][None]))[0].numpy()
                for i, c in enumerate(self.cameras)}
