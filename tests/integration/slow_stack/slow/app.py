"""Sleeps SLOW_SECONDS, then writes the batch's bodies to SLOW_DONE_FILE: the effect a timeout must prevent."""

import os
import time
from pathlib import Path
from typing import Any


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    time.sleep(float(os.environ["SLOW_SECONDS"]))
    Path(os.environ["SLOW_DONE_FILE"]).write_text("\n".join(record["body"] for record in event["Records"]))
    return {"batchItemFailures": []}
