#!/usr/bin/env python3
"""A stand-in for `flatpak-spawn --host` (installed as .../flatpak-spawn by the GIMP tests).

Like the real one, the command it starts does not inherit the caller's environment: only PATH,
HOME and the --env=KEY=VALUE options reach it, and --directory= sets its working folder. It
records its command line in $NST_FAKE_SPAWN_LOG (one JSON line per call) for the tests.
--watch-bus (the host process dies with flatpak-spawn) holds by itself here: exec replaces this
process with the command.
"""

import json
import os
import sys

args = sys.argv[1:]
env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8"}
cwd = None
if os.environ.get("NST_FAKE_SPAWN_LOG"):
    with open(os.environ["NST_FAKE_SPAWN_LOG"], "a") as fh:
        fh.write(json.dumps(sys.argv) + "\n")
while args and args[0].startswith("--"):
    option = args.pop(0)
    if option.startswith("--env="):
        key, _, value = option[len("--env=") :].partition("=")
        env[key] = value
    elif option.startswith("--directory="):
        cwd = option[len("--directory=") :]
    elif option not in ("--host", "--watch-bus"):
        sys.exit(f"fake flatpak-spawn: unknown option {option}")
if not args:
    sys.exit("fake flatpak-spawn: no command")
if cwd:
    os.chdir(cwd)
os.execvpe(args[0], args, env)
