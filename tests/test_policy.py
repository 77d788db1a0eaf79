"""The diffusion-forcing policy: noise levels, learning, memory, sampling."""

import numpy as np
import pytest
import torch

from df_robot.policy.losses import recall_targets
from df_robot.policy.model import DiffusionForcingModel, ModelDims
from df_robot.policy.noise import NoiseSchedule, ddim_levels, pyramid_levels, sample_levels
from df_robot.policy.normalizer import Normalizer
from df_robot.checkpoint import Checkpoint
from df_robot.policy.sampler import PolicySampler
from df_robot.train import train_on_tokens
from df_robot.policy.tokens import build_token_data
from policy_helpers import CHUNK, cue_data, cue_episodes, tiny_cfg


def test_levels_are_independent_across_tokens_and_modalities():
    g = torch.Generator().manual_seed(0)
    k_obs, k_act = sample_levels(4000, 8, 1000, g, history_clean_prob=0.0)
    assert k_obs.min() == 0 and k_obs.max() == 1000 and abs(k_obs.float().mean() - 500) < 10
    flat_o, flat_a = k_obs.float(), k_act.float()
    corr = np.corrcoef(np.stack([flat_o[:, 0], flat_o[:, 1], flat_a[:, 0]]))
    assert np.abs(corr[np.triu_indices(3, 1)]).max() < 0.05  # token vs token, obs vs action
    assert (k_obs != k_act).float().mean() > 0.99


def test_history_clean_bias_keeps_a_prefix_at_low_levels():
    g = torch.Generator().manual_seed(1)
    k_obs, k_act = sample_levels(2000, 10, 1000, g, history_clean_prob=1.0, history_max_level=100)
    low = (k_obs <= 100) & (k_act <= 100)
    # every sequence is a low-level prefix then anything: once high, never forced low again
    first_token_low = low[:, 0].float().mean()
    assert 0.85 < first_token_low < 0.95  # the split lands after token 0 in 10 of 11 cases (+ chance)
    assert (k_obs[:, 0] <= 100).float().mean() > 0.85
    k_obs0, _ = sample_levels(2000, 10, 1000, g, history_clean_prob=0.0)
    assert (k_obs0[:, 0] <= 100).float().mean() < 0.15


def test_obs_max_level_trains_a_past_of_noisy_views_and_clean_actions():
    g = torch.Generator().manual_seed(4)
    k_obs, k_act = sample_levels(2000, 10, 1000, g, history_clean_prob=1.0, history_max_level=100, obs_max_level=400)
    first_obs, first_act = k_obs[:, 0].float(), k_act[:, 0].float()
    assert (first_act <= 100).float().mean() > 0.85  # the past's actions stay nearly clean
    assert ((first_obs > 100) & (first_obs <= 400)).float().mean() > 0.6  # its views are noisy up to 400
    assert (first_obs <= 400).float().mean() > 0.85
    same, _ = sample_levels(50, 10, 1000, torch.Generator().manual_seed(5), obs_max_level=100)
    default, _ = sample_levels(50, 10, 1000, torch.Generator().manual_seed(5))
    assert torch.equal(same, default)  # unset: history_max_level, old runs draw what they drew


def test_obs_mask_prob_trains_refused_views_in_a_nearly_clean_past():
    """The gate feeds a refused view at level K after a nearly clean past; training shows that
    only when asked, and keeps the actions' levels (and old configs' draws) as they were."""
    g = torch.Generator().manual_seed(7)
    k_obs, _ = sample_levels(4000, 10, 1000, g, history_clean_prob=0.0, clean_obs_prob=1.0, obs_mask_prob=0.2)
    assert 0.18 < (k_obs == 1000).float().mean() < 0.22  # deploy's regime: every view nearly clean or refused
    assert ((k_obs <= 100) | (k_obs == 1000)).all()
    k_obs, k_act = sample_levels(4000, 10, 1000, g, history_clean_prob=1.0, obs_mask_prob=0.2)
    future = k_act[:, -1] > 100  # the last token is after the split in ~10 of 11 sequences (+ chance)
    assert (k_obs[:, 0] == 1000).float().mean() > 0.15  # the clean past's views refused too
    assert (k_obs[future, -1] == 1000).float().mean() < 0.03  # the noised future keeps its uniform levels
    o0, a0 = sample_levels(64, 5, 1000, torch.Generator().manual_seed(3), clean_obs_prob=0.5)
    o1, a1 = sample_levels(64, 5, 1000, torch.Generator().manual_seed(3), clean_obs_prob=0.5, obs_mask_prob=0.2)
    assert torch.equal(a0, a1)
    changed = o0 != o1
    assert changed.any() and (o1[changed] == 1000).all()
    unasked, _ = sample_levels(64, 5, 1000, torch.Generator().manual_seed(3), clean_obs_prob=0.5, obs_mask_prob=0.0)
    assert torch.equal(unasked, o0)


