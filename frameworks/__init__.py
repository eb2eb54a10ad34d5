"""The Python scheduler SDK and example frameworks.

`frameworks.core` is the pure scheduler state machine; `frameworks.scheduler` holds the
user-facing `Scheduler` callbacks and the drivers; `frameworks.tasks` builds TaskInfos from
offers. Kept empty so that importing the pure core does not pull in zmq or asyncio.
"""
