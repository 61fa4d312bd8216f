"""Loops: bake the animated image as a seamless PNG sequence or as displacement maps for the
compositor's Displace node, and play a baked loop in the compositor (the settings are the
image's, ``addon/props.py``; the buttons are in the GID panel, ``addon/ui.py``)."""

from . import ops

CLASSES: list[type] = [*ops.CLASSES]
