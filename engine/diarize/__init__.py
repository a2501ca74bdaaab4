"""Shared-microphone diarization: who of several people on one device speaks when.

`embed` (speaker encoder on onnxruntime, shared and stateless), `cluster` (online
centroids, identities never relabelled) and `online` (`SharedMicDiarizer`, one per
stream, explicit state with `reset()`) are kept apart; `live` is the live engine's stage
(the stream's VAD speech in, sub-participants' segments out, one batched encoder call
per tick for every shared mic of the engine). See MODEL_CARD.md.
"""
