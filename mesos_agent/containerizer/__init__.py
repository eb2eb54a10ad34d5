"""Ways to run a task: real processes (process.py) or an in-memory fake (sim.py)."""
