"""Executors: one per side-effecting node kind, each fed from its own ``awe.tasks.<kind>`` topic.

They run on librdkafka consumers, not as Faust agents, under either orchestrator (docs/architecture.md).
"""
