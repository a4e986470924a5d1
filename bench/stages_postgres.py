"""The pipeline's stages again on PostgreSQL (`bench/run.py --engine postgres`): the same
landing files, clocks and code as the DuckDB stages, into the size's database on the run's
throwaway server (config `postgres_url`; `postgres_jsonl_url` for the JSONL ingest, whose
database is thrown away like the DuckDB one)."""

from __future__ import annotations

from bench.stage_kit import Config, Result
from bench.stages_load import backdate, full_build, incremental, ingest
from bench.stages_send import plan_send


def stage_ingest_jsonl_postgres(cfg: Config) -> Result:
    return ingest(cfg, "landing_jsonl", cfg.postgres_settings("postgres_jsonl_url"))


def stage_ingest_parquet_postgres(cfg: Config) -> Result:
    return ingest(cfg, "landing_parquet", cfg.postgres_settings())


def stage_backdate_postgres(cfg: Config) -> Result:
    return backdate(cfg.postgres_settings())


def stage_dbt_full_postgres(cfg: Config) -> Result:
    return full_build(cfg, cfg.postgres_settings())


def stage_plan_send_postgres(cfg: Config) -> Result:
    return plan_send(cfg, cfg.postgres_settings())


def stage_dbt_incremental_postgres(cfg: Config) -> Result:
    """One more day arrives: ingest it, then `dbt build` at T0 + 1 day."""
    return incremental(cfg, cfg.postgres_settings())
