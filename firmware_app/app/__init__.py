"""Running the assistant: the wiring, the simulation, the control socket, `ttbt5 check`."""
