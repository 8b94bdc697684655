"""The Faust agents: the orchestrator (``decide`` and its edge), the executors, and the durable timers."""
