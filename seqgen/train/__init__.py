"""Training: the loop around Keras ``fit``, configs' optimizers and schedules, replica strategies and
Parallel WaveNet distillation (TensorFlow side; imported only when a run trains)."""
