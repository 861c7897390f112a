"""The tests' receivers (tests/receivers.py) take what a batch of deliveries sends at once."""

import socket
from contextlib import ExitStack

from receivers import Answer, Receiver

# Two delivery containers, each sending its batch of 10 at once.
CONNECTIONS_AT_ONCE = 20


def test_a_receiver_takes_a_batch_of_connections_while_its_accept_loop_lags() -> None:
    """Connections wait in the listen backlog until the receiver accepts them. A backlog of 5
    (socketserver's default) dropped the rest, and a sender's 1 s connect timeout, shorter than the
    kernel's first SYN retry, failed a send the receiver would have taken."""
    lagging = Receiver(lambda _: Answer())  # never serving: nothing is accepted
    try:
        with ExitStack() as connections:
            for _ in range(CONNECTIONS_AT_ONCE):
                connections.enter_context(socket.create_connection(("127.0.0.1", lagging.port), timeout=0.5))
    finally:
        lagging.server_close()
