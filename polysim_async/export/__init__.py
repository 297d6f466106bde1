"""Export every fill of many accounts to Parquet, CSV or NDJSON: resumable, incremental.

Use it through ``client.partner.accounts.export(account_ids, out_dir, ...)``.
This package also holds the schema constants and helpers a reader may want:

* :data:`COLUMNS`: column name → meaning, in file order.
* :data:`MONEY_PRECISION`, :data:`MONEY_SCALE`: the Parquet money type,
  ``decimal128(38, 18)``.
* :func:`parquet_schema`: the Parquet files' ``pyarrow.Schema`` (needs the
  ``parquet`` extra).
"""

from ._errors import ExportDirectoryError, ExportError, ExportValueError
from ._progress import ExportProgress, ExportSummary, estimate_eta
from ._run import COMMIT_INTERVAL, DEFAULT_PART_ROWS, ProgressCallback
from ._schema import COLUMNS, MONEY_PRECISION, MONEY_SCALE, SCHEMA_VERSION, parquet_schema
from ._writers import ExportFormat

__all__ = [
    "COLUMNS",
    "COMMIT_INTERVAL",
    "DEFAULT_PART_ROWS",
    "MONEY_PRECISION",
    "MONEY_SCALE",
    "SCHEMA_VERSION",
    "ExportDirectoryError",
    "ExportError",
    "ExportFormat",
    "ExportProgress",
    "ExportSummary",
    "ExportValueError",
    "ProgressCallback",
    "estimate_eta",
    "parquet_schema",
]
