"""Child process for the crash test: appends deterministic episodes to a store until killed."""

import sys

from df_robot.store import EpisodeWriter
from store_helpers import ACTION_DIM, CAMERAS, STATE_DIM, write_episode

path = sys.argv[1]
writer = EpisodeWriter(path, fps=10, cameras=CAMERAS, state_dim=STATE_DIM, action_dim=ACTION_DIM, queue_size=100_000)  # never drop: pace is not the point here
print("ready", flush=True)
e = writer.n_episodes
while True:
    write_episode(writer, e)
    e += 1
