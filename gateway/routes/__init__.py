"""The REST routes of ``/v1``, one module per resource, and the unauthenticated operational ones."""
