"""Interactive dynamics (paper §6): the spectral volume as a modal basis, pokes, and the deterministic
simulation keyed to the frame."""
