"""The fake DHIS2 takes options as DHIS2 does: codes unique within their set, code and name of at most 230
characters (DHIS2's Option mapping)."""

from fake_dhis2.store import Store, import_metadata

SET = "Ssssssssss1"


def store_with_a_set() -> Store:
    store = Store()
    report = import_metadata(
        store, {"optionSets": [{"id": SET, "name": "ICD", "valueType": "TEXT"}]}, "CREATE_AND_UPDATE", "ALL"
    )
    assert report["status"] == "OK"
    return store


def option(uid: str, code: str, name: str) -> dict:
    return {"id": uid, "code": code, "name": name, "optionSet": {"id": SET}}


def errors(report: dict) -> list[str]:
    return [e["errorCode"] for t in report["typeReports"] for o in t["objectReports"] for e in o["errorReports"]]


def test_an_icd_code_with_its_description_fits_an_option_code():
    store = store_with_a_set()
    options = [option("Oooooooooo1", "A009 Cholera, unspecified", "Cholera, unspecified")]
    assert import_metadata(store, {"options": options}, "CREATE_AND_UPDATE", "NONE")["status"] == "OK"


def test_an_option_code_or_name_longer_than_230_characters_is_e4001():
    store = store_with_a_set()
    options = [option("Oooooooooo1", "A" * 231, "fine"), option("Oooooooooo2", "B", "n" * 231)]
    report = import_metadata(store, {"options": options}, "CREATE_AND_UPDATE", "NONE")
    assert errors(report) == ["E4001", "E4001"]
    assert not store.options
    longest = [option("Oooooooooo3", "C" * 230, "n" * 230)]
    assert import_metadata(store, {"options": longest}, "CREATE_AND_UPDATE", "NONE")["status"] == "OK"


def test_an_option_code_already_in_its_set_is_e5003():
    store = store_with_a_set()
    import_metadata(store, {"options": [option("Oooooooooo1", "A009", "Cholera")]}, "CREATE_AND_UPDATE", "NONE")
    report = import_metadata(store, {"options": [option("Oooooooooo2", "A009", "x")]}, "CREATE_AND_UPDATE", "NONE")
    assert errors(report) == ["E5003"]
