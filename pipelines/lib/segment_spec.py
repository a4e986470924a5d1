"""The Segment record layout shared by the sample generator and the readers."""

# The columns of a Segment record in tabular files (CSV, Parquet); properties, traits and
# context hold the JSON text of their object.
SEGMENT_COLUMNS: tuple[str, ...] = (
    "messageId",
    "type",
    "event",
    "name",
    "userId",
    "anonymousId",
    "timestamp",
    "receivedAt",
    "properties",
    "traits",
    "context",
)
