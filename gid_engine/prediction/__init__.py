"""A spectral volume from one still: the learned motion prior sampled through onnxruntime (paper §4),
started from the Eulerian field where the model can."""
