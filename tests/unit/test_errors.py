"""Every error the mediator raises on purpose descends from one root and says how it is answered; the answer is
built from what the error says, whatever its kind."""

import json

import pytest

import mediator.app.web.guard
import mediator.config.settings
import mediator.dhis2.errors
import mediator.journal.pulls
import mediator.openhim.errors
import mediator.openimis.api  # noqa: F401 (their errors join the tree)
from mediator.answer.response import error_envelope
from mediator.errors import MediatorError

OPENHIM_STATUSES = {"Processing", "Failed", "Completed", "Successful", "Completed with error(s)"}
# FHIR R4 IssueType codes the mediator uses
ISSUE_CODES = {"invalid", "processing", "transient", "security", "conflict", "not-found", "not-supported", "exception"}


def tree(root=MediatorError):
    for sub in root.__subclasses__():
        yield sub
        yield from tree(sub)


KINDS = sorted(set(tree()), key=lambda c: c.__qualname__)


def test_the_tree_holds_every_kind_the_mediator_raises():
    names = {k.__name__ for k in KINDS}
    assert {"Dhis2Unavailable", "Dhis2Rejected", "OpenImisUnavailable", "CoreUnavailable", "Refused",
            "SettingsError", "PullRunning", "OpenImisNotConfigured"} <= names  # fmt: skip


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
def test_each_kind_says_how_it_is_answered(kind):
    assert 400 <= kind.http_status < 600
    assert kind.openhim_status in OPENHIM_STATUSES
    assert kind.fhir_code in ISSUE_CODES
    assert isinstance(kind.retryable, bool) and kind.summary


def test_retryable_means_it_may_work_later_unchanged():
    from mediator.dhis2.errors import Dhis2Rejected, Dhis2Unavailable
    from mediator.openimis.api import OpenImisRefused, OpenImisUnavailable

    assert Dhis2Unavailable.retryable and OpenImisUnavailable.retryable
    assert not Dhis2Rejected.retryable and not OpenImisRefused.retryable


def test_the_answer_is_what_the_error_says():
    from mediator.app.web.guard import Refused
    from mediator.journal.pulls import PullRunning

    refused, status = error_envelope("urn:x", Refused(415, "Content-Type", "text/plain is not taken"), {"c": 1})
    assert status == 415 and refused["status"] == "Completed" and refused["response"]["status"] == 415
    issue = json.loads(refused["response"]["body"])["issue"][0]
    assert issue["code"] == "invalid" and issue["expression"] == ["Content-Type"]
    from datetime import UTC, datetime

    running, status = error_envelope("urn:x", PullRunning("host:1", datetime.now(UTC)), {})
    assert status == 409 and running["status"] == "Completed"
    assert json.loads(running["response"]["body"])["issue"][0]["code"] == "conflict"
