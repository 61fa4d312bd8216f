"""Install an extension zip into this Python's ``bpy`` as a user does, with no network.

``python tests/installed/install.py ZIP`` runs *Install from Disk* (``extensions.package_install_files``
into the "user_default" repository, enabled on install) in the Blender user folders that ``HOME`` and
``BLENDER_USER_RESOURCES`` point at, then saves the preferences so later processes start with the
extension enabled, as Blender does for a user. Exits 1 with Blender's own message when the install
or the enabling fails; prints one ``INSTALLED {json}`` line otherwise.
"""

from __future__ import annotations

import json
import socket
import sys


def _no_network(*args: object, **kwargs: object) -> None:
    raise OSError("network access during the install (it must be offline)")


def main(zip_path: str, package: str = "bl_ext.user_default.gid") -> int:
    socket.socket.connect = _no_network  # type: ignore[method-assign]
    import bpy

    try:
        result = bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default",
                                                          enable_on_install=True)
    except RuntimeError as exc:
        print(f"install failed on Blender {bpy.app.version_string}: {str(exc).strip()}", file=sys.stderr)
        return 1
    import addon_utils  # importable once bpy is

    loaded, enabled = addon_utils.check(package)
    if result != {"FINISHED"} or not (loaded and enabled):
        print(f"install of {zip_path} on Blender {bpy.app.version_string}: {sorted(result)}, "
              f"loaded={loaded}, enabled={enabled}", file=sys.stderr)
        return 1
    bpy.ops.wm.save_userpref()
    print("INSTALLED " + json.dumps({"blender": bpy.app.version_string, "package": package,
                                     "python": "%d.%d" % sys.version_info[:2]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
