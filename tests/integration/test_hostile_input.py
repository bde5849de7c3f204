"""Hostile input on a channel, as a caller with the channel's credentials would send it, on SQLite and PostgreSQL.

Generated requests (hypothesis) and hand-written ones; for each: no 5xx, a 4xx names what is wrong, a refused push
keeps nothing and sends nothing, and the good records of a Bundle with a bad one still go.
"""

from __future__ import annotations

import hashlib
import json
import tracemalloc
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mediator.journal.models import Work
from mediator.mapping.insuree import tracked_entity_uid
from tests import samples
from tests.conftest import INSUREES_AUTH, mediator_client

PATH = "/channels/insurees"
ANSWERS = {200, 202, 400, 401, 404, 405, 413, 415, 422}
REFUSED = {400, 413, 415}
MIN_DISTINCT = 500

# Values no reader may choke on, wherever they are put.
HOSTILE_STRINGS = st.one_of(
    st.text(max_size=80),
    st.just("\x00"),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=65, max_size=300),
    st.sampled_from(["", " ", "Patient/", "urn:uuid:", "../../etc/passwd", "a" * 5000, "%00", "\u202e", "🏥" * 40]),
)
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**63, max_value=2**200),
    st.integers(min_value=-(2**200), max_value=-(2**63) - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    HOSTILE_STRINGS,
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            found += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += _paths(v, (*prefix, i))
    return found


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return doc


@st.composite
def mutated_documents(draw: st.DrawFn) -> bytes:
    """A valid patient or Bundle of patients with one place replaced by a hostile value."""
    key = str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1))))
    doc: Any = samples.patient(key=key, chf_id=str(draw(st.integers(100000000, 999999999))))
    if draw(st.booleans()):
        doc = samples.bundle(doc)
    path = draw(st.sampled_from(_paths(doc)))
    return json.dumps(_set(doc, path, draw(JSON_VALUES))).encode()


@st.composite
def raw_faults(draw: st.DrawFn) -> bytes:
    """Faults below the JSON values: duplicate keys, lone surrogates, deep nesting, cut or foreign bytes."""
    key = str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1))))
    text = json.dumps(samples.bundle(samples.patient(key=key)))
    fault = draw(st.sampled_from(["duplicate", "surrogate", "deep", "cut", "bytes", "ids"]))
    if fault == "duplicate":
        # Any object given a key a second time, the same key or `entry`/`resourceType`/`id` at the top.
        name = draw(st.sampled_from(["entry", "resourceType", "id", "type", "birthDate"]))
        at = draw(st.sampled_from([i for i, c in enumerate(text) if c == "{"]))
        return (text[: at + 1] + f'"{name}": [], "{name}": [],' + text[at + 1 :]).encode()
    if fault == "surrogate":
        at = draw(st.sampled_from([i for i, c in enumerate(text) if c == '"']))
        escape = draw(st.sampled_from(["\\ud800", "\\udfff", "\\udbff\\u0041", "\\ude00\\ud83d"]))
        return (text[: at + 1] + escape + text[at + 1 :]).encode()
    if fault == "deep":
        depth = draw(st.integers(65, 5000))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        return (text[:-1] + ', "x": ' + opener * depth + "1" + closer * depth + "}").encode()
    if fault == "cut":
        return text.encode()[: draw(st.integers(0, len(text) - 1))]
    if fault == "bytes":
        junk = draw(st.binary(min_size=1, max_size=16))
        at = draw(st.integers(0, len(text)))
        return text.encode()[:at] + junk + text.encode()[at:]
    hostile_id = draw(HOSTILE_STRINGS.filter(lambda s: not (0 < len(s) <= 64 and s.replace("-", "").isalnum())))
    return text.replace(key, hostile_id.replace("\\", "").replace('"', ""), 1).encode()


HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "Content-Type": st.sampled_from(
            ["text/plain", "application/xml", "application/json; charset=latin-1", "multipart/form-data", "", "*/*"]
        ),
        "Content-Encoding": st.sampled_from(["gzip", "br", "deflate", "x-unknown"]),
        "X-OpenHIM-TransactionID": st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=200),
        "X-OpenHIM-ClientID": st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=300),
    },
)
REQUESTS = st.tuples(st.one_of(mutated_documents(), raw_faults()), HEADERS)


