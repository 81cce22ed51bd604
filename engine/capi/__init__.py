"""The engine's C ABI (``avatar_engine.h``, ``libavatar_engine``): see docs/sdk.md.

Build the library with ``python -m engine.capi.build --out DIR``; :mod:`.impl` is what
each C call does, :mod:`.boot` the start-up code baked into the library.
"""
