"""franky-sim's own server (what `franky-sim -s mujoco --hostname HOST` runs), plus a log of
the simulated arm as the simulator sees it: every 10 ms one JSON line with the time (the
host's monotonic clock, which every process shares), the simulator's own clock (its physics
time, which falls behind the host's on a busy machine), the end-effector position and the
hand's width. The tests read it to check, from the
simulator's side, what our deploy made the arm do; `start`, `read_log` and `stop` are how
the tests and bench/franky_tracking.py run it.

    python tests/franky_sim_logged.py --hostname 127.0.0.1 --log sim.jsonl
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def read_log(path: Path) -> list[dict]:
    lines = path.read_text().splitlines()
    return [json.loads(x) for x in lines[:-1]]  # the last line may be half written


def start(log: Path, hostname: str = "127.0.0.1", timeout: float = 90.0) -> subprocess.Popen:
    """Run this script in its own process; return once it answers on libfranka's port and logs."""
    proc = subprocess.Popen([sys.executable, __file__, "--hostname", hostname, "--log", str(log)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"franky-sim exited with {proc.returncode}: {proc.stdout.read()[-2000:]}")
        try:
            with socket.create_connection((hostname, 1337), timeout=1):
                pass
            if log.exists() and len(read_log(log)) > 2:
                return proc
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop(proc)
            raise RuntimeError(f"franky-sim did not answer within {timeout:.0f} s")
        time.sleep(0.1)


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main() -> None:
    import franky_sim
    from franky_sim.mujoco_simulator import MujocoSimulator

    ap = argparse.ArgumentParser()
    ap.add_argument("--hostname", default="127.0.0.1")
    ap.add_argument("--log", required=True)
    args = ap.parse_args()
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    with MujocoSimulator(enable_visualization=False) as sim:
        robot = sim.add_robot()
        with franky_sim.SimulationServer(sim, hostname_candidates=[args.hostname]) as server, \
                open(args.log, "w", buffering=1) as log:
            tick = 0
            while not stop:
                server.run_once(realtime=True)
                if tick % 10 == 0:
                    T = robot.state.O_T_EE  # column-major 4x4
                    log.write(json.dumps({"t": round(time.monotonic(), 4), "sim_t": round(tick * 0.001, 3),
                                          "ee": [T[12], T[13], T[14]],
                                          "width": robot.hand_width}) + "\n")
                tick += 1


if __name__ == "__main__":
    main()
