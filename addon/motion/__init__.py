"""Motion: predict it from the still with the learned prior, or extract it from a reference clip;
either way a ``motion.gidsv`` the image's ``gid.motion_path`` then names (the settings are the
image's, ``addon/props.py``; the buttons are in the GID panel, ``addon/ui.py``)."""

from . import ops

CLASSES: list[type] = [*ops.CLASSES]
