"""`bis simulate`: synthetic users in a closed loop with the real pipeline (never real data)."""

from pipelines.lib.simulation.loop import (
    BANNER,
    SimulationConfig,
    SimulationResult,
    run_simulation,
    simulation_warehouse,
)

__all__ = [
    "BANNER",
    "SimulationConfig",
    "SimulationResult",
    "run_simulation",
    "simulation_warehouse",
]
