"""What only training and evaluation of Audio2Motion use: the espeak-ng corpus, phone targets,
augmentation, the trainer, calibration and the lip-sync metrics. A running avatar never
imports this package (``train-a2m`` and bench/ do)."""
