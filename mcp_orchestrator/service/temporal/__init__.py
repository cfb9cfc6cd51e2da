"""The service's half of the Temporal engine: the run workflow, the worker process, and following runs.

``workflow`` runs a strategy with each step an activity; ``workspace`` serves the plan's git operations
where the workdirs are; ``worker`` is ``mcp-orchestrator worker``; ``follow`` submits runs and keeps
the store's copy of each current; ``sessions`` finds a worker's last session for ``continueSession``.
Imported only when the Temporal engine is configured. Part of the service layer: may import the rest of
the service (through ``host.RunHost``), strategies, the engine (``engine/temporal``), runtimes, the store
and the shared modules.
"""
