"""Which records of a push travel together when a large push is delivered in slices.

A slice must hold what the mapping looks up within the push: a family with its members, a policy with the insurees
it covers (a Coverage names them by insurance number), a claim with its insuree and its review. Metadata (org units
and code lists) is delivered first, as a whole, since everything else refers to it.
"""

from __future__ import annotations

from mediator.openimis.records import Claim, ClaimReview, Family, Insuree, Policy, Record

METADATA_KINDS = frozenset({"Location", "Organization", "InsurancePlan", "Medication", "ActivityDefinition"})


def stage(kind: str) -> int:
    """0 for metadata, delivered before the rest of its push; 1 for data."""
    return 0 if kind in METADATA_KINDS else 1


def ties(record: Record) -> list[str]:
    """The names of what this record must travel with (other records, or an insurance number)."""
    if isinstance(record, Insuree):
        named = [f"Group/{record.family_key}"] if record.family_key else []
        return named + ([f"number:{record.insurance_number}"] if record.insurance_number else [])
    if isinstance(record, Family):
        return [f"Patient/{k}" for k in record.member_keys]
    if isinstance(record, Policy):
        # Coverage and Contract of one policy are merged into one event per insuree: one node for both.
        return [
            f"Policy/{record.key}",
            *(f"Patient/{k}" for k in record.insuree_keys),
            *(f"number:{n}" for n in record.insurance_numbers),
        ]
    if isinstance(record, Claim):
        return [f"Patient/{record.patient_key}"]
    if isinstance(record, ClaimReview):
        return [f"Claim/{record.claim_key}"]
    return []


def referents(record: Record) -> tuple[list[str], list[str]]:
    """What a record needs in DHIS2 before it can go: (records by label, insurees by insurance number).

    When one of them is still on its way in another push, the record waits for it instead of being refused."""
    if isinstance(record, Family):
        return [f"Patient/{k}" for k in record.member_keys], []
    if isinstance(record, Policy):
        return [f"Patient/{k}" for k in record.insuree_keys], list(record.insurance_numbers)
    if isinstance(record, Claim):
        return [f"Patient/{record.patient_key}"], []
    if isinstance(record, ClaimReview):
        return [f"Claim/{record.claim_key}"], []
    return [], []


class Units:
    """Union-find over the records of one push; a unit is named by the position of its first record."""

    def __init__(self) -> None:
        self._parent: dict[str, str] = {}
        self._first: dict[str, int] = {}

    def _root(self, node: str) -> str:
        parent = self._parent.setdefault(node, node)
        while parent != node:
            grand = self._parent[parent]
            self._parent[node] = grand  # path halving keeps the trees flat
            node, parent = parent, grand
        return node

    def _join(self, a: str, b: str) -> None:
        ra, rb = self._root(a), self._root(b)
        if ra != rb:
            self._parent[rb] = ra

    def add(self, label: str, position: int, record: Record) -> None:
        self._first.setdefault(label, position)
        self._root(label)
        if stage(record.kind) == 0:
            return
        for node in ties(record):
            self._join(label, node)

    def alias(self, kind: str, rid: str, key: str) -> None:
        """A record named by its resource id elsewhere in the push is the record keyed by its UUID."""
        self._join(f"{kind}/{key}", f"{kind}/{rid}")

    def assign(self) -> dict[str, int]:
        """label -> unit, once every record has been added."""
        first_of_root: dict[str, int] = {}
        for label, position in self._first.items():
            root = self._root(label)
            first_of_root[root] = min(position, first_of_root.get(root, position))
        return {label: first_of_root[self._root(label)] for label in self._first}
