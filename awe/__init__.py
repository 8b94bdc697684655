"""The ``awe`` command line: the composition root, the only code that knows all four packages."""
