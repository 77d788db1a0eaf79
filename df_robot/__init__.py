"""df-robot core: the episode store, the policy, training and the `df-robot` CLI.

Imports run one way: df_robot <- sim, deploy <- teleop. Nothing here imports MuJoCo,
pyrealsense2 or panda_py, so a training machine needs none of them.
"""

__version__ = "0.1.0"
