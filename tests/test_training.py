"""Training: resume, atomic checkpoints, data parallel, config errors, and a run from a store."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from df_robot.cli import main as cli_main
from df_robot.errors import UserError
from df_robot.checkpoint import Checkpoint, save_atomic
from df_robot.policy.image_policy import ImagePolicy
from df_robot.train import train, train_on_tokens
from policy_helpers import cue_data, tiny_cfg
from store_helpers import moving_square_store, random_image_store

HERE = Path(__file__).parent


def test_resume_reproduces_the_uninterrupted_run(tmp_path):
    data, *_ = cue_data(n=16, tokens=4, seed=2)
    full = train_on_tokens(tiny_cfg(tmp_path / "full", "train.steps=40"), data, tmp_path / "full", progress=False)
    train_on_tokens(tiny_cfg(tmp_path / "cut", "train.steps=40", "train.checkpoint_every=20"), data, tmp_path / "cut",
                    progress=False)
    # pretend the run was killed after step 20: keep only that checkpoint
    ckpt = Checkpoint.load(tmp_path / "cut" / "checkpoints" / "latest.pt")
    assert ckpt.step == 40
    half = train_on_tokens(tiny_cfg(tmp_path / "half", "train.steps=20"), data, tmp_path / "half", progress=False)
    resumed = train_on_tokens(tiny_cfg(tmp_path / "half", "train.steps=40", "resume=true"), data, tmp_path / "half",
                              progress=False)
    assert len(half["history"]) == 20 and len(resumed["history"]) == 40
    np.testing.assert_allclose(resumed["history"], full["history"], rtol=1e-5, atol=1e-6)


def test_a_kill_during_save_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "latest.pt"
    save_atomic({"step": 1, "w": torch.ones(3)}, path)

    def dying_save(obj, f):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt  # the process dies in the middle of writing

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        save_atomic({"step": 2, "w": torch.zeros(3)}, path)
    monkeypatch.undo()
    assert torch.load(path)["step"] == 1


def _train_two_processes(run_dir: Path, out: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1",
           "PYTHONFAULTHANDLER": "1"}  # a rank that aborts prints where its Python threads were
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(HERE / "ddp_worker.py"), str(run_dir), str(out)],
                          env=env, capture_output=True, text=True, timeout=300)


def _why_it_died(stderr: str) -> str:
    """The lines that say what killed a rank, ahead of torchrun's long report (which alone fills a CI excerpt)."""
    telling = [line for line in stderr.splitlines()
               if any(k in line for k in ("rank ", "terminate", "what()", "Error", "Fatal Python", "File \""))]
    return "\n".join(telling[:40]) + "\n--- stderr tail ---\n" + stderr[-1500:]


def test_data_parallel_gloo_matches_one_process(tmp_path):
    """Two gloo processes splitting each batch train exactly like one process.

    A rank has, rarely, died by SIGABRT here (once in CI on 2026-11-24, whose excerpt lost the reason;
    never in some 40 runs on this machine kind); gloo aborts a process whose peer closes its sockets
    under it, which fits the teardown. So a crash after both ranks reported 'trained' earns one rerun;
    a crash during training, a second crash, or a different history fails."""
    data, *_ = cue_data(n=16, tokens=4, seed=5)
    # fp32: under bf16 autocast, half a batch rounds differently from the whole (1e-3), hiding the check
    single = train_on_tokens(tiny_cfg(tmp_path / "one", "train.steps=15", "train.batch_size=8", "train.precision=fp32"),
                             data, tmp_path / "one", progress=False)
    out = tmp_path / "ddp.json"
    proc = _train_two_processes(tmp_path / "two", out)
    trained = all(f"rank {r}: trained" in proc.stderr for r in (0, 1))
    if proc.returncode != 0 and trained:  # rank 0 says "trained" only after writing its losses
        print("first try crashed after training, rerunning once:\n" + _why_it_died(proc.stderr))
        out.unlink()
        proc = _train_two_processes(tmp_path / "two_again", out)
    assert proc.returncode == 0, _why_it_died(proc.stderr)
    assert all(f"rank {r}: shut down" in proc.stderr for r in (0, 1))
    np.testing.assert_allclose(json.loads(out.read_text()), single["history"], rtol=1e-4, atol=1e-5)


