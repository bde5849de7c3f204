"""Options of one set are told apart by name in DHIS2: openIMIS names some entries alike, the codes never are."""

from mediator.mapping.metadata import NAME_LENGTH, distinct_names


def test_names_that_several_codes_share_are_followed_by_the_code():
    names = {"0208": "RANITIDINE 150MG TABLETS", "0209": "RANITIDINE 150MG TABLETS", "0182": "PARACETAMOL"}
    assert distinct_names(names) == {
        "0208": "RANITIDINE 150MG TABLETS (0208)",
        "0209": "RANITIDINE 150MG TABLETS (0209)",
        "0182": "PARACETAMOL",
    }


def test_a_long_shared_name_keeps_its_code_within_the_longest_name_dhis2_takes():
    names = distinct_names({"A": "x" * 300, "B": "x" * 300})
    assert {len(n) for n in names.values()} == {NAME_LENGTH}
    assert names["A"].endswith(" (A)") and names["B"].endswith(" (B)")
