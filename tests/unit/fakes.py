"""In-memory stand-ins for the store interfaces."""

from hookrelay.models import Subscription
from hookrelay.store.subscriptions import SubscriptionSlice


class FakeSubscriptionStore:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], Subscription] = {}

    def create(self, subscription: Subscription) -> None:
        self.items[(subscription.team_id, subscription.id)] = subscription

    def get(self, team_id: str, subscription_id: str) -> Subscription | None:
        return self.items.get((team_id, subscription_id))

    def page(self, team_id: str, limit: int, after_id: str | None) -> SubscriptionSlice:
        ids = sorted(id_ for team, id_ in self.items if team == team_id and (after_id is None or id_ > after_id))
        return SubscriptionSlice([self.items[(team_id, id_)] for id_ in ids[:limit]], has_more=len(ids) > limit)

    def replace(self, subscription: Subscription) -> bool:
        if (subscription.team_id, subscription.id) not in self.items:
            return False
        self.items[(subscription.team_id, subscription.id)] = subscription
        return True

    def delete(self, team_id: str, subscription_id: str) -> bool:
        return self.items.pop((team_id, subscription_id), None) is not None