def test_the_fused_optimizer_takes_the_steps_plain_adamw_takes():
    """Training's AdamW runs torch's fused kernel on the CPU and updates the weights as the
    single-tensor loop does (weight decay, bias correction and all)."""
    from df_robot.policy.optim import adamw

    torch.manual_seed(0)
    plain = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.GELU(), torch.nn.Linear(16, 3))
    fused = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.GELU(), torch.nn.Linear(16, 3))
    fused.load_state_dict(plain.state_dict())
    start = [p.detach().clone() for p in fused.parameters()]
    opt_plain = torch.optim.AdamW(plain.parameters(), lr=1e-2, weight_decay=1e-2, foreach=False)
    opt_fused = adamw(fused.parameters(), lr=1e-2, weight_decay=1e-2)
    assert opt_fused.defaults["fused"] is True
    x, y = torch.randn(64, 6), torch.randn(64, 3)
    for _ in range(20):
        for net, opt in ((plain, opt_plain), (fused, opt_fused)):
            opt.zero_grad()
            torch.nn.functional.mse_loss(net(x), y).backward()
            opt.step()
    apart = [(a - b).abs().max().item() for a, b in zip(plain.parameters(), fused.parameters())]
    assert max(apart) < 1e-5, apart
    assert min((a - b).abs().max().item() for a, b in zip(start, fused.parameters())) > 1e-2  # it did train


@pytest.mark.parametrize("override, message", [
    ("task=laundry", "task must be one of ['fruit_swap', 'place_apple', 'return_apple']"),
    ("policy=transformer", "policy must be one of"),
    ("train.stepz=3", "train.stepz: no such key"),
    ("train.steps=abc", "train.steps: expected int"),
    ("train.precision=fp16", "train.precision='fp16': expected one of ['auto', 'bf16', 'fp32']"),
    ("policy.recall_weight=-1", "policy.recall_weight=-1: expected a weight >= 0"),
    ("policy.recall_lags=[0]", "policy.recall_lags=[0]: expected token counts > 0, like [8]"),
    ("policy.memory_reads=output", "policy.memory_reads='output': expected token or hidden"),
    ("policy.keypoints=16", "policy.keypoints=16 takes 32 numbers of policy.latent_dim=32: expected fewer"),
])
def test_config_errors_are_one_line(override, message, capsys):
    assert cli_main(["train", override]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_what_the_memory_reads_is_the_tasks_choice_unless_the_policy_says():
    """New runs read tokens, on every task; a task may ask for the model before, and an explicit
    policy.memory_reads wins either way."""
    from df_robot.config import compose
    from df_robot.train import memory_reads

    assert memory_reads(compose(["task=fruit_swap"])) == "token"
    assert memory_reads(compose(["task=return_apple"])) == "token"
    assert memory_reads(compose(["task=return_apple", "+task.memory_reads=hidden"])) == "hidden"
    assert memory_reads(compose(["task=return_apple", "+task.memory_reads=hidden", "policy.memory_reads=token"])) == "token"


def test_the_recall_head_is_the_tasks_choice_unless_the_policy_says():
    """return_apple (a cue needed ~30 s later) asks for the recall head, fruit swap does not; an
    explicit policy.recall_weight wins either way."""
    from df_robot.config import compose
    from df_robot.train import recall_lags, recall_weight

    assert recall_weight(compose(["task=return_apple"])) == 1.0
    assert recall_lags(compose(["task=return_apple"])) == (8,) and recall_lags(compose(["task=fruit_swap"])) == ()
    assert recall_weight(compose(["task=fruit_swap"])) == 0.0
    assert recall_weight(compose(["task=return_apple", "policy.recall_weight=0"])) == 0.0
    assert recall_weight(compose(["task=fruit_swap", "policy.recall_weight=0.5"])) == 0.5


def test_bf16_on_the_cpu_trains_as_well_as_fp32(tmp_path):
    """train.precision=bf16 runs stage 2 under bf16 autocast on the CPU (a different loss
    history, so it is really on) and learns the cue task as far as fp32 does."""
    data, *_ = cue_data(n=32, tokens=4, seed=3)
    runs = {p: train_on_tokens(tiny_cfg(tmp_path / p, "train.steps=150", "train.lr=2e-3", f"train.precision={p}"),
                               data, tmp_path / p, progress=False)["history"] for p in ("fp32", "bf16")}
    fp32, bf16 = (float(np.mean(runs[p][-20:])) for p in ("fp32", "bf16"))
    assert runs["fp32"] != runs["bf16"]
    assert bf16 < 0.5 * float(np.mean(runs["bf16"][:10])) and bf16 < 1.25 * fp32, (fp32, bf16)


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_takes_bf16_only_where_the_cpu_does_it_natively(monkeypatch, tmp_path, native):
    """On a CPU without AVX512-BF16 (an AVX2-only EPYC, 2026-12-03) an emulated bf16 step took 10x
    an fp32 one: auto must keep fp32 there, and stage 2's first line must say which case it is."""
    import df_robot.precision as precision_mod

    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: native)
    cpu = torch.device("cpu")
    auto, asked = tiny_cfg(tmp_path, "train.precision=auto"), tiny_cfg(tmp_path, "train.precision=bf16")
    assert precision_mod.use_bf16(auto, cpu) is native
    assert precision_mod.use_bf16(asked, cpu) and not precision_mod.use_bf16(tiny_cfg(tmp_path, "train.precision=fp32"), cpu)
    line = precision_mod.precision_line(auto, cpu)
    assert line.startswith("bf16 autocast (native") if native else line.startswith("fp32 (this CPU has no native bf16")
    assert ("emulates" in precision_mod.precision_line(asked, cpu)) is not native


