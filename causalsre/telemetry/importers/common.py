"""What every importer shares, by concept, re-exported here for callers that import it from one place.

* :mod:`.files` - reading: regular files, gzip, the size cap, strict JSON, run-id fingerprints
* :mod:`.checks` - numbers and times: finite, in range, epoch seconds between 2000 and 2200
* :mod:`.frames` - per-request times -> checked ``requests`` rows
* :mod:`.writer` - :class:`Batch` and the one transaction a command's batches are written in

An importer is a pure function ``parse(paths, ...) -> list[Batch]`` that reads and validates everything
first; :func:`write_batches` then writes all batches of one command in a single transaction. So a bad
file raises :class:`UserError` before the database is even opened, and a failed write rolls back.
"""

from __future__ import annotations

from causalsre.telemetry.importers.checks import (MAX_EPOCH_S, MAX_LATENCY_S, MAX_TOKENS, MIN_EPOCH_S, NS,
                                                  epoch_seconds, number, parse_time, to_datetime)
from causalsre.telemetry.importers.files import existing_file, files_in, fingerprint, read_bytes, read_json, read_text
from causalsre.telemetry.importers.frames import REQUEST_COLUMNS, STATUSES, requests_frame
from causalsre.telemetry.importers.writer import Batch, run_clock, write_batches

__all__ = ["MAX_EPOCH_S", "MAX_LATENCY_S", "MAX_TOKENS", "MIN_EPOCH_S", "NS", "REQUEST_COLUMNS", "STATUSES", "Batch",
           "epoch_seconds", "existing_file", "files_in", "fingerprint", "number", "parse_time", "read_bytes",
           "read_json", "read_text", "requests_frame", "run_clock", "to_datetime", "write_batches"]
