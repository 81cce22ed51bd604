"""The ``avatar-vcam`` command line: one module per command group (entry: :mod:`.main`)."""
