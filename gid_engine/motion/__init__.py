"""The spectral volume (paper §3): the motion itself, its file, its seamless-loop and normalisation
transforms, region masks, and its extraction from a reference clip by optical flow."""
