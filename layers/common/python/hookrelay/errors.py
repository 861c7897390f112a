"""Domain errors the logic and the stores raise, for the API (or the CLI, or a queue's retry) to answer."""


class Unavailable(Exception):
    """The request could not be completed for now, and nothing of it was written: DynamoDB kept cancelling
    or throttling its writes (or the item kept changing under it) after every bounded retry. Asking again
    after `retry_after` seconds is expected to work."""

    def __init__(self, detail: str, retry_after: int = 1):
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after


class TeamLimitReached(Exception):
    """A write that would take a team past one of its limits (its number of subscriptions, their stored
    size): nothing was written. The text names the limit and what to do."""
