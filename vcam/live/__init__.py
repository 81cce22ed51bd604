"""The live path: capture on the input's sample clock, the presenter that sends frames on the
voice's clock, the delayed voice output, and the sound-server and device helpers."""
