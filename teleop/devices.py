"""Teleoperation devices: a 3Dconnexion SpaceMouse, the keyboard, and scripted programs of
both, behind one small interface. Each control tick a device gives a twist in [-1, 1]^6
(vx vy vz wx wy wz, robot base frame after the axis mapping) and the buttons pressed since
the last tick, as named events:

    gripper   toggle the hand              episode   start, or stop and keep
    discard   stop and throw the episode   success / failure   mark the episode's outcome
    home      home the arm (between episodes)        quit      end the session

SpaceMouse: left button = gripper, right button = episode, right button held 1 s = discard;
the keyboard (always on beside it in a terminal) has every event.
"""

from __future__ import annotations

import queue
import struct
import sys
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from df_robot.errors import UserError



@dataclass
class DeviceInput:
    twist: np.ndarray = field(default_factory=lambda: np.zeros(6))
    events: frozenset = frozenset()


@dataclass
class TwistMapping:
    """How raw device axes become a twist; load your rig's from YAML with --device-config."""
    deadzone: float = 0.1                 # fraction of full scale ignored around zero
    full_scale: float = 350.0             # raw SpaceMouse reading at full deflection
    axes: list = field(default_factory=lambda: [1, 0, 2, 4, 3, 5])   # device axis feeding each twist axis
    signs: list = field(default_factory=lambda: [-1, -1, -1, -1, -1, -1])
    max_speed: float = 0.15               # m/s at full deflection
    max_rot_speed: float = 0.6            # rad/s at full deflection
    discard_hold_s: float = 1.0           # right button held this long: discard

    def apply(self, raw: np.ndarray) -> np.ndarray:
        x = np.clip(np.asarray(raw, float) / self.full_scale, -1, 1)
        x = np.where(np.abs(x) < self.deadzone, 0.0, (np.abs(x) - self.deadzone) / (1 - self.deadzone) * np.sign(x))
        return x[self.axes] * np.asarray(self.signs, float)


def load_mapping(path: str | None) -> TwistMapping:
    if not path:
        return TwistMapping()
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        merged = OmegaConf.merge(OmegaConf.structured(TwistMapping), OmegaConf.load(path))
        mapping = TwistMapping(**OmegaConf.to_container(merged))
    except FileNotFoundError:
        raise UserError(f"--device-config {path}: no such file") from None
    except OmegaConfBaseException as exc:
        raise UserError(f"--device-config {path}: {str(exc).splitlines()[0]} "
                        f"(known keys: {', '.join(TwistMapping.__dataclass_fields__)})") from None
    if sorted(mapping.axes) != list(range(6)) or len(mapping.signs) != 6:
        raise UserError(f"--device-config {path}: axes must be a permutation of 0..5 and signs six values, "
                        f"got axes={mapping.axes} signs={mapping.signs}")
    return mapping


# -- SpaceMouse --------------------------------------------------------------------------------

SPACEMOUSE_VENDORS = {0x046D: "Logitech/3Dconnexion", 0x256F: "3Dconnexion"}


class SpaceMouseState:
    """Parses the SpaceMouse's HID reports: id 1 translation (and on newer models rotation
    too), id 2 rotation, id 3 the buttons' bitmask; axes are little-endian int16."""

    def __init__(self):
        self.axes = np.zeros(6)
        self.buttons = 0

    def feed(self, report: bytes) -> None:
        if not report:
            return
        rid = report[0]
        if rid == 1 and len(report) >= 7:
            self.axes[0:3] = struct.unpack("<3h", bytes(report[1:7]))
            if len(report) >= 13:
                self.axes[3:6] = struct.unpack("<3h", bytes(report[7:13]))
        elif rid == 2 and len(report) >= 7:
            self.axes[3:6] = struct.unpack("<3h", bytes(report[1:7]))
        elif rid == 3 and len(report) >= 2:
            self.buttons = int.from_bytes(bytes(report[1:]), "little")


def spacemouse_reports(twist_raw=(0, 0, 0, 0, 0, 0), buttons: int = 0) -> list[bytes]:
    """The reports a SpaceMouse sends for this deflection and button state (for scripted use)."""
    t = [int(v) for v in twist_raw]
    return [bytes([1]) + struct.pack("<3h", *t[:3]), bytes([2]) + struct.pack("<3h", *t[3:]),
            bytes([3, buttons & 0xFF, buttons >> 8])]


