"""Background work of the local stack besides the HTTP gateway.

This is where the queue pollers (events queue -> ingest, delivery queue -> delivery) and the sweeper
timer are started; each is a Worker with start() and stop(), built from the running stack.
"""

from typing import Protocol


class Worker(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...
