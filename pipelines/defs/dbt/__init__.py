"""dbt: behavioral segments and KPIs built from raw.events."""

import dagster as dg

from pipelines.defs.dbt.assets import dbt_models
from pipelines.defs.dbt.resources import dbt_resource

defs = dg.Definitions(assets=[dbt_models], resources={"dbt": dbt_resource()})
