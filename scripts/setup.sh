#!/usr/bin/env bash
# Set up df-robot on a fresh Debian machine: system libraries, then a virtual environment in
# .venv with the project installed in editable mode. Safe to run again (does nothing twice).
set -euo pipefail
cd "$(dirname "$0")/.."

# libusb: pyrealsense2's shared library; libegl1 + mesa: MuJoCo's offscreen rendering (EGL);
# libosmesa6: the software fallback (MUJOCO_GL=osmesa) where EGL has no device.
SYSTEM_PACKAGES=(libusb-1.0-0 libegl1 libgl1 libgl1-mesa-dri libosmesa6)
missing=()
for pkg in "${SYSTEM_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  echo "setup: installing system packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
stamp=$(sha256sum pyproject.toml | cut -c1-16)
if [ "$(cat .venv/.df-robot-installed 2>/dev/null)" != "$stamp" ]; then
  echo "setup: installing df-robot and its dependencies into .venv (first time: a few minutes)"
  .venv/bin/python -m pip install -q --upgrade pip
  # torch is pinned in pyproject.toml (2.13.0, the CPU build); see the README.
  # robomimic (the BC-RNN baseline and its test) is an extra; the suite installs it.
  .venv/bin/python -m pip install -q -e '.[test,robomimic]'
  echo "$stamp" > .venv/.df-robot-installed
fi
