"""The fruit-swap study (experiments/fruit_swap_study.py): shared stage 1, parallel trainings,
which cells run, what they cost; and the report tool's episode-by-episode comparison."""

import json
import sys
from pathlib import Path

import pytest
import torch

from store_helpers import random_image_store

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "experiments"))

TINY = ["train.ae.batch_size=8", "policy.image_size=32", "policy.hidden=32", "policy.aug_views=2",
        "train.batch_size=2"]
MODE = dict(demos=3, ae_steps=3, steps=4)


def fake_checkpoint(path: Path) -> Path:
    """A checkpoint that deploys at k_obs 50, with a calibrated gate (the study reads both)."""
    from df_robot.checkpoint import Checkpoint, Gate, Stage1

    Checkpoint(task="fruit_swap", policy="df", config={"policy": {"k_obs": 50}},
               stage1=Stage1(cameras=["front", "wrist"], image_size=32), weights={}, normalizers={},
               gate=Gate(thresholds=[0.1, 0.2], cameras=["front", "wrist"], quantile=99, margin=1, episodes=[3],
                         tokens=80)).save(path)
    return path


def test_parallel_trainings_share_one_stage_1(tmp_path):
    from fruit_swap_study import train_methods

    store = random_image_store(tmp_path / "demos.zarr")
    methods = ["df", "diffusion_policy", "teacher_forcing"]
    infos = train_methods(methods, tmp_path, store, MODE, TINY, parallel=2)
    assert list(infos) == methods and all(i["steps"] == 4 and i["method"] == m for m, i in infos.items())
    stage1 = {m: torch.load(tmp_path / "runs" / m / "stage1.pt", weights_only=False) for m in methods}
    first = stage1["df"]["stage1"]["autoencoders"]["front"]
    for m in methods[1:]:  # the same autoencoders, so the same latents for every method
        assert all(torch.equal(first[k], stage1[m]["stage1"]["autoencoders"]["front"][k]) for k in first)
        ckpt = torch.load(tmp_path / "runs" / m / "checkpoints" / "latest.pt", weights_only=False)
        assert ckpt["step"] == 4 and ckpt["policy"] == m
    for m in methods:  # each child trained with one thread and wrote its own log
        assert "train.threads=1" in infos[m]["overrides"]
        assert (tmp_path / "runs" / m / "train.log").stat().st_size > 0
    walls = json.loads((tmp_path / "walls.json").read_text())
    assert walls["trainings_s"] > 0
    again = train_methods(methods, tmp_path, store, MODE, TINY, parallel=2)  # resumed study: nothing retrained
    assert again == json.loads(json.dumps(infos))
    assert json.loads((tmp_path / "walls.json").read_text()) == walls  # and no time added


def test_a_study_run_in_parts_reports_every_stage_cost(tmp_path):
    """Recording and trainings add up in walls.json across runs; each evaluation cell and the
    keeps its own wall time; the table reports the sum by stage, the ungated ablation's extra
    cells apart."""
    import fruit_swap_study as fruit_swap

    fruit_swap.add_wall(tmp_path, "record_s", 60.0)
    fruit_swap.add_wall(tmp_path, "trainings_s", 400.0)
    fruit_swap.add_wall(tmp_path, "trainings_s", 200.0, base=400.0)  # a resumed run: 200 s more
    for cell, wall, workers in (("df/clean", 120.0, 2), ("diffusion_policy/clean", 480.0, 1),
                                ("df/occlusion", 90.0, 2), ("df/pixel_noise", 150.0, 2)):  # the last two: --ablation
        (tmp_path / "eval" / cell).mkdir(parents=True)
        (tmp_path / "eval" / cell / "results.json").write_text(json.dumps({"wall_s": wall, "workers": workers}))
    (tmp_path / "eval" / "df_gated").mkdir()
    costs = fruit_swap.stage_costs(tmp_path)
    assert costs == {"record": 1.0, "trainings": 10.0, "evaluation": 10.0,
                     "total": 21.0, "cells": 2, "cells_one_worker": 1, "ablation": 4.0, "ablation_cells": 2}
    study = {"provenance": {"date": "d", "machine": "m", "commit": "c", "dirty": False, "torch": "t"},
             "conditions": ["clean"], "mode": "full", "demos": 100, "episodes": 200, "eval_seed": 100000,
             "command": "python bench/fruit_swap.py", "methods": {}, "costs_min": costs}
    assert ("recording the demos 1 min, stage 1, the trainings and the gate 10 min, "
            "evaluation (2 cells, 1 of them with one worker beside a training) 10 min; **0.3 h** in all "
            "(and the ablation's 2 cells, `--ablation`: 4 min more).") in fruit_swap.table(study)


