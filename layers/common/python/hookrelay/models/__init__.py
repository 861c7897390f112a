"""The API's request and response bodies (Yousign field names, SPEC §2), checked by pydantic: a module per
resource, and `common` for what they share.

What they describe is stored and passed between the functions as hookrelay.records: only the API (and the
operator's CLI, which opens portal sessions) imports this package.
"""