def test_clean_obs_bias_lowers_whole_sequences_observations_only():
    g = torch.Generator().manual_seed(2)
    k_obs, k_act = sample_levels(4000, 10, 1000, g, history_clean_prob=0.0, history_max_level=100, clean_obs_prob=0.5)
    all_low = (k_obs <= 100).all(dim=1).float().mean()
    assert 0.45 < all_low < 0.55  # half the sequences: every observation nearly clean
    assert abs(k_act.float().mean() - 500) < 10  # the actions keep uniform levels
    present = (k_obs <= 100) & (k_act > 500)  # deploy's regime: clean-ish view, chunk to denoise
    assert present.float().mean() > 0.25
    k_obs0, k_act0 = sample_levels(4000, 10, 1000, g, history_clean_prob=0.0)
    assert ((k_obs0 <= 100) & (k_act0 > 500)).float().mean() < 0.06
    # the bias draws after everything else: same seed, same actions, the other sequences' views kept
    o0, a0 = sample_levels(64, 5, 1000, torch.Generator().manual_seed(3))
    o1, a1 = sample_levels(64, 5, 1000, torch.Generator().manual_seed(3), clean_obs_prob=0.5)
    assert torch.equal(a0, a1)
    changed = (o0 != o1).any(dim=1)
    assert 0 < changed.sum() < 64 and (o1[changed] <= 100).all()


def test_the_default_trains_the_view_deploy_feeds_densely():
    """Deploy feeds the view at k_obs; with few demos the policy learns to read it only if
    training shows it near that level often (25 demos: 72 -> 88% at obs_max_level 100 against
    800, docs/experiments.md 2026-12-06)."""
    from df_robot.config import compose
    from df_robot.policy.losses import draw_noise

    pc = compose(["task=fruit_swap"]).policy
    draws = draw_noise(pc.kind, 4000, 10, 4, pc.K, torch.Generator().manual_seed(6), pc.history_clean_prob,
                       pc.history_max_level, pc.clean_obs_prob, pc.obs_max_level, pc.obs_mask_prob)
    near_deploy = (draws["k_obs"] <= 2 * pc.k_obs).float().mean()
    assert near_deploy > 0.5  # 800 put 12% of the views there
    # and the views the gate refuses (fed masked) after a nearly clean past: 200 demos under
    # dimmer light 91.5 -> 96% with them (dev seeds, two trainings each)
    refused_after_clean = (draws["k_obs"][:, 1:] == pc.K) & (draws["k_obs"][:, :1] <= 2 * pc.k_obs)
    assert refused_after_clean.float().mean() > 0.05


def test_schedule_ends_and_ddim_masks():
    s = NoiseSchedule(1000)
    x0, eps = torch.randn(3, 5), torch.randn(3, 5)
    assert torch.allclose(s.add_noise(x0, torch.zeros(3, dtype=torch.long), eps), x0)
    assert torch.allclose(s.add_noise(x0, torch.full((3,), 1000), eps), eps)  # level K: nothing of x0 left
    # one DDIM step from pure noise with a perfect x0 prediction lands on x0
    k, k0 = torch.full((3,), 1000), torch.zeros(3, dtype=torch.long)
    assert torch.allclose(s.ddim_step(eps, x0, k, k0), x0)
    assert ddim_levels(1000, 4) == [1000, 750, 500, 250, 0]
    m = pyramid_levels(1000, 4, 3)
    assert m[0].tolist() == [1000, 1000, 1000] and m[-1].tolist() == [0, 0, 0]
    assert all((row[:-1] <= row[1:]).all() for row in m)  # later tokens never less noisy


def test_model_overfits_and_the_sampler_returns_the_training_actions(tmp_path):
    data, obs, acts, _ = cue_data(n=4, tokens=4, seed=3)
    cfg = tiny_cfg(tmp_path, "train.steps=600", "train.batch_size=4", "train.lr=2e-3", "policy.k_obs=0")
    out = train_on_tokens(cfg, data, tmp_path, progress=False)
    h = out["history"]
    assert np.mean(h[-50:]) < np.mean(h[:20]) / 5  # the loss falls by at least 5x
    ckpt = Checkpoint.load(out["checkpoint"])
    model = DiffusionForcingModel(ModelDims(**ckpt.dims), 1000)
    model.load_state_dict(ckpt.ema)
    sampler = PolicySampler(model, "df", data.obs_norm, data.act_norm, CHUNK, steps=10, k_obs=0)
    errs = []
    for e in range(4):
        sampler.reset()
        for t in range(4):
            a = sampler.act(torch.from_numpy(obs[e][t * CHUNK, 0])).numpy()
            errs.append(np.abs(a - acts[e][t * CHUNK:(t + 1) * CHUNK]).max())
    assert np.median(errs) < 0.15, errs


