"""What makes an endpoint's answer slow: the one rule by which delivery containers (hookrelay.slow_lane)
and the sweeper send a subscription's messages to the slow lane. A module of its own, so that the
sweeper routes by it without loading the delivery records."""

# An answer this slow (a timeout included) marks its endpoint slow: a batch's sends, not the AWS calls
# around them, are what hold an invocation, and a receiver that answers within a second is not one to
# set apart.
SLOW_ANSWER_MS = 1_000


def answered_slowly(latency_ms: int) -> bool:
    """Whether an answer `latency_ms` after its send (or none, at the send's deadline) marks its endpoint slow."""
    return latency_ms >= SLOW_ANSWER_MS