class SpaceMouse:
    """A SpaceMouse through hidapi; `read_report` stands in for the device (scripted use)."""

    def __init__(self, mapping: TwistMapping | None = None, read_report=None, clock=time.monotonic):
        self.mapping, self.clock = mapping or TwistMapping(), clock
        self.state = SpaceMouseState()
        self._lock = threading.Lock()
        self._pressed_at: float | None = None
        self._prev_buttons = 0
        self._pending: set[str] = set()
        self._hid = None
        if read_report is None:
            self._hid = open_spacemouse()
            read_report = lambda: bytes(self._hid.read(16, 50))  # noqa: E731  (50 ms timeout)
        self._read = read_report
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True) if self._hid is not None else None
        if self._thread:
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            report = self._read()
            with self._lock:
                self.state.feed(report)
                self._edges()

    def _edges(self) -> None:
        b, prev = self.state.buttons, self._prev_buttons
        if b & 1 and not prev & 1:
            self._pending.add("gripper")
        if b & 2 and not prev & 2:
            self._pressed_at = self.clock()
        if prev & 2 and not b & 2 and self._pressed_at is not None:
            held = self.clock() - self._pressed_at
            self._pending.add("discard" if held >= self.mapping.discard_hold_s else "episode")
            self._pressed_at = None
        self._prev_buttons = b

    def poll(self) -> DeviceInput:
        if self._thread is None:  # scripted: one tick's reports now
            for report in self._read():
                self.state.feed(report)
                self._edges()
        with self._lock:
            events, self._pending = frozenset(self._pending), set()
            return DeviceInput(self.mapping.apply(self.state.axes), events)

    def close(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=1)
        if self._hid is not None:
            self._hid.close()


def open_spacemouse():
    try:
        import hid
    except ImportError:
        raise UserError("--device spacemouse needs hidapi (a dependency of df-robot: rerun scripts/setup.sh)") from None
    found = hid.enumerate()
    mice = [d for d in found if d["vendor_id"] in SPACEMOUSE_VENDORS
            and ("space" in (d.get("product_string") or "").lower() or d["vendor_id"] == 0x256F)]
    if not mice:
        seen = sorted({f"{d['vendor_id']:04x}:{d['product_id']:04x} {d.get('product_string') or '?'}" for d in found})
        raise UserError("no SpaceMouse found; HID devices present: " + (", ".join(seen) or "none")
                        + " (plugged in? udev rule for /dev/hidraw*: see the README)")
    dev = hid.device()
    try:
        dev.open_path(mice[0]["path"])
    except OSError as exc:
        raise UserError(f"SpaceMouse {mice[0].get('product_string')}: cannot open {mice[0]['path']!r} ({exc}); "
                        "add the udev rule from the README, then replug it") from None
    return dev


# -- keyboard ----------------------------------------------------------------------------------

KEY_HELP = """\
  w/s  +x/-x (away from / toward the robot)    a/d  +y/-y (left / right)    r/f  up/down
  q/e  yaw left/right     space  gripper       Enter  start, or stop and keep    x  stop and discard
  g/b  mark success/failure    h  home the arm (between episodes)    Esc  quit"""
KEY_TWIST = {"w": (0, 1), "s": (0, -1), "a": (1, 1), "d": (1, -1), "r": (2, 1), "f": (2, -1), "q": (5, 1), "e": (5, -1)}
KEY_EVENT = {" ": "gripper", "\n": "episode", "\r": "episode", "x": "discard", "g": "success", "b": "failure",
             "h": "home", "\x1b": "quit"}


class Keyboard:
    """Keys from a queue (a terminal thread in use, a list in tests): each movement key is
    one tick of full-speed twist along its axis; holding a key repeats it."""

    def __init__(self, keys: "queue.Queue[str]"):
        self.keys = keys

    def poll(self) -> DeviceInput:
        twist, events = np.zeros(6), set()
        while True:
            try:
                key = self.keys.get_nowait()
            except queue.Empty:
                break
            if key in KEY_TWIST:
                axis, sign = KEY_TWIST[key]
                twist[axis] = sign
            elif key in KEY_EVENT:
                events.add(KEY_EVENT[key])
        return DeviceInput(twist, frozenset(events))

    def close(self) -> None:
        pass


