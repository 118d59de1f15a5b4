"""The telemetry contract between the harness (producer) and the analysis (consumer).

The schema is a sequence of numbered SQL migrations in ``sql/``; every reader checks the version.
"""

from causalsre.telemetry.schema import (
    SCHEMA_VERSION,
    connect_readonly,
    connect_writable,
    migrate,
    schema_version,
)

__all__ = ["SCHEMA_VERSION", "connect_readonly", "connect_writable", "migrate", "schema_version"]
