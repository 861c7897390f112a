"""docs/api/openapi.json is the document the API serves at /v3/openapi.json, and docs/api/reference.md its
page, as docs/generate.py writes them."""

import importlib.util

from api_client import ApiClient
from paths import REPO

API_DOCS = REPO / "docs" / "api"


def test_the_docs_openapi_document_is_the_one_the_api_serves(api: ApiClient) -> None:
    spec = importlib.util.spec_from_file_location("docs_generate", REPO / "docs" / "generate.py")
    assert spec and spec.loader
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    served = api.get("/v3/openapi.json").json()
    stale = "out of date: run `.venv/bin/python docs/generate.py` and commit what it writes"
    assert (API_DOCS / "openapi.json").read_text(encoding="utf-8") == generate.openapi_json(served), stale
    assert (API_DOCS / "reference.md").read_text(encoding="utf-8") == generate.reference_md(served), stale
