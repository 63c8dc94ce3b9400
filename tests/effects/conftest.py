"""Effect tests use the agent tests' deployment (a worker with its own data dir)."""

from tests.agent.conftest import agents  # noqa: F401
