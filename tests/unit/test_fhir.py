from mediator.openimis import fhir
from tests import samples


def test_record_key_prefers_uuid_identifier_over_id():
    resource = {
        "id": "slug",
        "identifier": [samples.code_identifier("123"), samples.uuid_identifier("ABCDEF01-0000-0000-0000-000000000001")],
    }
    assert fhir.record_key(resource) == "abcdef01-0000-0000-0000-000000000001"


def test_record_key_falls_back_to_resource_id():
    assert fhir.record_key({"id": "john-doe", "identifier": [samples.code_identifier("123")]}) == "john-doe"
    assert fhir.record_key({"identifier": []}) is None


def test_business_code_is_any_identifier_but_the_uuid():
    idents = [samples.uuid_identifier("u"), samples.code_identifier("104000001")]
    assert fhir.business_code(idents) == "104000001"


def test_reference_key_reads_identifier_then_reference():
    assert (
        fhir.reference_key(samples.location_ref("b2e5b0c1-3d57-408c-b7de-11511ce1cbcf"))
        == "b2e5b0c1-3d57-408c-b7de-11511ce1cbcf"
    )
    assert fhir.reference_key({"reference": "Location/Jamula-village"}) == "Jamula-village"
    assert fhir.reference_key({"reference": "Patient/abc/_history/2"}) == "abc"
    assert (
        fhir.reference_key({"reference": "urn:uuid:AAAAAAAA-0000-0000-0000-000000000001"})
        == "aaaaaaaa-0000-0000-0000-000000000001"
    )
    assert fhir.reference_key({"reference": "nonsense"}) is None


def test_extensions_match_on_last_segment_whatever_the_url_style():
    exts = [
        {
            "url": "https://openimis.github.io/openimis_fhir_r4_ig//StructureDefinition/patient-is-head",
            "valueBoolean": True,
        }
    ]
    assert fhir.extension_value(exts, "patient-is-head", "Boolean") is True
    html = [{"url": "https://x/StructureDefinition-patient-is-head.html", "valueBoolean": False}]
    assert fhir.extension_value(html, "patient-is-head", "Boolean") is False
