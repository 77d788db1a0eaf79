"""The MuJoCo twin as a df-robot robot plugin (entry point `sim` in pyproject.toml): the deploy
loop on the twin, and seeded evaluations (`df-robot eval`)."""

from __future__ import annotations


class SimPlugin:
    description = "the MuJoCo twin of the Franka (the fruit-swap scene), headless"

    def add_arguments(self, group) -> None:
        group.add_argument("--seed", type=int, default=100000, help="first episode's seed")
        from sim.variation import SHIFTS

        group.add_argument("--shift", default="", help="a named rig shift: " + ", ".join(SHIFTS))

    def deploy(self, args) -> int:
        """`df-robot deploy --robot sim`: the deploy loop on the twin, episode by episode, in this process."""
        from rich.console import Console

        from df_robot.checkpoint import Checkpoint, newest_checkpoint
        from df_robot.control.safety import SafetyLimits
        from df_robot.control.start import header, options_from_args
        from df_robot.stats import wilson_interval
        from sim.evaluate import EvalRunner, EvalSettings

        console = Console(emoji=False, highlight=False, soft_wrap=True)
        options = options_from_args(args)
        path = args.checkpoint or newest_checkpoint(args.task)
        Checkpoint.load(path, task=args.task)  # a checkpoint of another task fails here, in one line
        settings = EvalSettings(checkpoint=path, episodes=args.episodes,
                                seed=args.seed, workers=1, steps=options.steps or 0,
                                k_obs=-1 if options.k_obs is None else options.k_obs,
                                surprise_threshold=options.surprise, surprise_k_obs=options.surprise_level,
                                align=options.align, shift=args.shift,
                                temperature=-1.0 if options.temperature is None else options.temperature,
                                rate=args.rate or 0.0, max_seconds=args.max_seconds or 0.0, videos=0)
        runner = EvalRunner(settings)
        for line in header(path, runner.ckpt, runner.policy, options, SafetyLimits()):
            console.print(line)
        ok = 0
        try:
            for i in range(args.episodes):
                r = runner.run(i)
                ok += r["success"]
                console.print(f"episode {i + 1}/{args.episodes} seed {r['seed']} {r['layout']}: "
                              f"{'success' if r['success'] else 'failure'} ({r['stopped']}, {r['seconds']:.1f} s, "
                              f"policy {r['infer_ms_median']:.0f} ms"
                              + (f", surprise gate masked {r['views_masked']} of {r['views_gated']} views"
                                 if "views_masked" in r else "") + ")")
        finally:
            runner.close()
        lo, hi = wilson_interval(ok, args.episodes)
        console.print(f"success rate {ok}/{args.episodes} = {ok / args.episodes:.0%} (95% CI {lo:.0%}-{hi:.0%})")
        return 0

    def evaluate(self, cfg, checkpoint: str, out: str) -> int:
        """`df-robot eval`: seeded episodes in parallel, results.json, videos, plots."""
        from rich.console import Console

        from sim.disturbances import DisturbanceConfig
        from sim.evaluate import EvalSettings, evaluate, sweep_k_obs
        from sim.variation import shift_named

        from sim.tasks import task_class

        console = Console(emoji=False)
        shift_named(cfg.shift)  # an unknown shift or task fails here, in one line, before any worker starts
        task_class(cfg.task.name)
        surprise = None if cfg.surprise_threshold is None else list(cfg.surprise_threshold)
        settings = EvalSettings(checkpoint=checkpoint, episodes=cfg.episodes, seed=cfg.seed, workers=cfg.workers,
                                steps=cfg.steps, k_obs=cfg.k_obs, lookahead=cfg.lookahead, samples=cfg.samples,
                                temperature=cfg.temperature, exact_state=cfg.exact_state, surprise_threshold=surprise,
                                surprise_k_obs=cfg.surprise_k_obs,
                                align=cfg.align, rate=cfg.rate or 0.0, max_seconds=cfg.max_seconds,
                                videos=cfg.videos, out=out, shift=cfg.shift, disturb=DisturbanceConfig(**cfg.disturb))
        if cfg.sweep_k_obs:
            for point in sweep_k_obs(settings, list(cfg.sweep_k_obs))["points"]:
                lo, hi = point["ci95"]
                console.print(f"k_obs {point['k_obs']:4d}: success {point['successes']}/{point['episodes']} "
                              f"(95% CI {lo:.0%}-{hi:.0%})")
            console.print(f"sweep.json and sweep.png in {out}")
            return 0
        summary = evaluate(settings)
        lo, hi = summary["ci95"]
        masked = (f"; the surprise gate masked {summary['views_masked_share']:.0%} of views"
                  if "views_masked_share" in summary else "")
        console.print(f"success {summary['successes']}/{summary['episodes']} = {summary['success_rate']:.0%} "
                      f"(95% CI {lo:.0%}-{hi:.0%}){masked}; results, videos and plot in {out}")
        return 0


plugin = SimPlugin()
