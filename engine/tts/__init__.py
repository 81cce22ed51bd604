"""Text to speech with phone timings (espeak-ng through its C library)."""
