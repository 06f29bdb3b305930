"""Small helpers every layer may use: the Keras backend, seeding, quiet TensorFlow import, thread settings,
progress bars, plots, TensorBoard logs."""
