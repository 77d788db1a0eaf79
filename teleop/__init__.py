"""Teleoperation devices (SpaceMouse, keyboard, scripted expert) and the recorder behind `df-teleop`."""
