"""A team's subscriptions kept per container (CachedTeamSubscriptions), checked against the team's version
before each batch and brought up to date from its change log (store/team_items.py)."""

import functools
from collections import OrderedDict
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from hookrelay import clock
from hookrelay.errors import Unavailable
from hookrelay.matching import SubscriptionIndex
from hookrelay.observability import log_failure
from hookrelay.records import Event, Subscription
from hookrelay.store.subscriptions import SubscriptionStore


@dataclass(frozen=True)
class _Team:
    version: int
    subscriptions: list[Subscription]  # in id order

    @functools.cached_property
    def by_id(self) -> dict[str, Subscription]:
        return {subscription.id: subscription for subscription in self.subscriptions}

    @functools.cached_property
    def index(self) -> SubscriptionIndex:
        # Built by the first event matched against this version, so containers that only deliver never build it.
        return SubscriptionIndex(self.subscriptions)

    def changed(self, version: int, ids: Collection[str], read: Iterable[Subscription]) -> "_Team":
        """This team at `version`: the subscriptions with these ids replaced by those `read` (the others deleted)."""
        kept = {id_: subscription for id_, subscription in self.by_id.items() if id_ not in ids}
        kept.update((subscription.id, subscription) for subscription in read)
        return _Team(version, [kept[id_] for id_ in sorted(kept)])


# Teams a container keeps, the least recently used dropped first: a bound on its memory.
MAX_CACHED_TEAMS = 1000


class CachedTeamSubscriptions:
    """A team's subscriptions, kept per container and checked against the team's version before use.

    `refresh` is called once per batch with the batch's teams: one read of their versions (and, for
    ingest, of their slow marks: `marked_slow`), then for each team whose version moved, one read of its
    change log and one of the subscriptions the log names (the whole team only when seen for the first
    time, or when it changed more than it has subscriptions).
    Every change is answered only after it moved the version, so a batch that starts after the answer acts
    on the change.

    A team whose refresh fails (throttled, unavailable) fails alone: `refresh` names it, and `matching` and
    `find` raise Unavailable for it until a later refresh succeeds, while the batch's other teams go on.
    """

    def __init__(self, store: SubscriptionStore, *, with_slow_marks: bool = False):
        """`with_slow_marks`: also read the teams' slow marks with their versions (ingest's, for
        `marked_slow`), which costs a read unit per team and batch that delivery does not need."""
        self._store = store
        self._teams: OrderedDict[str, _Team] = OrderedDict()
        self._unavailable: set[str] = set()
        self._with_slow_marks = with_slow_marks
        self._slow_marks: dict[str, dict[str, int]] = {}

    def refresh(self, team_ids: Iterable[str]) -> set[str]:
        """Bring these teams up to date; those whose subscriptions could not be read."""
        wanted = set(team_ids)
        if not wanted:
            return set()
        self._slow_marks = {}
        versions, unavailable = self._versions(wanted)
        for team_id in sorted(wanted - unavailable):
            try:
                self._teams[team_id] = self._read(team_id, versions.get(team_id, 0))
            except Exception as error:
                log_failure(
                    "reading a team's subscriptions failed; its messages will be received again", error, team_id=team_id
                )
                unavailable.add(team_id)
            else:
                self._teams.move_to_end(team_id)
        self._unavailable = (self._unavailable - wanted) | unavailable
        while len(self._teams) > MAX_CACHED_TEAMS:
            self._teams.popitem(last=False)
        return unavailable

    def _versions(self, wanted: set[str]) -> tuple[dict[str, int], set[str]]:
        """The teams' versions (and, with_slow_marks, their marks), in one read; should it fail, each team's
        alone, so that one team's hot key (its items throttled) fails only that team's messages. Returns
        the versions and the teams not read."""
        try:
            return self._read_versions(wanted), set()
        except Exception as error:
            if len(wanted) == 1:
                log_failure("reading a team's version failed; its messages will be received again", error)
                return {}, wanted
        versions: dict[str, int] = {}
        unread = set()
        for team_id in sorted(wanted):
            try:
                versions.update(self._read_versions({team_id}))
            except Exception as error:
                log_failure(
                    "reading a team's version failed; its messages will be received again", error, team_id=team_id
                )
                unread.add(team_id)
        return versions, unread

    def _read_versions(self, team_ids: set[str]) -> dict[str, int]:
        if not self._with_slow_marks:
            return self._store.versions(team_ids)
        versions, marks = self._store.versions_and_slow_marks(team_ids)
        self._slow_marks.update((team_id, marks.get(team_id, {})) for team_id in team_ids)
        return versions

    def _read(self, team_id: str, version: int) -> _Team:
        cached = self._teams.get(team_id)
        if cached is not None and cached.version == version:
            return cached
        if cached is not None and 0 < version - cached.version <= max(1, len(cached.subscriptions)):
            changed = self._store.changed_between(team_id, cached.version, version)
            if changed is not None:
                return cached.changed(version, changed, self._store.some_of_team(team_id, changed))
        return _Team(version, self._store.all_of_team(team_id))

    def matching(self, event: Event) -> list[Subscription]:
        """The subscriptions of the event's team that receive it, found through the team's index."""
        return self._team(event.team_id).index.matching(event)

    def marked_slow(self, team_id: str, subscription_id: str) -> bool:
        """Whether a delivery container marked the subscription's endpoint slow, as of the last refresh of
        its team, and the mark has not ended."""
        until = self._slow_marks.get(team_id, {}).get(subscription_id)
        return until is not None and until > clock.utc_now().timestamp()

    def find(self, team_id: str, subscription_id: str) -> Subscription | None:
        """One subscription of the team, by id, from the same cached read (no read per delivery)."""
        return self._team(team_id).by_id.get(subscription_id)

    def remember(self, subscription: Subscription) -> None:
        """Keep a subscription as this container has just written (or found) it in place of its cached copy:
        decisions made from the cache (a failing run's start and end) would otherwise repeat the same write
        for each of the batch's deliveries, and delivery's health writes move no version."""
        cached = self._teams.get(subscription.team_id)
        if cached is None or subscription.id not in cached.by_id:
            return
        self._teams[subscription.team_id] = cached.changed(cached.version, [subscription.id], [subscription])

    def _team(self, team_id: str) -> _Team:
        if team_id not in self._teams and team_id not in self._unavailable:
            self.refresh([team_id])
        if team_id in self._unavailable:
            raise Unavailable(f"the subscriptions of team {team_id} could not be read")
        return self._teams[team_id]
