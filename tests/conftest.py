import sys
from pathlib import Path

import sim  # noqa: F401  chooses MuJoCo's offscreen GL backend before any test imports mujoco

sys.path.insert(0, str(Path(__file__).parent))  # test helpers (store_helpers)