def test_a_failed_training_names_the_method_and_its_log(tmp_path):
    from fruit_swap_study import train_methods

    store = random_image_store(tmp_path / "demos.zarr")
    with pytest.raises(SystemExit, match=r"training diffusion forcing failed \(exit code 1\): .*train.nosuchkey.*"
                                         r"\(see .*df/train.log\)"):
        train_methods(["df", "teacher_forcing"], tmp_path, store, MODE, [*TINY, "train.nosuchkey=1"], parallel=2)
    assert not (tmp_path / "runs" / "teacher_forcing").exists()  # nothing started after the failure


def test_the_k_obs_sweep_reuses_the_cell_the_checkpoint_deploys_at(tmp_path, monkeypatch):
    import fruit_swap_study as fruit_swap

    ckpt = fake_checkpoint(tmp_path / "latest.pt")
    own = {"condition": fruit_swap.SWEEP_CONDITION, "episodes": 6, "successes": 5, "success_rate": 5 / 6,
           "ci95": [0.4, 0.97], "k_obs": -1, "seeds": [100000, 100005]}
    row = {"training": {"checkpoint": str(ckpt)}, "eval": {fruit_swap.SWEEP_CONDITION: own}}
    ran = []

    def fake_eval(checkpoint, condition, episodes, out, seed, k_obs=-1, gated=False, workers=0):
        ran.append(k_obs)
        assert workers == 1  # --eval-workers reaches every cell
        return {**own, "successes": 1, "k_obs": k_obs}

    monkeypatch.setattr(fruit_swap, "evaluate_condition", fake_eval)
    points = fruit_swap.sweep_k_obs(row, [0, 50, 200], tmp_path, 6, 100000, workers=1)
    assert ran == [0, 200]  # 50 is the df row's own cell
    assert [p["k_obs"] for p in points] == [0, 50, 200]
    assert points[1]["successes"] == 5 and points[0]["successes"] == 1
    ran.clear()  # a different episode count is a different cell: it runs
    fruit_swap.sweep_k_obs(row, [50], tmp_path, 8, 100000, workers=1)
    assert ran == [50]


def test_a_cell_runs_with_the_workers_asked_for_and_keeps_them(tmp_path, monkeypatch):
    """--eval-workers 1 lets a cell run beside a training; its results say so, since its wall
    time is then about twice a two-worker cell's."""
    import fruit_swap_study as fruit_swap
    import sim.evaluate

    seen = []

    def fake_evaluate(settings):
        seen.append(settings.workers)
        Path(settings.out).mkdir(parents=True)
        return {"episodes": 4, "successes": 1, "success_rate": 0.25, "ci95": [0.05, 0.7]}

    monkeypatch.setattr(sim.evaluate, "evaluate", fake_evaluate)
    r = fruit_swap.evaluate_condition("ckpt.pt", "clean", 4, tmp_path / "cell", 100000, workers=1)
    assert seen == [1] and r["workers"] == 1
    assert json.loads((tmp_path / "cell" / "results.json").read_text())["workers"] == 1
    again = fruit_swap.evaluate_condition("ckpt.pt", "clean", 4, tmp_path / "cell", 100000)  # read back, not rerun
    assert seen == [1] and again["successes"] == 1


def _fake_study(tmp_path, monkeypatch, *flags):
    """main() with the trainings and cells faked: which cells would the study run?"""
    import fruit_swap_study as fruit_swap

    tmp_path.mkdir()
    ckpt = fake_checkpoint(tmp_path / "latest.pt")
    infos = {m: {"method": m, "checkpoint": str(ckpt), "steps": 4, "stage1_s": 300.0 if m == "df" else 2.0,
                 "stage2_s": 60.0, "final_loss": 0.1} for m in fruit_swap.DEFAULT_METHODS}
    cells = []

    def fake_eval(checkpoint, condition, episodes, out, seed, k_obs=-1, gated=False, workers=0):
        cells.append((Path(out).relative_to(tmp_path / "eval").as_posix(), gated))
        return {"condition": condition, "episodes": episodes, "successes": 1, "success_rate": 1 / episodes,
                "ci95": [0.0, 0.5], "k_obs": k_obs, "seeds": [seed, seed + episodes - 1], "wall_s": 1.0, "workers": 2}

    monkeypatch.setattr(fruit_swap, "record_demos", lambda store, demos, out: {"store": str(store), "demos": demos})
    monkeypatch.setattr(fruit_swap, "train_methods", lambda methods, *a: {m: infos[m] for m in methods})
    monkeypatch.setattr(fruit_swap, "evaluate_condition", fake_eval)
    assert fruit_swap.main(["--quick", "--out", str(tmp_path), *flags]) == 0
    return cells, json.loads((tmp_path / "study.json").read_text())


