"""One module per data kind (vocoder, language model, translation): evaluation, sampling and generation."""
