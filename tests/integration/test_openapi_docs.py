"""docs/api/openapi.json is the document the API serves at /v3/openapi.json, and docs/api/reference.md its
page, as docs/generate.py writes them."""

from api_client import ApiClient
from paths import REPO
from unit.test_docs import REGENERATE, generator

API_DOCS = REPO / "docs" / "api"


def test_the_docs_openapi_document_is_the_one_the_api_serves(api: ApiClient) -> None:
    generate = generator()
    served = api.get("/v3/openapi.json").json()
    assert (API_DOCS / "openapi.json").read_text(encoding="utf-8") == generate.openapi_json(served), REGENERATE
    assert (API_DOCS / "reference.md").read_text(encoding="utf-8") == generate.reference_md(served), REGENERATE