def test_stage1_trains_in_bf16_where_asked_and_encodes_held_out_frames_as_deploy_does(tmp_path):
    """Stage 1 under bf16 autocast (train.precision, like stage 2): a different loss path that
    still learns; codes cached as float32; the held-out frames, which calibrate deploy's gate,
    encoded in fp32 as deploy encodes them."""
    from df_robot.policy.autoencoder import load_autoencoder
    from df_robot.policy.encode import as_float, load_frames
    from df_robot.stage1 import prepare_stage1
    from df_robot.store import EpisodeStore

    store = moving_square_store(tmp_path / "demo.zarr", episodes=5)
    runs = {}
    for p in ("fp32", "bf16"):
        cfg = tiny_cfg(tmp_path / p, f"data.path={store}", "data.val_episodes=1", "train.ae.steps=40",
                       "train.ae.batch_size=16", "policy.image_size=32", "policy.aug_views=2", f"train.precision={p}")
        (tmp_path / p).mkdir()
        runs[p] = prepare_stage1(cfg, tmp_path / p)
    losses = {p: runs[p][1].ae_losses["front"] for p in runs}
    assert losses["fp32"] != losses["bf16"]
    first, last = ({p: float(np.mean(losses[p][i])) for p in runs} for i in (slice(0, 5), slice(-5, None)))
    assert last["bf16"] < 0.7 * first["bf16"] and last["bf16"] < 1.1 * last["fp32"], (first, last)
    data, stage1, held_out = runs["bf16"]
    assert data.obs.dtype == torch.float32
    (held,) = stage1.held_out
    frames = load_frames(EpisodeStore(store), [held], "front", 32)[0]
    with torch.no_grad():
        fp32_codes = load_autoencoder(stage1, "front").encode(as_float(frames))
    assert torch.equal(held_out[0][0][:, :stage1.latent_dim], fp32_codes)


