from mediator.redact import REDACTED, redact, redact_message


def test_values_are_hidden_but_structure_and_nulls_stay():
    payload = {
        "trackedEntities": [
            {
                "trackedEntity": "Aaaaaaaaaa1",
                "attributes": [
                    {"attribute": "Bbbbbbbbbb1", "value": "Ageni"},
                    {"attribute": "Ccccccccccc"[:11], "value": None},
                ],
            }
        ]
    }
    out = redact(payload)
    attrs = out["trackedEntities"][0]["attributes"]
    assert attrs[0] == {"attribute": "Bbbbbbbbbb1", "value": REDACTED}
    assert attrs[1]["value"] is None
    assert out["trackedEntities"][0]["trackedEntity"] == "Aaaaaaaaaa1"


def test_messages_keep_uids_but_lose_quoted_values():
    text = "Non-unique attribute value `Ageni Nonino` for attribute `Bbbbbbbbbb1`"
    assert redact_message(text) == f"Non-unique attribute value `{REDACTED}` for attribute `Bbbbbbbbbb1`"
    assert redact({"message": text})["message"] == redact_message(text)
