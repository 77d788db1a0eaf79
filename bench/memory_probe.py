"""Does the memory carry the fruit-swap decision? A probe on the demonstrations, no rollout.

After the first move (apple to the free slot) the robot rests at home and the table looks
like the start of another layout, whose next move is the apple's; the right next move is the
orange's. For each demonstration the probe feeds the policy's memory the demo's own history
(observations at the deploy level k_obs, actions clean: exactly what deploy feeds it), then at
the tokens where the robot leaves home for move 2 it samples action chunks and asks where they
head: to the orange (right), to the apple (the memoryless guess) or nowhere yet. The same is
done with a fresh memory (the learned initial state), which can only guess from the scene.

    python bench/memory_probe.py bench/results/fruit_swap_a1/runs/df --samples 16            # move 2
    python bench/memory_probe.py bench/results/fruit_swap_a1/runs/df --move 1                # the start

Reads the run's stage1.pt (the per-frame observations of its training demos) and
checkpoints/latest.pt. Prints, per memory, the share of samples heading to each fruit.

`--handover N` instead runs N twin episodes (eval seeds) twice: the policy alone, and the
scripted expert driving move 1 while the policy's memory absorbs it (as if it had acted),
the policy acting from the rest at home on. If the second succeeds where the first fails,
the policy's trouble is before or at move 1, not in carrying move 1 in memory.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from df_robot.policy.model import DiffusionForcingModel, ModelDims  # noqa: E402
from df_robot.policy.noise import NoiseSchedule, ddim_levels  # noqa: E402
from df_robot.policy.normalizer import Normalizer  # noqa: E402
from df_robot.policy.sampler import PolicySampler  # noqa: E402
from df_robot.policy.tokens import chunk_actions  # noqa: E402


def grip_events(grip: np.ndarray) -> tuple[list[int], list[int]]:
    """Frames where the gripper command closes (picks) and opens (places)."""
    d = np.diff(grip)
    return list(np.nonzero(d > 0.5)[0] + 1), list(np.nonzero(d < -0.5)[0] + 1)


def decision(act: np.ndarray, move: int = 2) -> dict | None:
    """A move's departure from home (move 2: the memory decision; move 1: the start, a control),
    its frame, and where the right and the wrong fruit are (xy)."""
    picks, places = grip_events(act[:, 9])
    if len(picks) < 2 or len(places) < 1:
        return None
    home = act[0, :3]
    away = np.linalg.norm(act[:, :3] - home, axis=1) > 0.01
    if move == 1:  # right: the apple (picked first); wrong: the orange (picked second)
        leave = int(np.argmax(away))
        return {"leave": leave, "home": home, "right": act[picks[0], :2], "wrong": act[picks[1], :2]}
    back = [f for f in range(places[0], picks[1]) if not away[f]]
    if not back:
        return None
    leave = next(f for f in range(back[-1], picks[1]) if away[f])
    return {"leave": leave, "home": home, "right": act[picks[1], :2], "wrong": act[places[0], :2]}


class Probe:
    def __init__(self, ckpt: dict, samples: int, steps: int, k_obs: int, seed: int, guidance: float = 0.0, lookahead: int = 1,
                 obs_guidance: float = 0.0, temperature: float = 1.0):
        self.model = DiffusionForcingModel(ModelDims(**ckpt["dims"]), ckpt["config"]["policy"]["K"])
        self.model.load_state_dict(ckpt["ema"])
        self.model.eval()
        self.schedule = NoiseSchedule(self.model.K)
        self.obs_norm = Normalizer.from_state_dict(ckpt["obs_norm"])
        self.act_norm = Normalizer.from_state_dict(ckpt["act_norm"])
        self.chunk, self.samples, self.steps, self.k_obs = ckpt["chunk"], samples, steps, k_obs
        self.horizon = ckpt.get("horizon", self.chunk)
        self.guidance, self.lookahead, self.obs_guidance = guidance, lookahead, obs_guidance
        self.sampler = PolicySampler(self.model, "df", self.obs_norm, self.act_norm, self.chunk, steps, k_obs,
                                     lookahead, seed, horizon=self.horizon)
        self.gen = torch.Generator().manual_seed(seed)
        self.temperature = temperature

    def _lv(self, k: int, n: int = 1) -> torch.Tensor:
        return torch.full((n,), int(k), dtype=torch.long)

    def _obs_in(self, obs: np.ndarray) -> torch.Tensor:
        o = self.obs_norm.normalize(torch.from_numpy(obs[None]).float())
        return self.schedule.add_noise(o, self._lv(self.k_obs), torch.randn(o.shape, generator=self.gen))

    @torch.no_grad()
    def absorb(self, z: torch.Tensor, obs: np.ndarray, act_chunk: np.ndarray) -> torch.Tensor:
        """The memory after one token as deploy feeds it: observation at k_obs, actions clean."""
        a = self.act_norm.normalize(torch.from_numpy(act_chunk.reshape(self.horizon, -1)).float()).reshape(1, -1)
        h, _ = self.model.denoise(z, torch.cat([self._obs_in(obs), a], -1), self._lv(self.k_obs), self._lv(0))
        return self.model.step_memory(h, z)

    @torch.no_grad()
    def absorb_masked(self, z: torch.Tensor) -> torch.Tensor:
        """The memory after one fully noised token (the history masked: DF's unconditional)."""
        K = self.model.K
        x = torch.randn(1, self.model.dims.obs_dim + self.model.dims.act_dim, generator=self.gen)
        h, _ = self.model.denoise(z, x, self._lv(K), self._lv(K))
        return self.model.step_memory(h, z)

    @torch.no_grad()
    def sample(self, z: torch.Tensor, obs: np.ndarray, z_uncond: torch.Tensor | None = None) -> np.ndarray:
        """(samples, chunk, 10) action chunks for this observation and memory."""
        if self.lookahead > 1:  # the deploy sampler itself (pyramid), one sample at a time
            out = []
            for _ in range(self.samples):
                self.sampler.z = z.clone()
                out.append(self.sampler.act(torch.from_numpy(obs)))
            return torch.stack(out).numpy()
        n, D = self.samples, self.model.dims.obs_dim
        o = self._obs_in(obs).expand(n, -1)
        zz = z.expand(n, -1)
        a = self.temperature * torch.randn(n, self.model.dims.act_dim, generator=self.gen)
        levels = ddim_levels(self.model.K, self.steps)
        for k, k_next in zip(levels[:-1], levels[1:]):
            _, x0 = self.model.denoise(zz, torch.cat([o, a], -1), self._lv(self.k_obs, n), self._lv(k, n))
            if self.guidance:
                zu = (z_uncond if z_uncond is not None else self.model.initial_memory(1)).expand(n, -1)
                _, x0_u = self.model.denoise(zu, torch.cat([o, a], -1),
                                             self._lv(self.k_obs, n), self._lv(k, n))
                x0 = x0 + self.guidance * (x0 - x0_u)
            if self.obs_guidance:  # against the same token with its observation masked (level K)
                o_masked = torch.randn(o.shape, generator=self.gen)
                _, x0_m = self.model.denoise(zz, torch.cat([o_masked, a], -1), self._lv(self.model.K, n), self._lv(k, n))
                x0 = x0 + self.obs_guidance * (x0 - x0_m)
            a = self.schedule.ddim_step(a, x0[:, D:], self._lv(k, n), self._lv(k_next, n))
        a = a.reshape(n, self.horizon, -1)[:, : self.chunk].reshape(n * self.chunk, -1)
        return self.act_norm.unnormalize(a).reshape(n, self.chunk, -1).numpy()


def classify(chunks: np.ndarray, d: dict, moved: float = 0.01) -> np.ndarray:
    """Per sampled chunk: +1 heads to the right fruit, -1 to the wrong one, 0 has not left home.
    Heading = the nearer of the two straight lines from home to 12 cm above each fruit (3D:
    the expert moves along that line, mostly down, so xy directions alone misjudge the middle slot)."""
    end = chunks[:, -1, :3] - d["home"]
    out = []
    for e in end:
        dist = []
        for xy in (d["right"], d["wrong"]):
            line = np.array([*xy, 0.12]) - d["home"]
            s = np.clip(e @ line / (line @ line), 0.0, 1.0)
            dist.append(np.linalg.norm(e - s * line))
        out.append(0 if np.linalg.norm(e) < moved else (1 if dist[0] <= dist[1] else -1))
    return np.array(out)


def handover_rollouts(run: Path, episodes: int, expert_first: bool, seed0: int = 100000) -> list[dict]:
    """Twin episodes; with `expert_first` the expert drives until it rests at home after move 1."""
    from df_robot.control.loop import WatchdogLimits, run_policy_episode
    from df_robot.control.safety import SafetyFilter, SafetyLimits
    from df_robot.policy.sampler import load_policy
    from df_robot.train import load_checkpoint
    from sim.expert import ScriptedExpert
    from sim.fruit_swap import FruitSwapTask
    from sim.scene import SceneConfig
    from sim.twin import Twin

    ckpt = load_checkpoint(run / "checkpoints" / "latest.pt")
    h, w = ckpt["stage1"].get("camera_hw", (96, 96))
    twin = Twin(SceneConfig(image_height=h, image_width=w), cameras=tuple(ckpt["stage1"]["cameras"]),
                command_period=0.1)
    task = FruitSwapTask(twin)
    policy = load_policy(ckpt)
    sampler = policy.sampler

    class ExpertThenPolicy:
        chunk = policy.chunk

        def reset(self):
            policy.reset()
            self.expert, self.placed, self.home, self.tokens, self.planned = None, False, False, 0, []

        def observe(self, images, state):
            policy.observe(images, state)

        def act(self, images, state, steps=None):
            if not expert_first or (self.placed and self.home):
                return policy.act(images, state, steps)
            if self.expert is None:
                self.expert = ScriptedExpert(task, self.seed)
            while len(self.planned) < sampler.horizon:  # the expert's plan, as far as a token sees
                self.planned.append(self.expert.next_target(twin.robot.state()).vector())
            token = np.array(self.planned[: sampler.horizon])
            a, self.planned = token[: self.chunk], self.planned[self.chunk:]
            self.placed = self.placed or bool(np.any(np.diff(a[:, 9]) < -0.5))
            self.home = self.placed and np.linalg.norm(a[-1, :3] - self.expert.home) < 1e-6
            # the memory absorbs the expert's chunk exactly as it absorbs its own
            sampler.absorb(sampler.as_fed(policy.observation(images, state)),
                           sampler.act_norm.normalize(torch.from_numpy(token).float()).reshape(1, -1))
            self.tokens += 1
            return a

    driver, results = ExpertThenPolicy(), []
    for i in range(episodes):
        seed = seed0 + i
        layout = task.reset(seed)
        driver.seed = seed
        order: list[str] = []

        def on_tick() -> bool:
            task.observe_step()
            for f in ("apple", "orange"):
                if task.lifted(f) and (not order or order[-1] != f):
                    order.append(f)
            return task.success()

        run_policy_episode(twin.robot, twin.cameras, driver, SafetyFilter(SafetyLimits(), 0.1), 0.1,
                           task.time_limit, policy.chunk, sampler.steps, WatchdogLimits(),
                           on_tick=on_tick, read_every_period=False, realtime=False)
        results.append({"seed": seed, "layout": layout.name(), "success": bool(task.success()),
                        "lifted_in_order": order, "expert_tokens": driver.tokens})
        print(json.dumps(results[-1]), flush=True)
    return results


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path)
    p.add_argument("--samples", type=int, default=16)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--k-obs", type=int, default=None, help="default: the checkpoint's")
    p.add_argument("--episodes", type=int, default=30)
    p.add_argument("--phases", type=int, default=2, help="token grids per episode (start frame offsets)")
    p.add_argument("--move", type=int, default=2, choices=(1, 2), help="2: the memory decision; 1: the start")
    p.add_argument("--masked-uncond", action="store_true", help="guide against a memory of masked tokens")
    p.add_argument("--lookahead", type=int, default=1, help=">1: pyramid sampling over that many tokens")
    p.add_argument("--guidance", type=float, default=0.0, help="history guidance weight w")
    p.add_argument("--obs-guidance", type=float, default=0.0,
                   help="observation guidance weight: away from the same token with its observation masked")
    p.add_argument("--temperature", type=float, default=1.0, help="scale of the initial noise of each chunk")
    p.add_argument("--out", type=Path, default=None, help="write the counts as JSON here")
    p.add_argument("--handover", type=int, default=0, metavar="N",
                   help="run N twin episodes: policy alone vs expert for move 1 then policy")
    p.add_argument("--expert-first", action="store_true", help="with --handover: only the expert-first half")
    p.add_argument("--policy-only", action="store_true", help="with --handover: only the policy-alone half")
    args = p.parse_args()
    torch.set_num_threads(1)
    if args.handover:
        import sim  # noqa: F401  (the MuJoCo GL backend before mujoco loads)

        summary = {}
        for expert_first in (False, True):
            if (expert_first and args.policy_only) or (not expert_first and args.expert_first):
                continue
            res = handover_rollouts(args.run, args.handover, expert_first)
            name = "expert for move 1, then policy" if expert_first else "policy alone"
            ok = sum(r["success"] for r in res)
            apple_first = sum(bool(r["lifted_in_order"]) and r["lifted_in_order"][0] == "apple" for r in res)
            summary[name] = {"success": ok, "episodes": len(res), "apple_first": apple_first, "episodes_detail": res}
            print(f"{name}: success {ok}/{len(res)}, apple lifted first {apple_first}/{len(res)}")
        if args.out:
            args.out.write_text(json.dumps({"run": str(args.run), **summary}, indent=1))
        return 0
    ckpt = torch.load(args.run / "checkpoints" / "latest.pt", map_location="cpu", weights_only=False)
    s1 = torch.load(args.run / "stage1.pt", map_location="cpu", weights_only=False)
    k_obs = ckpt["config"]["policy"]["k_obs"] if args.k_obs is None else args.k_obs
    probe = Probe(ckpt, args.samples, args.steps, k_obs, seed=0, guidance=args.guidance,
                  lookahead=args.lookahead, obs_guidance=args.obs_guidance, temperature=args.temperature)
    C = probe.chunk
    counts = {m: {"right": 0, "wrong": 0, "home": 0} for m in ("memory", "fresh")}
    per_episode = []
    used = 0
    for e, (obs_v, act) in enumerate(zip(s1["per_obs"], s1["per_act"])):
        if used >= args.episodes:
            break
        d = decision(act, args.move)
        if d is None:
            continue
        used += 1
        obs = obs_v[:, 0]
        for phase in range(args.phases):
            start = phase * C // max(args.phases, 1)
            chunks = chunk_actions(act[start:], C, probe.horizon)
            frames = list(range(start, len(act), C))
            # the token whose chunk first leaves home for move 2
            t_dec = next(t for t, f in enumerate(frames) if f + C > d["leave"])
            z = zu = probe.model.initial_memory(1)
            for t in range(t_dec):
                z = probe.absorb(z, obs[frames[t]], chunks[t])
                zu = probe.absorb_masked(zu)
            f = frames[t_dec]
            lab = {"memory": classify(probe.sample(z, obs[f], zu if args.masked_uncond else None), d),
                   "fresh": classify(probe.sample(probe.model.initial_memory(1), obs[f]), d)}
            for m, l in lab.items():
                counts[m]["right"] += int((l == 1).sum())
                counts[m]["wrong"] += int((l == -1).sum())
                counts[m]["home"] += int((l == 0).sum())
            per_episode.append({"episode": e, "phase": start, "token": t_dec,
                                **{m: [int((l == 1).sum()), int((l == -1).sum())] for m, l in lab.items()}})
    for m, c in counts.items():
        n = sum(c.values())
        print(f"{m:7s} memory: to the right fruit {c['right'] / n:.0%}, to the wrong fruit {c['wrong'] / n:.0%}, "
              f"still home {c['home'] / n:.0%}  ({n} samples, {used} demos)")
    if args.out:
        args.out.write_text(json.dumps({"run": str(args.run), "k_obs": k_obs, "steps": args.steps, "obs_guidance": args.obs_guidance,
                                        "counts": counts, "per_episode": per_episode}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
