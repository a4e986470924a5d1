"""Deterministic behavioural simulator that writes Segment-spec sample events.

`generate_sample` simulates users one at a time (personas.py, simulate.py), mixes in
at-least-once duplicates and, on request, malformed records (bad_records.py), and streams
them to one jsonl / jsonl.gz / parquet / csv file (writers.py).
"""

from pipelines.lib.sample_data.bad_records import BAD_RECORD_CODES
from pipelines.lib.sample_data.generate import GenerateResult, generate_sample

__all__ = ["BAD_RECORD_CODES", "GenerateResult", "generate_sample"]
