"""`corral`: the command line for Corral's master and Marathon APIs, and Compose stacks."""

__version__ = "0.1.0"