class Channel:
    """The insuree channel of one mediator app, with what the journal and DHIS2 held before each request."""

    def __init__(self, client: Any, fake: Any, journal: Any) -> None:
        self.client, self.fake, self.journal = client, fake, journal
        self.distinct: set[str] = set()

    def work_rows(self) -> int:
        return int(self.journal.count(Work))

    def dhis2_writes(self) -> int:
        return sum(1 for r in self.fake.fake.requests_seen if r[0] == "POST")

    def post(self, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
        headers = {**INSUREES_AUTH, "Content-Type": "application/fhir+json", **(headers or {})}
        self.distinct.add(hashlib.sha256(repr((body, sorted(headers.items()))).encode()).hexdigest())
        resp = self.client.post(PATH, data=body, headers=headers)
        return resp.status_code, json.loads(resp.data)

    def check(self, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, list[dict[str, Any]]]:
        """Send it; assert what holds for any request; return the status and the OperationOutcome's issues."""
        kept, writes = self.work_rows(), self.dhis2_writes()
        status, doc = self.post(body, headers)
        assert status in ANSWERS, (status, doc)
        outcome = json.loads(doc["response"]["body"]) if "response" in doc else doc
        issues = outcome["issue"]
        if status >= 400:
            errors = [i for i in issues if i["severity"] == "error"]
            assert errors, issues
            # What is wrong is named: "<record>: <field>: <why>", or "<header or part>: <why>".
            assert all(": " in i["diagnostics"] and i["diagnostics"].split(": ", 1)[1] for i in errors), errors
        if status in REFUSED:
            assert self.work_rows() == kept, "a refused push kept records"
            assert self.dhis2_writes() == writes, "a refused push was sent to DHIS2"
        return status, issues


@pytest.fixture
def channel(env: dict[str, str], fake: Any, journal_url: str) -> Channel:
    client = mediator_client(env, journal_url=journal_url, dhis2_max_attempts="1")
    return Channel(client, fake, client.application.extensions["journal"])


def _expect_refused(channel: Channel, body: bytes, headers: dict[str, str] | None = None, naming: str = "") -> None:
    status, issues = channel.check(body, headers)
    assert status in REFUSED, (status, issues)
    assert any(naming in i["diagnostics"] for i in issues), (naming, issues)


def _deep(depth: int) -> bytes:
    return b'{"resourceType":"Bundle","type":"collection","entry":[{"resource":' + b"[" * depth + b"]" * depth + b"}]}"


def _with(text: str, at: str, insert: str) -> bytes:
    i = text.index(at) + len(at)
    return (text[:i] + insert + text[i:]).encode()


def _hand_written() -> list[tuple[bytes, dict[str, str], str]]:
    """(body, headers, what the refusal must name) for each known hostile shape."""
    patient = samples.patient()
    one = json.dumps(patient)
    bundle = json.dumps(samples.bundle(patient))
    cases: list[tuple[bytes, dict[str, str], str]] = [
        (_deep(100), {}, "nested deeper than 64"),
        (_deep(100_000), {}, "nested deeper than 64"),
        (_with(one, "{", '"zz": ' + "[" * 1000 + "]" * 1000 + ","), {}, "nested deeper than 64"),
        (_with(one, "{", '"\\ud800": 1,'), {}, "half of a surrogate pair"),
        (_with(bundle, "{", '"\\udc00": 1,'), {}, "half of a surrogate pair"),
        (_with(bundle, "{", '"entry": [],'), {}, "appears twice"),
        (_with(one, "{", '"id": "x",'), {}, "appears twice"),
        (json.dumps({"resourceType": "Bundle", "type": "collection", "entry": []}).encode(), {}, "no entries"),
        (json.dumps({"resourceType": "Bundle", "type": "collection"}).encode(), {}, "no entries"),
        (json.dumps({"resourceType": "Bundle", "entry": [{"resource": patient}]}).encode(), {}, "type"),
        (bundle.encode(), {"Content-Type": "text/plain"}, "Content-Type"),
        (bundle.encode(), {"Content-Type": "application/json; charset=utf-16"}, "UTF-8"),
        (bundle.encode(), {"Content-Encoding": "gzip"}, "Content-Encoding"),
        (bundle.encode(), {"X-OpenHIM-TransactionID": "a" * 65}, "X-OpenHIM-TransactionID"),
        (bundle.encode(), {"X-OpenHIM-ClientID": "c" * 129}, "X-OpenHIM-ClientID"),
        (bundle.encode(), {"X-OpenHIM-TransactionID": "a b"}, "X-OpenHIM-TransactionID"),
        (b"", {}, "not valid JSON"),
        (b"\xef\xbb\xbf" + bundle.encode(), {}, "not valid JSON"),
        (bundle.encode() + b"\xff", {}, "not valid JSON"),
        (_with(one, "{", '"n": 1' + "0" * 5000 + ","), {}, "more than 4300 digits"),
        (_with(one, "{", '"meta": {"x": 1e5000},'), {}, "a number beyond 10^4300"),
        (_with(bundle, "{", '"n": 1e100000000,'), {}, "a number beyond 10^4300"),
        (bundle.encode(), {"X-OpenHIM-ClientID": "bad\x01"}, "X-OpenHIM-ClientID"),
    ]
    for hostile_id in ["x" * 65, "ab\x00c", "a b", "a/b", "\u00e9t\u00e9", "", "a" * 10_000]:
        for doc in (dict(patient, id=hostile_id, identifier=[]), samples.group(key=hostile_id)):
            cases.append((json.dumps(doc).encode(), {}, "id"))
    ref = samples.patient(family="x" * 300)
    cases.append((json.dumps(ref).encode(), {}, "reference"))
    ident = dict(patient, identifier=[samples.uuid_identifier("\x00" * 3)])
    cases.append((json.dumps(ident).encode(), {}, "identifier"))
    return cases


def test_hand_written_hostile_requests_are_refused_naming_what_is_wrong(channel):
    for body, headers, naming in _hand_written():
        _expect_refused(channel, body, headers, naming)


def test_generated_hostile_requests_never_reach_a_5xx_and_refusals_keep_nothing(channel):
    @settings(
        max_examples=MIN_DISTINCT + 150,  # hypothesis repeats some inputs
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )
    @given(REQUESTS)
    def one(request: tuple[bytes, dict[str, str]]) -> None:
        channel.check(*request)

    one()
    assert len(channel.distinct) >= MIN_DISTINCT


BAD_RECORD: list[Callable[[dict[str, Any]], Any]] = [
    lambda p: p.update(id="a" * 65, identifier=[]),
    lambda p: p.update(birthDate="not a date"),
    lambda p: p.update(birthDate=2**70),
    lambda p: p.update(gender={"$ne": 1}),
    lambda p: p.update(identifier=[samples.uuid_identifier("x" * 65)]),
    lambda p: p.pop("address"),
    lambda p: p.update(extension="not a list"),
]


def test_good_records_of_a_bundle_with_a_hostile_one_still_go(channel):
    @settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(st.uuids(), min_size=2, max_size=5, unique=True), st.sampled_from(BAD_RECORD), st.data())
    def one(ids: list[uuid.UUID], spoil: Callable[[dict[str, Any]], Any], data: st.DataObject) -> None:
        keys = [str(i) for i in ids[1:]]
        bad = samples.patient(key=str(ids[0]), chf_id="999999999")
        spoil(bad)
        # Insurance numbers are unique in DHIS2: one per key.
        resources = [samples.patient(key=k, chf_id=str(uuid.UUID(k).int % 10**12), family=None) for k in keys]
        resources.insert(data.draw(st.integers(0, len(keys))), bad)
        status, issues = channel.check(json.dumps(samples.bundle(*resources)).encode())
        assert status == 422, issues
        assert any(i["severity"] == "error" for i in issues), issues
        for key in keys:
            assert channel.fake.fake.store.tracked_entities.get(tracked_entity_uid(key)), key

    one()


