"""What the API's bodies share: how they are checked and built, a name's bounds, and the page of a list."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# Validators are built at first use, not at import: a cold start of the API builds only what its first
# request reads and answers with.
ANSWER = ConfigDict(defer_build=True)
# An error's text never repeats what was sent: a body may hold secrets (an endpoint's credentials, a
# header's value) beside the field it refuses, and an error that reaches a log would show them.
REQUEST_BODY = ConfigDict(
    strict=True, extra="forbid", populate_by_name=True, defer_build=True, hide_input_in_errors=True
)

Name = Annotated[str, StringConstraints(min_length=1, max_length=255)]


class PageMeta(BaseModel):
    model_config = ANSWER

    next_cursor: str | None = Field(description="Pass as `after` for the next page; null on the last page.")


class Page[ItemT](BaseModel):
    model_config = ANSWER

    data: list[ItemT]
    meta: PageMeta
