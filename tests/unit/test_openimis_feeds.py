"""Reading openIMIS's FHIR API as it really behaves: pages that skip records, a bad row that fails every page
holding it, a count cached for an hour, percent-encoded links, a token that expires."""

import json
import re

import pytest
import responses

from mediator.openimis.api import FhirApi, OpenImisRefused, OpenImisUnavailable
from mediator.openimis.feeds import FEEDS, choose_filter, read_feed

BASE = "http://openimis.test/api/api_fhir_r4/"
PATIENTS = next(f for f in FEEDS if f.name == "Patient")
CLAIMS = next(f for f in FEEDS if f.name == "Claim")
ORGANIZATIONS = next(f for f in FEEDS if f.resource_type == "Organization")


def api(**extra):
    return FhirApi(BASE, "Admin", "secret", retries=0, **extra)


def login(rsps, exp=4102444800):
    rsps.add(responses.POST, BASE + "login/", json={"token": "tok", "exp": exp})


def resource(kind, n):
    return {"resourceType": kind, "id": f"{n:08d}-0000-4000-8000-000000000000"}


def search_answer(kind, records, count, offset=1):
    """What openIMIS answers for one page of `count`, numbered from 1."""
    start = (offset - 1) * count
    page = records[start : start + count]
    links = [{"relation": "self", "url": "x"}]
    if start + count < len(records):
        nxt = f"{BASE}{kind}/?_count={count}&page-offset={offset + 1}"
        links.append({"relation": "next", "url": re.sub(r"[:/?&=]", lambda m: f"%{ord(m.group()):02X}", nxt)})
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(records),
        "link": links,
        "entry": [{"resource": r} for r in page],
    }


def serve(rsps, kind, records, bad=()):
    """A fake search endpoint: pages cut from `records`; any page holding an id in `bad` answers 500."""

    def callback(request):
        params = dict(p.split("=", 1) for p in request.url.split("?", 1)[1].split("&"))
        count, offset = int(params.get("_count", 10)), int(params.get("page-offset", 1))
        if (offset - 1) * count >= len(records) and offset > 1:
            return (
                404,
                {},
                json.dumps({"resourceType": "OperationOutcome", "issue": [{"details": {"text": "Invalid page."}}]}),
            )
        doc = search_answer(kind, records, count, offset)
        if any(e["resource"]["id"] in bad for e in doc["entry"]):
            outcome = {"resourceType": "OperationOutcome", "issue": [{"details": {"text": "validation error"}}]}
            return 500, {}, json.dumps(outcome)
        return 200, {}, json.dumps(doc)

    rsps.add_callback(responses.GET, re.compile(re.escape(f"{BASE}{kind}/") + r"\?.*"), callback=callback)


def read_all(client, feed, records_named=(), page_size=4):
    got = []
    read = read_feed(client, feed, "ge2024-01-01T00:00:00", page_size, got.append, records_named)
    return got, read


@responses.activate
def test_a_feed_smaller_than_a_page_is_read_in_one_request():
    login(responses)
    records = [resource("Patient", n) for n in range(3)]
    serve(responses, "Patient", records)
    got, read = read_all(api(), PATIENTS)
    assert got == records and read.requests == 1


@responses.activate
def test_a_feed_larger_than_a_page_is_read_in_one_large_page_so_no_record_is_skipped():
    login(responses)
    records = [resource("Patient", n) for n in range(10)]
    serve(responses, "Patient", records)
    got, read = read_all(api(), PATIENTS)
    assert got == records
    asked = [c.request.url for c in responses.calls if "Patient" in c.request.url]
    assert "_count=4" in asked[0] and "_count=20" in asked[1] and len(asked) == 2


@responses.activate
def test_a_bad_row_is_narrowed_down_and_the_other_records_are_all_read():
    login(responses)
    records = [resource("Claim", n) for n in range(10)]
    serve(responses, "Claim", records, bad={records[6]["id"]})
    got, read = read_all(api(), CLAIMS)
    assert sorted(r["id"] for r in got) == sorted(r["id"] for r in records if r is not records[6])
    assert len(read.unreadable) == 1 and "position 7" in read.unreadable[0] and "validation error" in read.unreadable[0]


@responses.activate
def test_a_bad_row_that_another_feed_names_is_read_by_its_id():
    login(responses)
    records = [resource("Claim", n) for n in range(10)]
    serve(responses, "Claim", records, bad={records[6]["id"]})
    responses.add(responses.GET, f"{BASE}Claim/{records[6]['id']}/", json=records[6])
    got, read = read_all(api(), CLAIMS, records_named=[r["id"] for r in records])
    assert sorted(r["id"] for r in got) == sorted(r["id"] for r in records)
    assert read.unreadable == []


@responses.activate
def test_a_record_served_twice_is_handed_on_once():
    login(responses)
    twice = resource("Patient", 1)
    responses.add(
        responses.GET,
        re.compile(re.escape(BASE + "Patient/") + r"\?.*"),
        json=search_answer("Patient", [twice, twice], 10),
    )
    got, _ = read_all(api(), PATIENTS, page_size=10)
    assert got == [twice]


