"""groupsense engine: per-participant audio in, engagement signals out.

Data flows one way: frames -> per-stream DSP/VAD -> per-session aggregation ->
privacy filter -> publishers. Importing this package has no side effects.
"""

__version__ = "0.1.0"
