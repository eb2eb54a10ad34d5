"""The Corral master: a pure state machine (core.py) behind an asyncio runtime (server.py)."""
