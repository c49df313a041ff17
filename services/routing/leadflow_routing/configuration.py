"""The rules and the team directory a decision needs, cached by configuration version.

Every change to either writes a fresh ``config_version`` in its own transaction (see
:meth:`RoutingRepository.config_changed`); a decision reads that version with its counters
in one statement and reuses the parsed rule set and directory while it is unchanged.

Why a cache entry never holds another transaction's uncommitted state: an entry is filed
under the version its transaction read, and versions are never reused — a change that
rolls back leaves a version nobody else can ever read. Decisions (and batches of them
that roll back and run again) never change the configuration, so what they cache under a
committed version is that version's committed content (PostgreSQL's read committed may
show content newer than the version read, never older: still correct to decide on).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from leadflow_routing.repository import RoutingRepository
from leadflow_routing.rules.document import DEFAULT_RULES, RuleSet
from leadflow_routing.team.availability import RepView


@dataclass(frozen=True)
class RoutingConfig:
    version: str
    rule_set: RuleSet
    reps_by_role: dict[str, tuple[RepView, ...]]
    rules_version: int = 0

    def reps(self, role: str) -> list[RepView]:
        """The role's reps, by id."""
        return list(self.reps_by_role.get(role, ()))


async def current_rule_set(repo: RoutingRepository) -> RuleSet:
    row = await repo.current_rules()
    return DEFAULT_RULES if row is None else RuleSet.model_validate(row.document)


class ConfigCache:
    """A few versions (a process may serve several databases, as tests do); the newest
    used stay."""

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._entries: OrderedDict[str, RoutingConfig] = OrderedDict()

    async def get(self, repo: RoutingRepository, version: str) -> RoutingConfig:
        """The configuration of ``version``, loaded through ``repo`` on a miss."""
        config = self._entries.get(version)
        if config is not None:
            self._entries.move_to_end(version)
            return config
        by_role: dict[str, list[RepView]] = {}
        for rep in await repo.all_reps():
            by_role.setdefault(rep.role, []).append(rep)
        row = await repo.current_rules()
        config = RoutingConfig(
            version=version,
            rule_set=DEFAULT_RULES if row is None else RuleSet.model_validate(row.document),
            reps_by_role={role: tuple(reps) for role, reps in by_role.items()},
            rules_version=0 if row is None else row.version,
        )
        self._entries[version] = config
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return config

    def clear(self) -> None:
        self._entries.clear()


ROUTING_CONFIG = ConfigCache()