def memory_accuracy(kind, tmp_path, steps, tokens=5, late=None, *overrides):
    obs, acts, _ = cue_episodes(64, tokens, seed=0, late=late)
    data = build_token_data(obs, acts, CHUNK)
    run = tmp_path / ("recall" if overrides else kind)
    cfg = tiny_cfg(run, f"policy={kind}", f"train.steps={steps}", "train.lr=2e-3", "policy.k_obs=0", *overrides)
    out = train_on_tokens(cfg, data, run, progress=False)
    ckpt = Checkpoint.load(out["checkpoint"])
    model = DiffusionForcingModel(ModelDims(**ckpt.dims), 1000)
    model.load_state_dict(ckpt.ema)
    sampler = PolicySampler(model, ckpt.policy, data.obs_norm, data.act_norm, CHUNK, steps=10, k_obs=0, seed=1)
    obs, _, cues = cue_episodes(40, tokens, seed=99, late=late)  # fresh episodes
    right = 0
    for o, cue in zip(obs, cues):
        sampler.reset()
        for t in range(tokens):
            frame = torch.from_numpy(o[t * CHUNK, 0])
            if t > 0:
                sampler.observe(torch.from_numpy(o[t * CHUNK - 1, 0]))
            a = sampler.act(frame).numpy()
        right += np.sign(a[:, 0].mean()) == cue  # the last token's action: only memory knows the cue
    return right / len(cues)


@pytest.mark.parametrize("memory_reads", ["token", "hidden"])
@pytest.mark.parametrize("kind", ["df", "teacher_forcing"])
def test_the_sequence_forward_is_the_token_by_token_definition(kind, memory_reads):
    """Training runs a whole sequence at once (the memory in one GRU call and the denoiser over
    all tokens, or, where the memory reads the denoiser's output, the memory-free parts batched);
    it must equal the definition deploy steps through: token t is denoised from z_{t-1}, and z
    is updated from that token as fed (diffusion forcing) or from its clean version (teacher
    forcing)."""
    torch.manual_seed(0)
    model = DiffusionForcingModel(ModelDims(obs_dim=5, act_dim=4, hidden=32, blocks=2, memory_reads=memory_reads), K=100)
    for p in model.parameters():  # AdaLN starts at zero; perturb so every path carries signal
        torch.nn.init.normal_(p, std=0.2)
    B, T = 3, 6
    x_noisy, x_clean = torch.randn(B, T, 9), torch.randn(B, T, 9)
    k_obs, k_act = torch.randint(0, 101, (B, T)), torch.randint(0, 101, (B, T))
    zeros = torch.zeros_like(k_obs)
    memory = dict(x_memory=x_clean, k_memory=(zeros, zeros)) if kind == "teacher_forcing" else {}
    batched = model(x_noisy, k_obs, k_act, **memory)

    z, expected = model.initial_memory(B), []
    for t in range(T):
        h, x0 = model.denoise(z, x_noisy[:, t], k_obs[:, t], k_act[:, t])
        expected.append(x0)
        if memory:
            z = model.step_memory(z, x_clean[:, t], zeros[:, t], zeros[:, t])
        else:
            z = model.step_memory(z, x_noisy[:, t], k_obs[:, t], k_act[:, t], h=h)
    torch.testing.assert_close(batched, torch.stack(expected, 1), rtol=1e-5, atol=1e-5)
    if memory:  # the memory really reads the clean tokens: changing them changes later tokens only
        other = model(x_noisy, k_obs, k_act, x_memory=x_clean + 1.0, k_memory=(zeros, zeros))
        torch.testing.assert_close(other[:, 0], batched[:, 0])
        assert (other[:, 1:] - batched[:, 1:]).abs().max() > 1e-3


def test_memory_is_real_df_remembers_and_diffusion_policy_cannot(tmp_path):
    df = memory_accuracy("df", tmp_path, steps=500)
    dp = memory_accuracy("diffusion_policy", tmp_path, steps=500)
    assert df >= 0.9, df
    assert dp <= 0.75, dp


def test_recall_targets_are_the_first_observation_and_the_ones_lags_back():
    obs = torch.arange(6.0).view(1, 6, 1) + 10  # token t observed 10 + t
    targets = recall_targets(obs, (2, 8))[0]
    assert targets[:, 0].tolist() == [10] * 6                    # the first, at every token
    assert targets[:, 1].tolist() == [10, 10, 10, 11, 12, 13]    # two back (the first while none)
    assert targets[:, 2].tolist() == [10] * 6                    # eight back: none yet in six tokens


def test_the_recall_head_carries_a_cue_needed_long_after_it_was_seen(tmp_path):
    """The cue is seen at the first of 40 tokens and acted on only in the last two (return_apple's
    shape). On the denoising loss alone the memory has let it go by then (chance); asked to recall
    the first observation from every z_t, it keeps it."""
    plain = memory_accuracy("df", tmp_path, 600, 40, 2)  # a memory that reads tokens needs 600 steps here
    recall = memory_accuracy("df", tmp_path, 600, 40, 2, "policy.recall_weight=1.0")  # (300 read hidden)
    assert recall >= 0.9, recall
    assert recall - plain >= 0.25, (plain, recall)
    ckpt = Checkpoint.load(tmp_path / "recall" / "checkpoints" / "latest.pt")
    assert ckpt.dims["recall"] and "recall.weight" in ckpt.weights  # deploy loads it like any other


