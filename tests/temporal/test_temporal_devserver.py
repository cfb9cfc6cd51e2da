"""The Temporal dev server fixture: offline, on loopback, reachable by the SDK."""

from __future__ import annotations

import pytest
from support.temporal_dev import DevServer
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client

pytestmark = pytest.mark.anyio


async def test_dev_server_answers_the_sdk(temporal_server: DevServer) -> None:
    client = await Client.connect(temporal_server.address)
    system = await client.workflow_service.get_system_info(GetSystemInfoRequest())
    assert system.server_version