def test_a_checkpoint_for_another_task_is_refused(tmp_path):
    from df_robot.checkpoint import Stage1

    Checkpoint(task="stack_cubes", policy="df", config={}, stage1=Stage1(cameras=["front"], image_size=32),
               weights={}, normalizers={}).save(tmp_path / "c.pt")
    with pytest.raises(UserError, match="task 'stack_cubes', expected task 'fruit_swap'"):
        Checkpoint.load(tmp_path / "c.pt", task="fruit_swap")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="not a readable checkpoint"):
        Checkpoint.load(tmp_path / "junk.pt")
    save_atomic({"format": "df-robot-checkpoint", "version": 9}, tmp_path / "new.pt")
    with pytest.raises(UserError, match="checkpoint version 9, this df-robot reads"):
        Checkpoint.load(tmp_path / "new.pt")
    raw = torch.load(tmp_path / "c.pt", weights_only=False)
    raw["stage1"]["places"] = {"front": 6}  # what a since-removed option once saved
    save_atomic(raw, tmp_path / "removed_option.pt")
    with pytest.raises(UserError, match=r"removed_option.pt: stage-1 fields \['places'\] come from a df-robot option"):
        Checkpoint.load(tmp_path / "removed_option.pt")


@pytest.mark.parametrize("keypoints", [0, 4])
def test_train_from_a_store_end_to_end(tmp_path, keypoints):
    """Stage 1 and 2 from a real store; the checkpoint drives ImagePolicy and its world model
    (with the plain code, and with feature points in the latents, the object-places target and
    the shading flattened)."""
    store = random_image_store(tmp_path / "demo.zarr", failed=(1,))
    rng = np.random.default_rng(0)
    run = tmp_path / "run"
    result = train([f"data.path={store}", f"run_dir={run}", "train.steps=5", "train.ae.steps=3",
                    "train.ae.batch_size=8", "policy.image_size=32", "policy.hidden=32", "policy.aug_views=2",
                    "train.batch_size=2", f"policy.keypoints={keypoints}", f"train.ae.target_weight={0.01 if keypoints else 0}",
                    f"policy.flatten_shading={4 if keypoints else 0}"])
    ckpt = Checkpoint.load(result["checkpoint"], task="fruit_swap")
    assert ckpt.step == 5 and ckpt.stage1.episodes == [0, 2]  # the failed episode is left out
    assert ckpt.stage1.keypoints == keypoints and ckpt.stage1.latent_dim == 32
    assert (run / "config.yaml").exists() and any((run / "tensorboard").iterdir())
    policy = ImagePolicy(ckpt)
    assert (policy.autoencoders["front"].points is None) == (keypoints == 0)
    assert ckpt.stage1.flatten_shading == ({"front": 4.0, "wrist": 4.0} if keypoints else {})
    assert policy.autoencoders["wrist"].shading == (4.0 if keypoints else 0.0)
    img = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
    chunk = policy.act({"front": img, "wrist": img}, np.zeros(17))
    assert chunk.shape == (8, 10) and np.isfinite(chunk).all()
    frames = policy.imagine_next_frames()
    assert frames["front"].shape == (32, 32, 3) and frames["front"].dtype == np.uint8
    with pytest.raises(UserError, match="already holds a run"):
        train([f"data.path={store}", f"run_dir={run}"])
    with pytest.raises(UserError, match="train.ae.target='where': expected one of first_reach, places"):
        train([f"data.path={store}", f"run_dir={tmp_path / 'other'}", "train.ae.target=where"])
    assert not (tmp_path / "other" / "stage1.pt").exists()
    # a stage1.pt left in a run folder is reused only when this version and this task can use it
    cache = torch.load(run / "stage1.pt", weights_only=False)
    (tmp_path / "stale").mkdir()
    save_atomic({**cache, "stage1": {**cache["stage1"], "places": {}}}, tmp_path / "stale" / "stage1.pt")
    with pytest.raises(UserError, match=r"stale/stage1.pt: stage-1 fields \['places'\]"):
        train([f"data.path={store}", f"run_dir={tmp_path / 'stale'}"])
    (tmp_path / "one_camera").mkdir()
    save_atomic(cache, tmp_path / "one_camera" / "stage1.pt")
    with pytest.raises(UserError, match=r"one_camera/stage1.pt: a stage 1 of cameras \['front', 'wrist'\], task.cameras=\['front'\]"):
        train([f"data.path={store}", f"run_dir={tmp_path / 'one_camera'}", "task.cameras=[front]"])


