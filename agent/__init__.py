"""prometheus-backend: the strategist agent of the backend-optimisation swarm."""

__version__ = "0.1.0"
