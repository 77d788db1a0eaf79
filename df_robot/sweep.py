"""`df-robot train` as Diffusion Policy and LeRobot users expect from Hydra: plain overrides
train once; `--cfg job` prints the composed config and trains nothing (`--resolve`: with the
interpolations filled in); `-m` (`--multirun`)
with comma-separated values trains every combination, each into its own run folder:

    df-robot train task=fruit_swap --cfg job
    df-robot train -m seed=0,1,2 policy=df,diffusion_policy train.steps=2000
"""

from __future__ import annotations

import itertools
from datetime import datetime
from pathlib import Path

from omegaconf import OmegaConf

from df_robot.errors import UserError


def expand(overrides: list[str]) -> list[list[str]]:
    """Every combination of the sweep overrides (key=a,b,c), the others kept in each."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as exc:
        raise UserError(f"config: {str(exc).splitlines()[0]}") from None
    choices = [[f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()] if o.is_sweep_override()
               else [o.input_line] for o in parsed]
    return [list(c) for c in itertools.product(*choices)]


def train_command(argv: list[str]) -> int:
    from df_robot.config import compose
    from df_robot.data import task_for_store
    from df_robot.train import report, train_config

    args = list(argv)
    multirun, resolve = any(a in ("-m", "--multirun") for a in args), "--resolve" in args
    args = [a for a in args if a not in ("-m", "--multirun", "--resolve")]
    if "--cfg" in args:
        i = args.index("--cfg")
        what = args[i + 1] if i + 1 < len(args) else ""
        if what != "job":
            raise UserError(f"--cfg {what!r}: only --cfg job (print the resolved config) is supported")
        del args[i:i + 2]
        for job in expand(args) if multirun else [args]:
            print(OmegaConf.to_yaml(task_for_store(compose(job), job), resolve=resolve))
        return 0
    if not multirun:
        report(train_config(task_for_store(compose(args), args)))
        return 0
    jobs = expand(args)
    configs = [task_for_store(compose(job), job) for job in jobs]  # all checked before the first one trains
    root = Path("runs") / "multirun" / datetime.now().strftime("%Y%m%d-%H%M%S")
    results = []
    for n, (job, cfg) in enumerate(zip(jobs, configs)):
        sweep = [o for o in job if o not in args]
        print(f"== job {n + 1}/{len(jobs)}: {' '.join(sweep)}")
        cfg.run_dir = str(Path(cfg.run_dir or root) / f"{n}_{'_'.join(sweep)}".replace("/", "-"))
        result = train_config(cfg)
        report(result)
        results.append((sweep, result["checkpoint"]))
    for sweep, checkpoint in results:
        print(f"{' '.join(sweep):40s} {checkpoint}")
    return 0
