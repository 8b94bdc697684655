"""Executors: one Faust agent per side-effecting node kind, each on its own ``awe.tasks.<kind>`` topic."""
