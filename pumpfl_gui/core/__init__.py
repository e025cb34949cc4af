"""Work code with no Qt and no Flower: data, simulator, windows, model, training, detection."""
