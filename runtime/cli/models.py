"""``pose3d-rt models list | fetch NAME... | path NAME``: the model zoo from the command line."""
from __future__ import annotations

import argparse

from .. import hub
from ..errors import Pose3DError


def cmd_models(args: argparse.Namespace) -> int:
    action = args.models_command
    if action is None or action == "list":
        print(hub.describe(hub.list_models(getattr(args, "role", None))))
        return 0
    if action == "path":
        print(hub.path(args.name))
        return 0
    names = list(args.names)
    if args.all_defaults:
        names += [hub.default_alias(role) for role in hub.Role]
    if not names:
        raise Pose3DError("models fetch: give one or more aliases or URLs, or --all-defaults")
    for name in names:
        if args.no_export or hub.is_url(name):  # a bare URL has no known role to export it for
            out = hub.fetch(name, progress=not args.no_progress)
        else:
            out = hub.fetch_and_export(name, progress=not args.no_progress)
        print(out)
    return 0
