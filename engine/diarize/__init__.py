"""Shared-microphone diarization: who of several people on one device speaks when.

`embed` (speaker encoder on onnxruntime, shared and stateless), `cluster` (online
centroids, identities never relabelled) and `online` (`SharedMicDiarizer`, one per
stream, explicit state with `reset()`) are kept apart. See MODEL_CARD.md.
"""
