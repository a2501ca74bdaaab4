"""Audio front end: decode, resample once to 16 kHz mono, reframe into 10 ms hops."""

from engine.audio.decode import OpusDecoder, PcmDecoder, decode_file, probe_file
from engine.audio.framer import Framer
from engine.audio.resample import QUALITY, Resampler
from engine.audio.ring import RingBuffer

__all__ = [
    "QUALITY",
    "Framer",
    "OpusDecoder",
    "PcmDecoder",
    "Resampler",
    "RingBuffer",
    "decode_file",
    "probe_file",
]