def test_all_phases_makes_every_frame_a_token_start_and_every_sequence_starts_at_rest():
    lengths, chunk = [11, 16], 4
    obs = [np.arange(L, dtype=np.float32)[:, None, None].repeat(2, axis=2) + 100 * e for e, L in enumerate(lengths)]
    acts = [o[:, 0, :].copy() for o in obs]
    plain = build_token_data(obs, acts, chunk)
    shifted = build_token_data(obs, acts, chunk, phases=True)
    assert plain.mask.sum() == sum(-(-L // chunk) for L in lengths)
    unnorm = shifted.obs_norm.unnormalize(shifted.obs[:, :, 0])[..., 0].round().int()
    starts = unnorm[shifted.mask].tolist()
    # every frame starts a token; the shifted grids add starts at the first frame (held longer)
    assert sorted(set(starts)) == sorted(list(range(11)) + [100 + f for f in range(16)])
    assert starts.count(0) == starts.count(100) == chunk and len(starts) == 11 + 16 + 2 * (chunk - 1)
    # as at deploy, each sequence's memory starts at the episode's first frame, never mid-motion
    assert sorted(unnorm[:, 0].tolist()) == [0] * chunk + [100] * chunk
    # a shifted grid holds the first action (the rest) p periods longer, then the episode as recorded
    act = shifted.act_norm.unnormalize(shifted.act.reshape(len(shifted.act), -1, 2))[..., 0].round().int()
    assert act[1, :3].tolist() == [0, 0, 1]  # p = 1: the first token [0, 0, 1, 2], the next from frame 3
    assert shifted.obs_norm.unnormalize(shifted.obs[1, 1, 0])[0].round() == 3
    last = shifted.act_norm.unnormalize(shifted.act[shifted.mask][:, -2:])[:, 0].round().int().tolist()
    assert max(last) == 115 and all(l <= (10 if s < 100 else 115) for s, l in zip(starts, last))


def test_a_horizon_past_the_chunk_predicts_ahead_and_executes_the_chunk(tmp_path):
    """task.horizon > chunk: each token's action part holds the next `horizon` actions (the
    loss sees where a motion goes), deploy executes the first `chunk`, and a horizon shorter
    than the chunk is refused."""
    L, chunk, horizon = 13, 4, 6
    obs = [np.arange(L, dtype=np.float32)[:, None, None].repeat(2, axis=2)]
    acts = [obs[0][:, 0, :].copy()]
    data = build_token_data(obs, acts, chunk, horizon=horizon)
    assert data.act_dim == horizon * 2 and data.horizon == horizon
    planned = data.act_norm.unnormalize(data.act[0, data.mask[0]].reshape(-1, 2)).reshape(-1, horizon, 2)
    expected = [[min(t * chunk + i, L - 1) for i in range(horizon)] for t in range(-(-L // chunk))]
    assert planned[..., 0].round().int().tolist() == expected
    with pytest.raises(ValueError, match="horizon 3 < chunk 4"):
        build_token_data(obs, acts, chunk, horizon=3)
    model = DiffusionForcingModel(ModelDims(obs_dim=2, act_dim=horizon * 2, hidden=32, blocks=1), 1000)
    sampler = PolicySampler(model, "df", data.obs_norm, data.act_norm, chunk, steps=2, horizon=horizon)
    assert sampler.act(torch.zeros(2)).shape == (chunk, 2)


def test_a_horizon_shorter_than_the_chunk_is_a_config_error():
    from df_robot.config import compose
    from df_robot.errors import UserError
    from df_robot.stage1 import horizon_of

    assert horizon_of(compose(["task.horizon=0"])) == 8 and horizon_of(compose(["task.horizon=16"])) == 16
    with pytest.raises(UserError, match="task.horizon=4 must be at least task.chunk=8"):
        horizon_of(compose(["task.horizon=4"]))


def test_medoid_keeps_the_sample_of_the_main_mode():
    from df_robot.policy.sampler import medoid

    main = torch.randn(6, 4) * 0.01 + 1.0   # six samples near +1, two near -1
    samples = torch.cat([torch.randn(2, 4) * 0.01 - 1.0, main])
    assert medoid(samples).shape == (1, 4) and (medoid(samples) > 0.9).all()
    one = torch.randn(1, 4)
    assert torch.equal(medoid(one), one)


def test_several_samples_and_an_exact_state_change_what_the_model_is_fed():
    """samples=M denoises M chunks in one batch and keeps one; exact_from feeds the state dims
    scaled to k_obs but noise-free while the camera dims stay noised."""
    D, chunk = 6, 2
    model = DiffusionForcingModel(ModelDims(obs_dim=D, act_dim=chunk * 2, hidden=16, blocks=1), 1000)
    norm_o, norm_a = Normalizer.fit(torch.randn(50, D)), Normalizer.fit(torch.randn(50, 2))
    obs = torch.randn(D)
    sampler = PolicySampler(model, "df", norm_o, norm_a, chunk, steps=2, k_obs=400, samples=5, camera_dims=4,
                            exact_state=True)
    fed = torch.stack([sampler.as_fed(obs)[0] for _ in range(20)])
    scale = sampler.schedule.abar[400].sqrt()
    assert torch.allclose(fed[:, 4:], scale * norm_o.normalize(obs[None])[:, 4:].expand(20, -1), atol=1e-5)
    assert fed[:, :4].std(0).min() > 0.2  # the camera part is noised, differently each call
    assert sampler.act(obs).shape == (chunk, 2) and sampler.z.shape == (1, 16)
    with pytest.raises(ValueError, match="samples=3: expected 1, or more with lookahead 1"):
        PolicySampler(model, "df", norm_o, norm_a, chunk, samples=3, lookahead=2)


def test_temperature_zero_makes_the_chunk_a_function_of_memory_and_observation():
    """temperature scales each chunk's initial noise: at 0 the DDIM path is deterministic, so two
    samplers with different seeds choose the same chunk for the same (memory, observation);
    at 1 they draw different ones. A negative scale is a one-line error."""
    from df_robot.errors import UserError

    D, chunk = 6, 2
    model = DiffusionForcingModel(ModelDims(obs_dim=D, act_dim=chunk * 2, hidden=16, blocks=1), 1000)
    norm_o, norm_a = Normalizer.fit(torch.randn(50, D)), Normalizer.fit(torch.randn(50, 2))
    obs = torch.randn(D)

    def chunk_of(temperature, seed):
        s = PolicySampler(model, "df", norm_o, norm_a, chunk, steps=4, k_obs=0, seed=seed, exact_state=True,
                          camera_dims=0, temperature=temperature)
        return s.act(obs)

    assert torch.allclose(chunk_of(0.0, 1), chunk_of(0.0, 2), atol=1e-6)
    assert (chunk_of(1.0, 1) - chunk_of(1.0, 2)).abs().max() > 1e-2
    with pytest.raises(UserError, match="temperature=-0.5: expected a scale >= 0"):
        chunk_of(-0.5, 0)


def test_a_surprising_view_is_masked_and_leaves_no_trace_in_memory():
    """surprise=(threshold, K): an observation far from what the memory predicts (an occluded
    camera) is fed fully noised, so what it showed cannot reach the memory or the actions;
    an expected one is fed at k_obs. The first step has nothing to compare with: never gated."""
    D, chunk = 6, 2
    model = DiffusionForcingModel(ModelDims(obs_dim=D, act_dim=chunk * 2, hidden=16, blocks=1), 1000)
    norm_o, norm_a = Normalizer.fit(torch.randn(50, D)), Normalizer.fit(torch.randn(50, 2))

    def run(views):
        s = PolicySampler(model, "df", norm_o, norm_a, chunk, steps=2, k_obs=50, camera_dims=4, seed=7,
                          surprise=(30.0, 1000))
        acts = [s.act(v) for v in views]
        return s, acts

    calm = torch.zeros(D)
    s1, a1 = run([calm, calm, torch.full((D,), 40.0)])
    s2, a2 = run([calm, calm, torch.full((D,), -40.0)])  # a different occluder
    assert [k for _, k in s1.surprise_log] == [50, 1000] and s1.surprise_log[1][0][0] > 30
    assert torch.equal(s1.z, s2.z) and torch.equal(a1[2], a2[2])  # what the occluder showed is gone
    s3, a3 = run([calm, calm, calm])
    assert [k for _, k in s3.surprise_log] == [50, 50]
    assert not torch.equal(s3.z, s1.z)


def test_the_adaptive_gate_trusts_a_view_as_far_as_its_surprise_allows():
    D, chunk = 6, 2
    model = DiffusionForcingModel(ModelDims(obs_dim=D, act_dim=chunk * 2, hidden=16, blocks=1), 1000)
    norm_o, norm_a = Normalizer.fit(torch.randn(50, D)), Normalizer.fit(torch.randn(50, 2))
    s = PolicySampler(model, "df", norm_o, norm_a, chunk, k_obs=50, camera_dims=4, cameras=2, surprise=([1.0, 2.0], -1))
    assert s.gated_level(torch.tensor([0.9, 1.9])) == 50  # expected: fed at k_obs
    abar = s.schedule.abar
    k = s.gated_level(torch.tensor([4.0, 1.0]))  # front 4x its threshold: a signal share of 1/4 at most
    assert abar[k] <= 0.25 < abar[k - 1]
    assert s.gated_level(torch.tensor([1e6, 1.0])) > 990  # an occluder: nearly masked
    assert s.gated_level(torch.tensor([1.001, 1.0])) == 50  # barely surprised: never below k_obs


def test_augmentation_defaults_to_the_random_shift_and_jitters_only_when_asked():
    from df_robot.policy.augment import Augment
    from df_robot.policy.autoencoder import random_shift

    x = torch.rand(6, 3, 32, 32) * 2 - 1
    shifted = Augment(shift=4)(x, torch.Generator().manual_seed(3))
    assert torch.equal(shifted, random_shift(x, 4, torch.Generator().manual_seed(3)))  # earlier runs' stream
    jittered = Augment(shift=0, rotate=5.0, colour=0.3)(x, torch.Generator().manual_seed(3))
    assert jittered.shape == x.shape and jittered.min() >= -1 and jittered.max() <= 1
    means = (jittered.mean(dim=(2, 3)) - x.mean(dim=(2, 3))).abs()
    assert means.max() > 0.02  # brightness and white balance moved, per image and channel
    flat = torch.full((1, 3, 32, 32), 0.2)
    assert torch.allclose(Augment(shift=0, rotate=5.0)(flat, torch.Generator()), flat, atol=1e-5)  # geometry only


def test_light_augmentation_survives_standardizing_where_a_dimmer_room_does_not():
    from df_robot.policy.augment import Augment
    from df_robot.policy.autoencoder import standardize

    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 1.2 - 0.6
    change = lambda y: float((standardize(y) - standardize(x)).abs().mean())  # noqa: E731
    dimmer = (x + 1) * 0.6 - 1  # the same scene, 0.6x the light
    lit = Augment(shift=0, light=0.3)(x, torch.Generator().manual_seed(1))
    assert lit.shape == x.shape and lit.min() >= -1 and lit.max() <= 1
    assert change(dimmer) < 0.03 < 0.06 < change(lit)  # a lamp turned is not a gain standardizing removes
    assert torch.equal(lit, Augment(shift=0, light=0.3)(x, torch.Generator().manual_seed(1)))  # seeded
    grey = Augment(shift=0, light=0.3)(torch.zeros(8, 3, 32, 32), torch.Generator().manual_seed(2))
    assert grey.std(dim=(2, 3)).min() > 0.005  # a flat picture comes back lit unevenly, each one
    assert torch.equal(Augment(shift=0)(x, torch.Generator()), x)  # off unless asked


def test_another_table_cloth_recolours_the_table_not_the_fruit_and_is_undone_in_the_target():
    from df_robot.policy.augment import Augment
    from df_robot.policy.autoencoder import ImageAutoencoder
    from df_robot.policy.encode import encode_views

    x = torch.empty(4, 3, 32, 32)
    x[:] = torch.tensor([0.78, 0.44, 0.10])[:, None, None]  # a wooden table, [-1, 1]
    x[:, :, 10:16, 10:16] = torch.tensor([0.9, -0.1, -0.9])[:, None, None]  # an orange on it
    seen, target = Augment(shift=0, table=0.12).pair(x, torch.Generator().manual_seed(0))
    assert torch.equal(target, x)  # stage 1 gives back the scene as recorded
    cloth = (seen - x)[:, :, 0, 0].abs()  # [-1, 1] is twice the 0-1 scale
    assert cloth.max() > 0.05 and cloth.max() <= 2 * 0.12 + 1e-5
    assert (seen - x)[:, :, 12, 12].abs().max() < 1e-3  # the fruit keeps its colour
    assert torch.equal(seen, Augment(shift=0, table=0.12)(x, torch.Generator().manual_seed(0)))  # seeded
    assert torch.equal(Augment(shift=0)(x, torch.Generator()), x)  # off unless asked
    frames = ((x + 1) * 127.5).round().to(torch.uint8)
    views = encode_views(ImageAutoencoder(32, 8).eval(), frames, 3, Augment(shift=0, table=0.12), 0)
    assert np.allclose(views[:, 1:], views[:, :1], atol=1e-6)  # stage 2's views keep the recorded cloth


def test_stage_one_gives_back_the_recorded_cloth_so_the_code_ignores_another():
    """Pictures of a wooden table with a square on it: with `table`, the autoencoder sees the
    cloth recoloured and is asked for the recorded one, so a recoloured picture's code lies near
    the recorded picture's, far nearer than for an autoencoder that reconstructs what it sees."""
    from df_robot.policy.augment import Augment
    from df_robot.policy.encode import as_float, train_autoencoder

    rng = np.random.default_rng(0)
    frames = np.empty((300, 3, 32, 32), np.uint8)
    frames[:] = np.array([225, 185, 140], np.uint8)[:, None, None]
    for i, (x, y) in enumerate(rng.integers(4, 26, (300, 2))):
        frames[i, :, y:y + 4, x:x + 4] = [[[250]], [[120]], [[20]]]
    frames = torch.from_numpy(frames)
    recoloured = Augment(shift=0, table=0.12).retable(as_float(frames[:50]), torch.Generator().manual_seed(1))

    def code_moved(table: float) -> float:
        ae, _ = train_autoencoder([frames], 32, 8, 300, 32, 1e-3, Augment(shift=0, table=table), seed=0,
                                  standardized=True)
        with torch.no_grad():
            z, z_other = ae.encode(as_float(frames[:50])), ae.encode(recoloured)
        return float((z_other - z).norm(dim=1).mean() / (z - z.mean(0)).norm(dim=1).mean())

    assert code_moved(0.12) < 0.3 * code_moved(0.0)


def test_flattening_the_shading_takes_out_a_lamp_turned_and_keeps_a_moved_object():
    """A gain sloping across the picture (a lamp turned) survives standardizing but not
    flatten_shading; a small object moved changes the flattened picture as much as the plain
    one. A checkpoint's record rebuilds the encoder with it (and one from before, without)."""
    from df_robot.checkpoint import Stage1
    from df_robot.policy.autoencoder import ImageAutoencoder, flatten_shading, load_autoencoder, standardize

    table = torch.full((1, 3, 32, 32), -0.2)

    def scene(row: int) -> torch.Tensor:
        x = table.clone()
        x[0, 0, row:row + 4, 10:14], x[0, 1:, row:row + 4, 10:14] = 0.8, -0.8  # a red fruit
        return x

    x, moved = scene(6), scene(20)
    slope = torch.linspace(0.55, 1.0, 32).view(1, 1, 1, 32)
    lamp = ((x + 1) * slope) - 1
    flat = lambda y: standardize(flatten_shading(y, 4.0))  # noqa: E731
    change = lambda f, y: float((f(y) - f(x)).abs().mean())  # noqa: E731
    assert change(standardize, lamp) > 4 * change(standardize, moved)  # the lamp outweighs the fruit...
    assert change(flat, lamp) < 0.5 * change(flat, moved)  # ...until the shading is flattened
    assert change(flat, moved) > 0.8 * change(standardize, moved)

    torch.manual_seed(0)
    ae = ImageAutoencoder(32, 8, standardized=True, shading=4.0).eval()
    record = Stage1(cameras=["front"], image_size=32, latent_dim=8, autoencoders={"front": ae.state_dict()},
                    standardize_images=True, flatten_shading={"front": 4.0})
    before = Stage1(cameras=["front"], image_size=32, latent_dim=8, autoencoders={"front": ae.state_dict()},
                    standardize_images=True)
    with torch.no_grad():
        assert torch.equal(load_autoencoder(record, "front").encode(lamp), ae.encode(lamp))
        assert not torch.allclose(load_autoencoder(before, "front").encode(lamp), ae.encode(lamp))


def test_a_checkpoint_from_before_memory_reads_loads_as_it_was_trained():
    """Checkpoints made before `memory_reads` hold a memory that reads the denoiser's output;
    their dims lack the key and must rebuild that model, not the one new runs train."""
    old = DiffusionForcingModel(ModelDims(obs_dim=5, act_dim=4, hidden=32, blocks=2, memory_reads="hidden"), K=100)
    dims = {k: v for k, v in vars(old.dims).items() if k != "memory_reads"}
    DiffusionForcingModel(ModelDims(**dims), K=100).load_state_dict(old.state_dict())  # strict
    with pytest.raises(RuntimeError, match="Missing key"):
        DiffusionForcingModel(ModelDims(**dims, memory_reads="token"), K=100).load_state_dict(old.state_dict())


def test_a_keypoint_follows_the_feature_it_reads():
    """The spatial softmax reads where a feature is: a peak moved 8 columns right moves its
    point by 8/15 of the picture's half-width, and the other coordinate stays."""
    from df_robot.policy.autoencoder import SpatialSoftmax

    def at(row: int, col: int) -> torch.Tensor:
        f = torch.zeros(1, 1, 16, 16)
        f[0, 0, row, col] = 30.0
        return SpatialSoftmax()(f)[0]

    grid = torch.linspace(-1, 1, 16)
    assert torch.allclose(at(5, 3), torch.stack([grid[3], grid[5]]), atol=1e-3)
    moved = at(5, 11) - at(5, 3)
    assert abs(moved[0].item() - 16 / 15) < 1e-3 and abs(moved[1].item()) < 1e-3


def test_keypoints_take_their_share_of_the_latent_and_load_from_a_stage1_record():
    """latent_dim stays each camera's whole latent (the code first, then the points), and
    a checkpoint's record rebuilds the same encoder; a record from before keypoints is the
    plain code."""
    from df_robot.checkpoint import Stage1
    from df_robot.policy.autoencoder import ImageAutoencoder, load_autoencoder

    torch.manual_seed(0)
    ae = ImageAutoencoder(32, 12, standardized=True, keypoints=4).eval()
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        z = ae.encode(x)
    assert z.shape == (3, 12) and z[:, 4:].abs().max() <= 1  # 4 code numbers, 4 points in [-1, 1]
    record = Stage1(cameras=["front"], image_size=32, latent_dim=12, autoencoders={"front": ae.state_dict()},
                    standardize_images=True, keypoints=4)
    loaded = load_autoencoder(record, "front")
    with torch.no_grad():
        assert torch.equal(loaded.encode(x), z) and loaded.decode(z).shape == (3, 3, 32, 32)
    plain = ImageAutoencoder(32, 12).state_dict()
    old = Stage1(cameras=["front"], image_size=32, latent_dim=12, autoencoders={"front": plain})
    assert load_autoencoder(old, "front").points is None
    with pytest.raises(ValueError, match="6 keypoints take 12 of latent_dim 12"):
        ImageAutoencoder(32, 12, keypoints=6)


def test_the_channels_last_autoencoder_encodes_what_the_plain_layout_did():
    """The layout is a speed choice only: a state dict saved before it loads, and the latents
    and reconstructions are those of the plain (N, C, H, W) convolutions, to float rounding."""
    from df_robot.policy.autoencoder import ImageAutoencoder, standardize

    torch.manual_seed(0)
    ae = ImageAutoencoder(32, 8, width=8, standardized=True).eval()
    plain = {k: v.contiguous() for k, v in ae.state_dict().items()}  # as checkpoints before it hold them
    assert any(not v.is_contiguous() for v in ae.state_dict().values())  # the conv weights are channels-last
    loaded = ImageAutoencoder(32, 8, width=8, standardized=True).eval()
    loaded.load_state_dict(plain)
    x = torch.rand(5, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        reference = ae.encoder.to(memory_format=torch.contiguous_format)(standardize(x).contiguous())
        z = loaded.encode(x)
        assert torch.allclose(z, reference, atol=1e-5)
        assert torch.allclose(loaded.decode(z), ae.decoder.to(memory_format=torch.contiguous_format)(reference), atol=1e-5)


def test_the_first_reach_is_where_the_hand_is_when_the_gripper_first_moves():
    """Every frame before the first gripper command change gets the hand's (x, y) at that
    change; the frames after it, and an episode whose gripper never moves, get none (NaN)."""
    from df_robot.policy.encode import first_reach

    state = np.zeros((10, 17), np.float32)
    state[:, 0], state[:, 1] = np.arange(10) / 10, -np.arange(10) / 10
    action = np.zeros((10, 10), np.float32)
    action[4:, -1] = 1.0   # closes at frame 4
    action[7:, -1] = 0.0   # opens at frame 7: not a target
    target = first_reach(state, action)
    assert np.allclose(target[:4], [0.4, -0.4]) and np.isnan(target[4:]).all()
    assert np.isnan(first_reach(state, np.zeros((10, 10), np.float32))).all()


def test_object_places_follow_each_object_through_grasps_and_releases():
    """An object lies where it is first grasped until then, moves with the hand while held, and
    lies where it was let go until grasped again; a grasp away from every lying object is a new
    object; the gripper's open value is whatever the episode starts with."""
    from df_robot.policy.encode import object_places

    L = 12
    hand = np.array([[0.0, 0.0], [0.1, 0.0], [0.1, 0.0], [0.2, 0.0], [0.3, 0.0],   # grasp A at 1, let go at 4
                     [0.0, 0.5], [0.0, 0.5], [0.1, 0.5], [0.3, 0.01], [0.3, 0.01],  # grasp B at 6, A again at 8
                     [0.4, 0.0], [0.4, 0.0]], np.float32)
    state = np.c_[hand, np.zeros((L, 5), np.float32)]
    closed = np.array([0, 1, 1, 1, 0, 0, 1, 0, 1, 1, 0, 0], bool)
    for open_value, closed_value in ((0.0, 1.0), (1.0, -1.0)):
        action = np.zeros((L, 7), np.float32)
        action[:, -1] = np.where(closed, closed_value, open_value)
        places = object_places(state, action, objects=2)
        a, b = places[:, :2], places[:, 2:]
        assert np.allclose(a[:1], [0.1, 0.0]) and np.allclose(a[1:4], hand[1:4])   # lay there, then in the hand
        assert np.allclose(a[4:8], [0.3, 0.0]) and np.allclose(a[8:10], hand[8:10])  # let go at 4, taken at 8
        assert np.allclose(a[10:], [0.4, 0.0])
        assert np.allclose(b[:6], [0.0, 0.5]) and np.allclose(b[7:], [0.1, 0.5])     # the second object
    assert np.isnan(object_places(state, np.zeros((L, 7), np.float32))).all()      # the gripper never moves
    assert np.isnan(object_places(state, action, objects=3)[:, 4:]).all()           # no third object


def test_the_reach_target_puts_where_the_first_object_lies_in_the_code():
    """Pictures of a small square on a speckled ground, the square's place the reach target:
    with the target, a linear read of the code finds the square on pictures it never saw far
    better than off a code trained to reconstruct alone."""
    from df_robot.policy.augment import Augment
    from df_robot.policy.encode import as_float, train_autoencoder

    def pictures(n: int, rng) -> tuple[torch.Tensor, np.ndarray]:
        img = rng.integers(110, 140, (n, 3, 32, 32)).astype(np.uint8)
        xy = rng.uniform(4, 26, (n, 2))
        for i, (x, y) in enumerate(xy.astype(int)):
            img[i, :, y:y + 3, x:x + 3] = [[[250]], [[40]], [[40]]]
        return torch.from_numpy(img), xy.astype(np.float32)

    rng = np.random.default_rng(0)
    frames, xy = pictures(400, rng)
    test_frames, test_xy = pictures(100, rng)

    def probe_error(weight: float) -> float:
        ae, _ = train_autoencoder([frames], 32, 8, 300, 32, 1e-3, Augment(shift=0), seed=0,
                                  targets=[xy], target_weight=weight)
        with torch.no_grad():
            z, z_test = ae.encode(as_float(frames)).numpy(), ae.encode(as_float(test_frames)).numpy()
        a = np.c_[z, np.ones(len(z))]
        w = np.linalg.lstsq(a, xy, rcond=None)[0]
        return float(np.abs(np.c_[z_test, np.ones(len(z_test))] @ w - test_xy).mean())

    plain, with_target = probe_error(0.0), probe_error(1.0)
    assert with_target < 0.5 * plain, (with_target, plain)