def test_the_cursor_is_read_again_from_a_little_before():
    assert choose_filter(PATIENTS, "2024-05-01T10:00:00", 300, [], 0) == "ge2024-05-01T09:55:00"


def test_a_filter_asked_within_the_hour_is_never_asked_again():
    # openIMIS caches a search's count for an hour and cuts its answer to it: a repeated filter would be blind.
    first = choose_filter(PATIENTS, "2024-05-01T10:00:00", 300, [], 0)
    second = choose_filter(PATIENTS, "2024-05-01T10:00:00", 300, [first], 0)
    third = choose_filter(PATIENTS, "2024-05-01T10:00:00", 300, [first, second], 0)
    assert len({first, second, third}) == 3 and all(f.startswith("ge") for f in (second, third))
    assert second < first and third < second  # earlier bounds: what the first would have read is still read


def test_a_first_pull_reads_everything_under_a_filter_of_its_own():
    now = 1717236000  # 2024-06-01T10:00:00Z
    first = choose_filter(PATIENTS, None, 300, [], now)
    assert first == "lt2024-06-02T10:00:00"
    assert choose_filter(PATIENTS, None, 300, [first], now) == "lt2024-06-02T10:00:01"


def test_organizations_are_read_without_a_filter_openimis_refuses_it_for_them():
    assert choose_filter(ORGANIZATIONS, "2024-05-01T10:00:00", 300, [], 0) is None


@responses.activate
def test_percent_encoded_next_links_are_followed_decoded():
    login(responses)
    records = [resource("Patient", n) for n in range(6)]
    serve(responses, "Patient", records)
    client = api()
    page = client.search("Patient", {"_count": "4"})
    assert page.next_url == f"{BASE}Patient/?_count=4&page-offset=2"
    assert [r["id"] for r in client.search("Patient", url=page.next_url).resources] == [r["id"] for r in records[4:]]


@responses.activate
def test_the_token_is_renewed_before_it_expires():
    now = [1000.0]
    responses.add(responses.POST, BASE + "login/", json={"token": "tok", "exp": 1000 + 3600})
    responses.add(responses.GET, BASE + "Patient/x/", json=resource("Patient", 1))
    client = api(clock=lambda: now[0])
    client.read("Patient", "x")
    client.read("Patient", "x")
    now[0] += 3500  # within five minutes of its end
    client.read("Patient", "x")
    assert [c.request.method for c in responses.calls].count("POST") == 2


@responses.activate
def test_a_token_refused_early_is_renewed_once():
    login(responses)
    responses.add(responses.GET, BASE + "Patient/x/", status=401, json={"resourceType": "OperationOutcome"})
    responses.add(responses.GET, BASE + "Patient/x/", json=resource("Patient", 1))
    assert api().read("Patient", "x")["resourceType"] == "Patient"


@responses.activate
def test_a_refused_user_is_told_about_the_first_graphql_login():
    responses.add(responses.POST, BASE + "login/", status=401, body=b"")
    with pytest.raises(OpenImisRefused, match="GraphQL"):
        api().read("Patient", "x")


@responses.activate
def test_openimis_down_is_unavailable():
    login(responses)
    responses.add(responses.GET, BASE + "Patient/x/", status=503)
    with pytest.raises(OpenImisUnavailable):
        api().read("Patient", "x")


@responses.activate
def test_openimis_failing_every_page_stops_the_feed_instead_of_reading_forever():
    login(responses)
    outcome = {"resourceType": "OperationOutcome", "issue": [{"details": {"text": "database is gone"}}]}
    responses.add(responses.GET, re.compile(re.escape(BASE + "Claim/") + r"\?.*"), status=500, json=outcome)
    with pytest.raises(OpenImisUnavailable, match="every page"):
        read_all(api(), CLAIMS)
    assert len(responses.calls) < 60


@responses.activate
def test_records_skipped_by_pages_of_one_are_said_not_passed_over():
    login(responses)
    records = [resource("Claim", n) for n in range(10)]
    shown = [r for i, r in enumerate(records) if i != 3]  # one is never served, the counted total says ten

    def callback(request):
        params = dict(p.split("=", 1) for p in request.url.split("?", 1)[1].split("&"))
        count, offset = int(params.get("_count", 10)), int(params.get("page-offset", 1))
        if count > 1:
            return 500, {}, json.dumps({"resourceType": "OperationOutcome", "issue": []})
        if offset > len(shown):
            return 404, {}, json.dumps({"resourceType": "OperationOutcome", "issue": []})
        doc = search_answer("Claim", shown, 1, offset)
        doc["total"] = 10
        return 200, {}, json.dumps(doc)

    responses.add_callback(responses.GET, re.compile(re.escape(BASE + "Claim/") + r"\?.*"), callback=callback)
    got, read = read_all(api(), CLAIMS)
    assert len(got) == 9
    assert any("counts 10" in why and "1 of them" in why for why in read.unreadable)