def test_the_full_design_runs_diffusion_forcing_without_the_gate_only_where_it_tells_something(tmp_path, monkeypatch):
    """The gated row stands for diffusion forcing under every condition; without the gate it
    runs clean and under the sweep's condition (3 cells fewer: the 3-hour budget), and every
    condition with --ablation or when there is no gated row."""
    import fruit_swap_study as fruit_swap

    every = list(fruit_swap.CONDITIONS)
    cells, study = _fake_study(tmp_path / "lean", monkeypatch)
    ungated = [c.split("/", 1)[1] for c, gated in cells if c.startswith("df/")]
    assert ungated == ["clean", "distractor+occlusion"]
    for m in ("teacher_forcing", "diffusion_policy", "df_gated"):
        assert [c.split("/", 1)[1] for c, _ in cells if c.startswith(m + "/")] == every
    assert all(gated == c.startswith("df_gated/") for c, gated in cells)
    assert sorted(c for c, _ in cells if c.startswith("df_k_obs/")) == ["df_k_obs/0", "df_k_obs/200"]
    assert len(cells) == 3 * 5 + 2 + 2
    assert study["stage1_s"] == 300.0  # the training that built stage 1, not the last to copy it
    table = (tmp_path / "lean" / "table.md").read_text()
    assert "| diffusion forcing (`policy=df`) | 4 steps, 1 min (+ shared stage 1 5 min)" in table

    cells, _ = _fake_study(tmp_path / "ablation", monkeypatch, "--ablation")
    assert [c.split("/", 1)[1] for c, _ in cells if c.startswith("df/")] == every
    cells, _ = _fake_study(tmp_path / "no_gate", monkeypatch, "--no-gate")
    assert [c.split("/", 1)[1] for c, _ in cells if c.startswith("df/")] == every
    assert not any(c.startswith("df_gated/") for c, _ in cells)


def test_two_evaluations_are_compared_episode_by_episode(tmp_path, capsys):
    """experiments/report.py compare: the reproducibility check BENCHMARKS.md quotes; one episode
    that ends differently is named and fails it."""
    import report

    episodes = [{"episode": i, "seed": 100000 + i, "success": i % 2 == 0, "seconds": 30.0 + i, "moves": ["apple A->C"],
                 "outcome": "swapped", "apple_slot": "B", "orange_slot": "A"} for i in range(4)]
    a = {"successes": 2, "results": episodes}
    b = {"successes": 2, "wall_s": 120.0, "results": [dict(e) for e in episodes]}
    paths = [tmp_path / "a.json", tmp_path / "b.json"]
    for p, d in zip(paths, (a, b)):
        p.write_text(json.dumps(d))
    assert report.main(["compare", *map(str, paths)]) == 0
    assert "4/4 episodes the same" in capsys.readouterr().out
    b["results"][2]["seconds"] = 60.0
    paths[1].write_text(json.dumps(b))
    assert report.main(["compare", *map(str, paths)]) == 1
    assert "3/4 episodes the same" in (out := capsys.readouterr().out) and "differ: [2]" in out


def test_placement_report_bins_success_by_how_far_the_fruit_lay(tmp_path, capsys):
    """experiments/report.py placement: episodes under the placement shift, binned by the farther
    fruit's start distance off its mark (redrawn from the seed); here only the far ones succeed."""
    import numpy as np
    import report

    from sim.slot_task import start_offsets
    from sim.variation import SHIFTS

    seeds = range(700000, 700040)
    far = {s: max(np.linalg.norm(o) for o in start_offsets(s, SHIFTS["placement"]).values()) for s in seeds}
    results = [{"seed": s, "success": bool(far[s] >= 0.03)} for s in seeds]
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"settings": {"shift": "placement"}, "results": results}))
    assert report.main(["placement", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    near = [ln for ln in lines if ln.strip().startswith(("0-2 cm", "2-3 cm"))]
    beyond = [ln for ln in lines if ln.strip().startswith(("3-4 cm", "4-10 cm"))]
    assert near and beyond and all(ln.endswith(" 0%") for ln in near) and all(ln.endswith("100%") for ln in beyond)


def test_pool_sums_one_cell_over_trainings_and_refuses_other_episodes(tmp_path, capsys):
    """experiments/report.py pool: a recipe judged over several trainings of one cell; scores of
    other episodes cannot be pooled with them."""
    import report

    def cell(name, wins, seed0=700000):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"results": [{"seed": seed0 + i, "success": i < wins} for i in range(10)]}))
        return str(path)

    assert report.main(["pool", cell("a", 9), cell("b", 6), cell("c", 9)]) == 0
    out = capsys.readouterr().out
    assert "3 trainings, 10 episodes each: 90% / 60% / 90%" in out
    assert "pooled 24/30 = 80.0%" in out and "spread 30%" in out
    with pytest.raises(SystemExit, match="other episodes"):
        report.pool([cell("a", 9), cell("dev", 9, seed0=200000)])


def test_report_names_a_missing_or_corrupt_results_file(tmp_path):
    """A mistyped path or a half-written results.json ends as one line naming the file, not a traceback."""
    import report

    with pytest.raises(SystemExit, match=r"eval/results.json: no such file"):
        report.main(["outcomes", str(tmp_path / "eval" / "results.json")])
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "results.json").write_text('{"results": [')
    with pytest.raises(SystemExit, match=r"run/results.json: not a readable results.json"):
        report.main(["layouts", str(tmp_path / "run")])
