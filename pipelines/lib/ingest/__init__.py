"""Event ingestion: landing files → raw.events / raw.events_rejected / raw.ingested_files."""

from pipelines.lib.ingest.files import LandingFile, discover_landing_files, file_sha256
from pipelines.lib.ingest.load import (
    FileReport,
    IngestSummary,
    ingest_files,
    ingest_landing_folder,
)

__all__ = [
    "FileReport",
    "IngestSummary",
    "LandingFile",
    "discover_landing_files",
    "file_sha256",
    "ingest_files",
    "ingest_landing_folder",
]
