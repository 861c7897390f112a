"""The API contract through the real authorizer and api handlers, in-process, against moto."""

from api_contract import *  # noqa: F403 - the shared contract tests run here too
