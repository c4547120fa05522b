"""The installer's command line."""

import argparse
import errno
import os
import sys

from .backend import NAMES, TORCH_INDEX_ENV
from .backend_choice import CPU_FASTEST, LINUX_NVIDIA_BACKEND
from .common import EXIT_ERROR, EXIT_PERMISSION, PROG, InstallError, detect_platform
from .flatpak import GRANT_COMMAND
from .installer import Installer
from .manifest import uninstall
from .weights import WEIGHTS_FILENAME


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="install.py",
        description="Install (or upgrade) the nst-keras engine in its own virtualenv, its GIMP 3 plug-in and the "
        "VGG19 weights. Run it again to upgrade; --uninstall removes what it created.",
        epilog="Exit codes: 0 done (warnings included), 1 error, 2 usage, 3 Python too old, 4 no GIMP 3 found "
        "(the engine is installed), 5 no write permission, 6 pip failed.",
    )
    parser.add_argument(
        "--gimp-dir",
        action="append",
        metavar="DIR",
        help="a GIMP 3 profile folder or its plug-ins folder, instead of looking for GIMP (repeatable)",
    )
    parser.add_argument(
        "--venv", metavar="DIR", help="where the engine's virtualenv goes (default: the user data folder)"
    )
    parser.add_argument(
        "--backend",
        default="auto",
        metavar="NAME[:cpu|:gpu]",
        help="the Keras backend to install: tensorflow, torch or jax, optionally with :cpu or :gpu (default: auto, "
        "the best one for this computer: PyTorch with CUDA on Windows with an NVIDIA GPU, PyTorch on Apple silicon, "
        f"{NAMES[LINUX_NVIDIA_BACKEND]} with CUDA on Linux with an NVIDIA GPU, else {NAMES[CPU_FASTEST]} on the CPU)",
    )
    parser.add_argument(
        "--torch-index",
        metavar="URL",
        help="the package index PyTorch comes from: the wheel index that PyTorch's website's install selector "
        f"gives (CUDA wheels for an NVIDIA GPU on Windows, CPU wheels on Linux); also ${TORCH_INDEX_ENV}",
    )
    device = parser.add_mutually_exclusive_group()
    device.add_argument(
        "--gpu",
        dest="device",
        action="store_const",
        const="gpu",
        help="insist on the GPU (an error if no backend can use one here): with --backend NAME, NAME:gpu",
    )
    device.add_argument(
        "--cpu",
        dest="device",
        action="store_const",
        const="cpu",
        help=f"install for the CPU only ({NAMES[CPU_FASTEST]}, or --backend NAME's): with --backend NAME, NAME:cpu",
    )
    parser.set_defaults(device="auto")
    parser.add_argument(
        "--weights-file",
        metavar="FILE",
        help=f"import a downloaded {WEIGHTS_FILENAME} (md5 checked) instead of downloading it",
    )
    parser.add_argument(
        "--flatpak-grant",
        action="store_true",
        help="let the Flatpak GIMP start the engine on the host (runs: {})".format(" ".join(GRANT_COMMAND)),
    )
    parser.add_argument(
        "--force-snap",
        action="store_true",
        help="copy the plug-in into a Snap GIMP too (its confinement will most likely block it)",
    )
    parser.add_argument(
        "--env",
        action="append",
        metavar="KEY=VALUE",
        help="an environment variable for the engine, stored in the plug-in's settings (repeatable)",
    )
    parser.add_argument("--list", action="store_true", help="list the GIMP 3 installations found and stop")
    parser.add_argument("--uninstall", action="store_true", help="remove everything the installer created")
    parser.add_argument("--dry-run", action="store_true", help="print every action and change nothing")
    parser.add_argument("-y", "--yes", action="store_true", help="do not ask questions")
    parser.add_argument("-v", "--verbose", action="store_true", help="show all of pip's output")
    parser.add_argument(
        "--wheelhouse",
        metavar="DIR",
        help="install offline: pip takes every package from the wheel files in DIR and nothing from the internet "
        "(--no-index --find-links DIR). Make DIR on a machine with internet, same OS and Python version: "
        'python3 -m pip download -d DIR setuptools wheel "tensorflow>=2.16" keras numpy "pillow>=10" scipy '
        'pypng tifffile (with --backend torch or jax: "torch>=2.5" or "jax>=0.4.30" instead of TensorFlow); '
        "add --weights-file FILE (the VGG19 file, downloaded there too) for the weights",
    )
    adv = parser.add_argument_group("advanced (tests, experts)")
    adv.add_argument("--skip-weights", action="store_true", help="do not fetch the weights")
    adv.add_argument("--skip-doctor", action="store_true", help="do not run `python -m nst_keras doctor` at the end")
    adv.add_argument("--no-deps", action="store_true", help="install only nst-keras itself (pip --no-deps)")
    adv.add_argument(
        "--pip-args", metavar="ARGS", help='more arguments for pip install, e.g. "--no-index --find-links DIR"'
    )
    adv.add_argument(
        "--system-site-packages",
        action="store_true",
        help="let the virtualenv see the packages of the Python running the installer",
    )
    # Hidden, for tests: the platform whose folder layout is used, the md5 a --weights-file must have, and the
    # facts the backend is chosen from (platform.machine(), an NVIDIA GPU) instead of this machine's.
    parser.add_argument("--platform", choices=("linux", "macos", "windows"), help=argparse.SUPPRESS)
    parser.add_argument("--weights-md5", help=argparse.SUPPRESS)
    parser.add_argument("--machine", help=argparse.SUPPRESS)
    parser.add_argument("--nvidia", choices=("yes", "no"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for item in args.env or []:
        if "=" not in item or not item.partition("=")[0]:
            parser.error(f"--env: expected KEY=VALUE, received {item!r}")
    if args.wheelhouse:
        args.wheelhouse = os.path.abspath(os.path.expanduser(args.wheelhouse))
        if not args.uninstall and not os.path.isdir(args.wheelhouse):
            parser.error(f"--wheelhouse: expected a folder of wheel files, received {args.wheelhouse}")
    if args.torch_index is not None and not args.torch_index.strip():
        parser.error("--torch-index: expected the address of a package index, received an empty value")
    if args.uninstall and (args.weights_file or args.list):
        parser.error("--uninstall cannot be combined with --weights-file or --list")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    plat = args.platform or detect_platform()
    try:
        if args.uninstall:
            return uninstall(args, plat)
        return Installer(args, plat).run()
    except InstallError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr, flush=True)
        for line in error.detail:
            print("    " + line, file=sys.stderr)
        return error.code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except OSError as error:  # a file operation that failed after the checks (a full disk, a changed permission)
        where = f" ({error.filename})" if error.filename else ""
        print(f"{PROG}: error: {error.strerror or error}{where}", file=sys.stderr, flush=True)
        return EXIT_PERMISSION if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS) else EXIT_ERROR
