"""Orchestration above the analyses: runs that string several analyses together and write their
results (the demo, the diffing run, the refusal-direction and steering experiments).

Each analysis lives in its own room and knows nothing of these; a workflow imports analyses,
writes through :mod:`interp.artifacts`, and is what the CLI commands call.
"""

from interp.workflows.demo import DemoConfig, run_demo
from interp.workflows.diffing import run_diffing
from interp.workflows.refusal import RefusalResult, refusal_direction
from interp.workflows.steering import SteeringResult, steering_sweep

__all__ = ["DemoConfig", "run_demo", "run_diffing", "RefusalResult", "refusal_direction", "SteeringResult",
           "steering_sweep"]
