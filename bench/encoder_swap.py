"""Which stage do few demos bind? Gives a few-demo run the encoders (and their latents) of a
run trained on many demos of the same store, so stage 2 trains on the few demos' episodes over
the better encoders. If that scores no better than the few demos' own encoders, stage 2 is
what the demos bind.

    python bench/encoder_swap.py --encoders RUN200/stage1.pt --episodes RUN25/stage1.pt --out SWAP
    df-robot train task=fruit_swap data.path=STORE data.max_episodes=25 run_dir=SWAP   # stage 1 reused
    df-robot eval task=fruit_swap checkpoint=SWAP/checkpoints/latest.pt episodes=100 seed=200000

Keeps the episodes both runs trained on (the many-demo run's latents have none for the
episodes it held out) and the many-demo run's held-out demos (validation and the gate).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from df_robot.checkpoint import save_atomic  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--encoders", required=True, help="stage1.pt of the run whose encoders and latents are used")
    ap.add_argument("--episodes", required=True, help="stage1.pt of the run whose training episodes are kept")
    ap.add_argument("--out", required=True, help="run folder that gets the new stage1.pt")
    args = ap.parse_args()
    big = torch.load(args.encoders, map_location="cpu", weights_only=False)
    few = torch.load(args.episodes, map_location="cpu", weights_only=False)
    wanted = set(few["stage1"]["episodes"])
    keep = [i for i, e in enumerate(big["stage1"]["episodes"]) if e in wanted]
    if not keep:
        sys.exit(f"{args.encoders} trained on none of the episodes of {args.episodes}")
    big["per_obs"] = [big["per_obs"][i] for i in keep]
    big["per_act"] = [big["per_act"][i] for i in keep]
    big["stage1"]["episodes"] = [big["stage1"]["episodes"][i] for i in keep]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save_atomic(big, out / "stage1.pt")
    print(f"{out / 'stage1.pt'}: {len(keep)} of {len(wanted)} episodes ({sorted(wanted - set(big['stage1']['episodes']))} "
          f"held out by the encoders' run), {len(big['held_out'])} held out")


if __name__ == "__main__":
    main()