@pytest.mark.parametrize("depth", [30_000, 100_000])
def test_deep_nesting_is_refused_in_bounded_memory(channel, depth):
    body = _deep(depth)
    tracemalloc.start()
    try:
        status, issues = channel.check(body)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert status == 400 and "nested deeper than 64" in issues[0]["diagnostics"]
    # The refusal costs a few times the body (spooled, read once), not the gigabytes a nesting-sized parse took.
    assert peak < 20 * 1024 * 1024, peak


@pytest.mark.parametrize("number", ["1" + "0" * 30, "-1" + "0" * 25, "1e400", "18446744073709551616"])
@pytest.mark.parametrize("in_bundle", [False, True])
def test_numbers_beyond_64_bits_are_valid_json_and_the_push_goes(channel, number, in_bundle):
    key = str(uuid.uuid4())
    patient = samples.patient(key=key, chf_id=str(uuid.UUID(key).int % 10**12), _note={"n": "BIG"})
    doc = samples.bundle(patient) if in_bundle else patient
    status, issues = channel.check(json.dumps(doc).replace('"BIG"', number).encode())
    assert status == 200, issues
    assert channel.fake.fake.store.tracked_entities.get(tracked_entity_uid(key))


def test_a_client_id_as_the_core_admin_typed_it_is_kept(channel):
    key = str(uuid.uuid4())
    body = json.dumps(samples.patient(key=key, chf_id=str(uuid.UUID(key).int % 10**12))).encode()
    status, issues = channel.check(body, {"X-OpenHIM-ClientID": "openIMIS Région Nord"})
    assert status == 200, issues
