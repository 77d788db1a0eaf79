"""How fast the FR3 really moves when our loop commands the speed limit: the franky backend
against franky-sim (the FR3 protocol over loopback), seen from the simulator's side.

Each run homes the arm, then for `--seconds` sends the safety filter's output for a target
0.6 m away at 10 Hz (so every command moves at the 0.5 m/s limit). It reports the arm's peak
speed over 0.1 s windows of the simulator's own clock (its physics), and how far the
simulator's clock fell behind real time. Three settings, alternated in one session:

- `host clock`: the streamer interpolated on the host's clock, franky's damping (before);
- `robot clock`: on the robot's clock, franky's damping;
- `robot clock, damping x2`: the backend's default now.

`--load N` runs N busy-looping processes beside it, as a busy CI machine would.

    python bench/franky_tracking.py --repeats 3 [--load 2]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from deploy.franka_franky import FrankyRobot  # noqa: E402
from df_robot.control.safety import SafetyFilter, SafetyLimits  # noqa: E402
from df_robot.protocols import EETarget  # noqa: E402
from franky_sim_logged import read_log, start, stop  # noqa: E402

HOST = "127.0.0.1"
SETTINGS = {"host clock": ("host", 1.0), "robot clock": ("robot", 1.0), "robot clock, damping x2": ("robot", 2.0)}


def one_run(robot: FrankyRobot, clock: str, damping_ratio: float, seconds: float, log: Path) -> dict:
    limits, period = robot.limits, robot.period
    robot.damping_ratio = damping_ratio  # the tracker is made anew at reset
    robot.reset()
    if clock == "host":  # the streamer as it was: interpolation on the host's clock
        robot._streamer.clock = time.monotonic
    s = robot.state()
    safety = SafetyFilter(limits, period)
    safety.reset(EETarget(s.ee_pos, s.ee_rot, 0.0))
    goal = EETarget(s.ee_pos + np.array([0.0, 0.6, 0.0]), s.ee_rot, 0.0)
    t0 = time.monotonic()
    while time.monotonic() < t0 + seconds:
        robot.command(safety(goal, now=robot.time()).target)
        robot.wait(period)
    t1 = time.monotonic()
    rows = [r for r in read_log(log) if t0 <= r["t"] <= t1]
    ee, sim_t, t = (np.array([r[k] for r in rows]) for k in ("ee", "sim_t", "t"))
    speed = np.linalg.norm(ee[10:] - ee[:-10], axis=1) / (sim_t[10:] - sim_t[:-10])
    return {"peak_speed": float(speed.max()), "sim_behind_s": float((t[-1] - t[0]) - (sim_t[-1] - sim_t[0])),
            "moved": float(np.linalg.norm(ee[-1] - ee[0]))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=1.5, help="commanding time per run (the box edge stops it)")
    ap.add_argument("--load", type=int, default=0, help="busy-looping processes beside the benchmark")
    args = ap.parse_args()
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.load)]
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "sim.jsonl"
        sim = start(log, HOST)
        robot = None
        try:  # one connection for all runs (franky-sim takes one client per process)
            robot = FrankyRobot(HOST, command_period=0.1, limits=SafetyLimits())
            runs = {name: [] for name in SETTINGS}
            for _ in range(args.repeats):
                for name, (clock, damping) in SETTINGS.items():
                    runs[name].append(one_run(robot, clock, damping, args.seconds, log))
        finally:
            if robot is not None:
                robot.close()
            stop(sim)
            for p in busy:
                p.kill()
    limit = SafetyLimits().max_speed
    out = {"date": date.today().isoformat(), "machine": f"{platform.machine()}, {platform.processor() or '?'}",
           "command": "python bench/franky_tracking.py " + " ".join(sys.argv[1:]), "speed_limit": limit,
           "settings": {}}
    for name, rs in runs.items():
        peaks = [r["peak_speed"] for r in rs]
        peak = statistics.median(peaks)
        out["settings"][name] = {"median_peak_speed": peak, "peak_over_limit": peak / limit,
                                 "peaks": [round(p, 3) for p in peaks],
                                 "median_sim_behind_s": statistics.median(r["sim_behind_s"] for r in rs),
                                 "median_moved_m": statistics.median(r["moved"] for r in rs)}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
