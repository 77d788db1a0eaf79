"""The MuJoCo twin of the Franka: scene, cameras, controller, the fruit-swap task and its expert."""

import os


def _choose_gl_backend() -> None:
    """Offscreen rendering: EGL where its library exists, else OSMesa. An explicit MUJOCO_GL,
    or a display (GLFW), wins. Runs before anything in this package imports mujoco."""
    if os.environ.get("MUJOCO_GL") or os.environ.get("DISPLAY"):
        return
    import ctypes.util

    os.environ["MUJOCO_GL"] = "egl" if ctypes.util.find_library("EGL") else "osmesa"
    os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])


_choose_gl_backend()
