"""Cross-stream bleed suppression and shared-microphone diarization (later issues)."""
