"""For code that reads Settings without a stack (unit tests, the in-memory benchmarks): a name for each
resource the settings require, which nothing reaches; every other setting keeps its default."""

RESOURCES = {
    name: "x"
    for name in (
        "HOOKRELAY_SUBSCRIPTIONS_TABLE",
        "HOOKRELAY_API_KEYS_TABLE",
        "HOOKRELAY_DELIVERIES_TABLE",
        "HOOKRELAY_EVENT_BUS",
        "HOOKRELAY_EVENTS_QUEUE_URL",
        "HOOKRELAY_DELIVERY_QUEUE_URL",
        "HOOKRELAY_SLOW_LANE_URL",
    )
}
