"""Control plane: the local HTTP control API, the OBS controller, config settings and
the live status line."""
