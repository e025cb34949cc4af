"""Qt widgets and workers. Imports fl and core."""
