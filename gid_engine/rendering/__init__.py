"""From a still and its motion to frames (paper §5): the Fourier series evaluated per frame, softmax
splatting or the neural renderer through onnxruntime, and the sequences, loops and displacement maps
written from them."""
