"""The writes of a subscription's health (decisions.health_change decides them): disabled, failing since."""

from hookrelay.decisions import ClearFailing, Disable, HealthChange, MarkFailing
from hookrelay.records import Subscription
from hookrelay.store.cached_subscriptions import CachedTeamSubscriptions
from hookrelay.store.subscriptions import SubscriptionStore


class SubscriptionHealth:
    def __init__(self, store: SubscriptionStore, cache: CachedTeamSubscriptions):
        self._store = store
        self._cache = cache

    def write(self, subscription: Subscription, change: HealthChange) -> None:
        """Made after the attempt is recorded, so that a send is never repeated for their sake. A write
        that DynamoDB still refuses after the store's retries raises: the message fails and comes back,
        and its attempt, found recorded, makes it then.

        A write answers with the stored subscription when the cached copy it was decided from is out of
        date (another container wrote first): kept, so that this container decides from it next time.
        """
        team_id, subscription_id = subscription.team_id, subscription.id
        match change:
            case Disable(reason, at, failing_since):
                stored = self._store.disable(team_id, subscription_id, reason, at, failing_since=failing_since)
            case MarkFailing(since):
                stored = self._store.set_failing_since(team_id, subscription_id, since)
            case ClearFailing():
                stored = self._store.set_failing_since(team_id, subscription_id, None)
            case None:
                return
        if stored is not None:
            self._cache.remember(stored)
