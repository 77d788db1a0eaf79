"""Real hardware (Franka through panda-py, RealSense and OpenCV cameras) and the deploy control loop."""
