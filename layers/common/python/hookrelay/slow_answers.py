"""What makes an endpoint's answer slow, and the lane a delivery's message goes to by it: the one rule by
which delivery containers (hookrelay.slow_lane), the sweeper and the API's retries send a subscription's
messages to the slow lane. A module of its own, so that the sweeper routes by it without loading the
delivery records."""

from collections.abc import Iterable

from hookrelay.queues import Message, Queue

# An answer this slow (a timeout included) marks its endpoint slow: a batch's sends, not the AWS calls
# around them, are what hold an invocation, and a receiver that answers within a second is not one to
# set apart.
SLOW_ANSWER_MS = 1_000


def answered_slowly(latency_ms: int) -> bool:
    """Whether an answer `latency_ms` after its send (or none, at the send's deadline) marks its endpoint slow."""
    return latency_ms >= SLOW_ANSWER_MS


class Lanes:
    """The delivery queue and the slow lane, for messages sent again from a delivery's record: a long
    backoff or a manual retry outlasts every container's memory of the endpoint and its shared mark, so
    the record's last attempt says where its next one waits."""

    def __init__(self, delivery_queue: Queue, slow_lane: Queue):
        self.delivery_queue = delivery_queue
        self.slow_lane = slow_lane

    def of(self, last_latency_ms: int) -> Queue:
        """The lane of a delivery whose last attempt was answered `last_latency_ms` after its send (0: none yet)."""
        return self.slow_lane if answered_slowly(last_latency_ms) else self.delivery_queue

    def send(self, messages: Iterable[tuple[Message, int]]) -> None:
        """Send each (message, its delivery's last latency) to its lane, ten a call per lane."""
        by_lane: dict[Queue, list[Message]] = {}
        for message, last_latency_ms in messages:
            by_lane.setdefault(self.of(last_latency_ms), []).append(message)
        send_by_lane(by_lane)


def send_by_lane(by_lane: dict[Queue, list[Message]]) -> None:
    """Send each lane's messages: a lane whose send fails does not keep the other's from being sent (the
    first failure is raised once every lane was tried), so that no claimed message waits for its lease
    because of the other lane."""
    failure: Exception | None = None
    for lane, messages in by_lane.items():
        try:
            lane.send(messages)
        except Exception as error:
            failure = failure or error
    if failure is not None:
        raise failure
