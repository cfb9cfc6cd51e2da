"""The follower's query budget: one pace for every run a server follows.

A server follows each run it accepted with a query of the run's workflow between its start and its end (the
end itself comes from a long poll on the result, which costs the cluster nothing while it waits). A query is
not free: the Temporal server routes it to the worker process that holds the workflow and back (measured on
the dev server: 5.7 ms of its CPU each, about a tenth of what a whole mock run costs it), so N runs queried
every half second cost the cluster 2N queries a second, growing with the very load that slows the runs down.
The pace spends at most ``rate`` queries a second on all of them together, oldest claim first: up to
``rate * interval`` runs are each seen every ``interval``; beyond that each is seen less often, and the cost
stays flat.
"""

from __future__ import annotations

import time

import anyio

__all__ = ["QueryPace"]


class QueryPace:
    """Hands out query slots, at most ``rate`` a second in total, each run at most every ``interval``."""

    def __init__(self, rate: float, interval: float) -> None:
        self.rate = rate
        self.interval = interval
        self.spent = 0  # slots taken so far (the engine's snapshot shows it)
        self._next = 0.0  # monotonic: the earliest free slot

    async def turn(self, last: float) -> None:
        """Wait for this run's next query slot; ``last``: when its previous one was (monotonic)."""
        now = time.monotonic()
        slot = max(now, self._next, last + self.interval)
        self._next = max(self._next, slot) + 1.0 / self.rate
        await anyio.sleep(slot - now)
        self.spent += 1  # a run that ended meanwhile never gets here (its wait is cancelled)
