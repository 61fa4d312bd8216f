"""The learned motion prior: image -> spectral volume (paper §4), its training data and models."""
