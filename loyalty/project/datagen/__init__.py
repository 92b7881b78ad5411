"""Realistic program data at scale (``manage.py generate_data``): plan, simulation, sinks, load.

``generate(plan)`` makes the rows; ``Plan`` says how many, from which seed, ending when.
"""

from loyalty.project.datagen.load import generate
from loyalty.project.datagen.plan import Plan

__all__ = ["Plan", "generate"]
