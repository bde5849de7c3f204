"""The fast way through a body gives what the careful way gives: the same survey of every body, well formed or not,
cut into chunks anywhere; and it gives up (the careful way then reads the body) exactly where it must."""

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mediator.openimis import scan, stream
from mediator.openimis.wellformed import MAX_DEPTH
from tests import samples
from tests.unit.test_stream import ALL, mixed

DATA = Path(__file__).resolve().parents[1] / "data" / "openimis-24.04"


def surveys(path):
    """(the survey as read, whether the fast way gave up, the survey read the careful way only)."""
    restarts = []
    found = stream.survey(path, ALL, on_restart=lambda: restarts.append(1))
    return found, bool(restarts), stream._survey(path, ALL, None, None, fast=False)


def write(tmp_path, raw):
    path = tmp_path / "push.json"
    path.write_bytes(raw)
    return path


def bundles():
    yield json.dumps(mixed()).encode()
    for path in sorted(DATA.glob("*.json")):
        doc = json.loads(path.read_text())
        if doc.get("resourceType") == "Bundle" and doc.get("entry"):
            yield json.dumps(doc, indent=1).encode()


@pytest.mark.parametrize("chunk", [1, 7, 4096, scan.CHUNK])
def test_the_test_data_reads_the_fast_way_into_the_careful_way_s_survey(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(scan, "CHUNK", chunk)
    count = 0
    for raw in bundles():
        found, gave_up, careful = surveys(write(tmp_path, raw))
        assert not gave_up
        assert found == careful
        count += 1
    assert count >= 5


def body(*resources, before="", after=""):
    entries = ",".join(f'{{"resource":{r}}}' for r in resources)
    return f'{{"resourceType":"Bundle","type":"collection"{before},"entry":[{entries}]{after}}}'.encode()


PATIENT = json.dumps(samples.patient())
MEMBER = json.dumps(samples.patient(samples.MEMBER, "104000002", is_head=False))


def deep(levels):
    return '{"resourceType":"Basic","x":' + "[" * levels + "]" * levels + "}"


CASES = {
    "a key twice in a resource": body(PATIENT, PATIENT[:-1] + ',"gender":"male","gender":"female"}'),
    "a key twice before the entries": body(PATIENT, before=',"type":"batch"'),
    "a key twice after the entries": body(PATIENT, after=',"id":"a","id":"b"'),
    "nested too deep": body(PATIENT, deep(MAX_DEPTH)),
    "nested one level too deep": body(PATIENT, deep(MAX_DEPTH - 3)),  # the resource is at level 4
    "nested as deep as may be": body(PATIENT, deep(MAX_DEPTH - 4)),
    "a float past 10^308": body(PATIENT[:-1] + ',"x":1e400}'),
    "NaN": body(PATIENT[:-1] + ',"x":NaN}'),
    "an integer past 64 bits": body(PATIENT[:-1] + ',"x":123456789012345678901234567890}'),
    "cut off": body(PATIENT, MEMBER)[:-30],
    "something after the document": body(PATIENT) + b" {}",
    "an empty Bundle": body(),
    "a single resource": PATIENT.encode(),
    "entries before the type": body(PATIENT).replace(b'"type":"collection",', b"")[:-1] + b',"type":"batch"}',
    "a Bundle of an unknown type": body(PATIENT).replace(b"collection", b"pile"),
    "bytes that are no UTF-8": body(PATIENT[:-1] + ',"x":"\xff"}').replace("\xff".encode(), b"\xff"),
    "a lone surrogate": body(PATIENT[:-1] + ',"x":"\\ud800"}'),
    "a colon written as an escape": body(PATIENT[:-1] + ',"x":"a\\u003ab"}'),
}
TAKEN = {"a lone surrogate", "nested as deep as may be"}  # refused before either way reads; taken either way
GIVES_UP = set(CASES) - TAKEN


@pytest.mark.parametrize("case", sorted(CASES))
def test_what_the_fast_way_does_not_plainly_take_is_read_the_careful_way(tmp_path, case):
    found, gave_up, careful = surveys(write(tmp_path, CASES[case]))
    assert found == careful
    assert gave_up == (case in GIVES_UP)


def test_a_key_twice_is_found_however_the_colons_fall(tmp_path):
    twice = PATIENT[:-1] + ',"note":"a:b","note":"c"}'
    found, gave_up, careful = surveys(write(tmp_path, body(PATIENT, twice)))
    assert gave_up and found == careful
    assert [(p.record, p.field) for p in found.problems] == [("Bundle.entry[1]", "note")]


def test_an_entry_without_a_resource_is_named_either_way(tmp_path):
    raw = body(PATIENT).replace(b'"entry":[', b'"entry":[{"fullUrl":"x"},')
    found, gave_up, careful = surveys(write(tmp_path, raw))
    assert not gave_up and found == careful
    assert [(p.record, p.field) for p in found.problems] == [("Bundle.entry[0]", "resource")]


PIECES = st.sampled_from(
    [b'"', b":", b",", b"{", b"}", b"[", b"]", b"\\", b"\\u003a", b"1e999", b"-", b"true", b" ", b"\xc3", b"NaN"]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_a_body_changed_anywhere_gives_the_careful_way_s_survey(tmp_path, monkeypatch, data):
    monkeypatch.setattr(scan, "CHUNK", data.draw(st.sampled_from([3, 64, 1 << 20])))
    raw = bytearray(body(PATIENT, MEMBER, json.dumps(samples.group())))
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(raw)))
        cut = data.draw(st.integers(0, 3))
        raw[at : at + cut] = data.draw(PIECES)
    found, _, careful = surveys(write(tmp_path, bytes(raw)))
    assert found == careful
