"""The wire contract of awe: commands, events, tasks, workflow definitions, and the pure fold ``evolve``.

Pure: no I/O, and no imports of the other packages.
"""
