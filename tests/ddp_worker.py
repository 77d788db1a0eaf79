"""Run under torchrun: trains on the synthetic cue data and writes rank 0's loss history.

Each rank says on stderr how far it got, so a crash shows whether training or the teardown died."""

import json
import sys
from pathlib import Path

from df_robot.train import shutdown_distributed, train_on_tokens
from policy_helpers import cue_data, tiny_cfg

run_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
data, *_ = cue_data(n=16, tokens=4, seed=5)
cfg = tiny_cfg(run_dir, "train.steps=15", "train.batch_size=8", "train.precision=fp32")  # as test_training's
result = train_on_tokens(cfg, data, run_dir, progress=False)
if result["rank"] == 0:
    out.write_text(json.dumps(result["history"]))
print(f"rank {result['rank']}: trained", file=sys.stderr, flush=True)
shutdown_distributed()
print(f"rank {result['rank']}: shut down", file=sys.stderr, flush=True)