def terminal_keys() -> "queue.Queue[str]":
    """Read single key presses from the terminal on a background thread (works over SSH)."""
    if not sys.stdin.isatty():
        raise UserError("the keyboard needs an interactive terminal (standard input is not a TTY)")
    import termios
    import tty

    keys: queue.Queue[str] = queue.Queue()
    fd = sys.stdin.fileno()
    old = termios.tcgetattr(fd)

    def reader():
        tty.setcbreak(fd)
        try:
            while True:
                ch = sys.stdin.read(1)
                keys.put(ch)
                if ch == "\x1b":
                    return
        finally:
            termios.tcsetattr(fd, termios.TCSADRAIN, old)

    threading.Thread(target=reader, daemon=True).start()
    return keys


class Combined:
    """Several devices at once (a SpaceMouse and the keyboard): twists add, events merge."""

    def __init__(self, *devices):
        self.devices = devices

    def poll(self) -> DeviceInput:
        inputs = [d.poll() for d in self.devices]
        return DeviceInput(np.clip(sum(i.twist for i in inputs), -1, 1), frozenset().union(*(i.events for i in inputs)))

    def close(self) -> None:
        for d in self.devices:
            d.close()


# -- scripted ----------------------------------------------------------------------------------

def scripted_spacemouse_program(episodes: int = 2, seconds: float = 3.0, rate: float = 10.0) -> list[list[bytes]]:
    """SpaceMouse reports, tick by tick, for a dry run: per episode press 'episode', push
    forward then left, close the hand, pull up, open it, press 'episode' (keep); then quit
    is left to the session's episode count. Used by `record --device spacemouse-script`
    (a dry run of the rig's loop) and by the tests."""
    ticks = max(4, int(seconds * rate))
    idle = spacemouse_reports()

    def click(button: int) -> list[list[bytes]]:  # pressed on one tick, released on the next
        return [spacemouse_reports(buttons=button), idle]

    def push(raw: tuple, n: int) -> list[list[bytes]]:
        return [spacemouse_reports(raw)] * n

    program: list[list[bytes]] = []
    q = ticks // 4
    for _ in range(episodes):
        program += click(2) + [idle]                       # start
        program += push((0, -300, 0, 0, 0, 0), q)          # forward (+x after the default mapping)
        program += push((-300, 0, 0, 0, 0, 0), q)          # left (+y)
        program += click(1)                                # close the hand
        program += push((0, 0, -300, 0, 0, 0), q)          # up (+z)
        program += click(1)                                # open it
        program += [idle] * 2 + click(2) + [idle]          # stop and keep
    return program


class ScriptedReports:
    """Feeds a SpaceMouse a program of reports, one tick's worth per poll, then idles."""

    def __init__(self, program: list[list[bytes]]):
        self.program = list(program)

    def __call__(self) -> list[bytes]:
        return self.program.pop(0) if self.program else []


def make_device(kind: str, mapping_path: str | None = None, keys: "queue.Queue[str] | None" = None,
                episodes: int = 2, rate: float = 10.0, clock=time.monotonic):
    """`spacemouse` (plus the keyboard when in a terminal), `keyboard`, or `spacemouse-script`."""
    mapping = load_mapping(mapping_path)
    if kind == "spacemouse-script":
        return SpaceMouse(mapping, read_report=ScriptedReports(scripted_spacemouse_program(episodes, rate=rate)),
                          clock=clock)
    if kind == "keyboard":
        return Keyboard(keys if keys is not None else terminal_keys())
    if kind == "spacemouse":
        mouse = SpaceMouse(mapping, clock=clock)
        if keys is not None or sys.stdin.isatty():
            return Combined(mouse, Keyboard(keys if keys is not None else terminal_keys()))
        return mouse
    raise UserError(f"--device {kind}: expected spacemouse, keyboard or spacemouse-script")
