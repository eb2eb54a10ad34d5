"""Fixtures shared by the integration tests, defined beside the tests that grew them."""
from tests.integration.test_agent_docker import client, ours
from tests.integration.test_agent_fetch import files
from tests.integration.test_agent_process import agent_factory, master
from tests.integration.test_marathon_ha import marathons

__all__ = ["agent_factory", "client", "files", "marathons", "master", "ours"]
