"""The deploy control loop, its safety filter and watchdog: pure logic over the Robot and
Camera protocols, so the very same code drives the Franka (deploy/) and the twin (sim/)."""