def test_held_out_validation_falls_as_it_learns_and_keeps_the_best(tmp_path):
    """The held-out action error (the chunk sampled as at deploy, teacher-forced through the
    memory, against the demonstration) is logged, falls as training learns the cue task, and
    best.pt holds the step where it was lowest."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from policy_helpers import cue_episodes

    data, *_ = cue_data(n=64, tokens=5, seed=0)
    obs, acts, _ = cue_episodes(6, 5, seed=7)  # episodes it never trains on
    held = [(torch.from_numpy(o[:, 0]), torch.from_numpy(a)) for o, a in zip(obs, acts)]
    cfg = tiny_cfg(tmp_path, "train.steps=300", "train.val_every=50", "train.lr=2e-3", "policy.k_obs=0")
    out = train_on_tokens(cfg, data, tmp_path, held_out=held, progress=False)
    ea = EventAccumulator(str(tmp_path / "tensorboard"))
    ea.Reload()
    curve = [e.value for e in ea.Scalars("val/action_mse")]
    assert len(curve) == 6 and min(curve[-2:]) < 0.5 * curve[0], curve
    assert {"val/denoise_mse_k100", "val/denoise_mse_k900"} <= set(ea.Tags()["scalars"])
    best = Checkpoint.load(tmp_path / "checkpoints" / "best.pt")
    assert best.validation["action_mse"] == pytest.approx(min(curve), rel=1e-5)
    assert best.step == 50 * (1 + int(np.argmin(curve)))
    assert out["validation"]["action_mse"] == pytest.approx(curve[-1], rel=1e-5)


def test_a_small_store_trains_without_masked_views_and_the_checkpoint_says_so(tmp_path):
    """Masked views cost ~25 demos 2-8 points (docs/experiments.md 2026-12-06): below
    policy.obs_mask_min_episodes training episodes none are drawn; 0 keeps them at any size."""
    data, *_ = cue_data(n=16, tokens=4, seed=2)
    small = train_on_tokens(tiny_cfg(tmp_path / "small", "train.steps=5"), data, tmp_path / "small", progress=False)
    kept = train_on_tokens(tiny_cfg(tmp_path / "kept", "train.steps=5", "policy.obs_mask_min_episodes=0"), data,
                           tmp_path / "kept", progress=False)
    unmasked = train_on_tokens(tiny_cfg(tmp_path / "off", "train.steps=5", "policy.obs_mask_prob=0"), data,
                               tmp_path / "off", progress=False)
    assert Checkpoint.load(tmp_path / "small" / "checkpoints" / "latest.pt").config["policy"]["obs_mask_prob"] == 0
    assert Checkpoint.load(tmp_path / "kept" / "checkpoints" / "latest.pt").config["policy"]["obs_mask_prob"] == 0.2
    assert small["history"] == unmasked["history"] != kept["history"]
    # phase-shifted copies (the stack's default) are not more demonstrations: 64 demos, 64 * chunk sequences
    from df_robot.policy.tokens import build_token_data
    from policy_helpers import CHUNK, cue_episodes

    obs, acts, _ = cue_episodes(64, 4, seed=2)
    phased = build_token_data(obs, acts, CHUNK, phases=True)
    assert phased.mask.shape[0] == 64 * CHUNK >= 100 and phased.demos == 64
    train_on_tokens(tiny_cfg(tmp_path / "phased", "train.steps=5"), phased, tmp_path / "phased", progress=False)
    assert Checkpoint.load(tmp_path / "phased" / "checkpoints" / "latest.pt").config["policy"]["obs_mask_prob"] == 0
    with pytest.raises(UserError, match=r"policy.obs_mask_prob=1.5: expected a chance in \[0, 1\]"):
        train_on_tokens(tiny_cfg(tmp_path / "bad", "train.steps=5", "policy.obs_mask_prob=1.5"), data, tmp_path / "bad",
                        progress=False)
