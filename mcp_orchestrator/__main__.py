"""``python -m mcp_orchestrator`` is the operator CLI."""

from mcp_orchestrator.cli import main

raise SystemExit(main())
