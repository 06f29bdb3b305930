"""Small helpers every layer may use: quiet TensorFlow import, thread settings, progress bars, plots."""
