"""The Temporal engine (``MCP_ORCHESTRATOR_ENGINE=temporal``): runs as workflows, step attempts as activities.

Imported only where it is configured (``temporalio`` costs nothing otherwise). ``client`` names the task
queues and connects; ``engine`` is the ``ExecutionEngine`` a server submits runs to; ``steps`` holds the
step-attempt activity that ``mcp-orchestrator worker`` processes execute. May import ``config``,
``contracts``, ``errors``, ``guards``, the rest of ``engine/``, ``runtimes/`` and ``store/``.
"""
