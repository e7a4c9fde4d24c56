from __future__ import annotations

import json

import pytest

from accounts.models import Account
from accounts.sandbox import EXAMPLE_PATH, SandboxServer, start_sandbox

SANDBOX_APP_ID = "wx_test_app"
SANDBOX_TOKEN = "test-token-5f1c2b9e7d"


@pytest.fixture(scope="session")
def sandbox_server() -> SandboxServer:
    server = start_sandbox()
    yield server
    server.shutdown()


@pytest.fixture
def sandbox(sandbox_server: SandboxServer):
    """The sandbox's state, reset, with one account that serves the example page first."""
    state = sandbox_server.state
    state.reset()
    state.add_account(SANDBOX_APP_ID, SANDBOX_TOKEN)
    yield state
    state.reset()


@pytest.fixture
def account(db, sandbox_server: SandboxServer, sandbox) -> Account:
    return Account.objects.create(
        name="Test shop",
        app_id=SANDBOX_APP_ID,
        token=SANDBOX_TOKEN,
        base_url=sandbox_server.base_url,
    )


@pytest.fixture(scope="session")
def example_response() -> dict:
    """The service's own example response for syncPrivateLetterMsg, verbatim."""
    return json.loads(EXAMPLE_PATH.read_bytes())
