"""Helpers for tests/test_weights.py: small .h5 weights files and a local HTTP server (no internet needed)."""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading

import h5py
import numpy as np

# Conv shapes (kernel, bias) of the first layers of Keras's VGG16 and VGG19 (they agree up to block3_conv3).
VGG_SHAPES = {
    "block1_conv1": ((3, 3, 3, 64), (64,)),
    "block1_conv2": ((3, 3, 64, 64), (64,)),
    "block2_conv1": ((3, 3, 64, 128), (128,)),
    "block2_conv2": ((3, 3, 128, 128), (128,)),
}


def random_arrays(shapes: dict, seed: int = 0) -> dict:
    """{layer name: [kernel, bias]} of float32 values, seeded."""
    rng = np.random.default_rng(seed)
    return {
        name: [rng.normal(0, 0.1, size=k).astype("float32"), rng.normal(0, 0.1, size=b).astype("float32")]
        for name, (k, b) in shapes.items()
    }


def write_legacy_h5(path, arrays: dict, *, whole_model: bool = False, slash_names: bool = False) -> None:
    """Write `arrays` the way Keras's legacy ImageNet VGG files are laid out.

    Root attributes layer_names (bytes), backend, keras_version; one group per layer (pooling layers included, with
    no weights) whose attribute weight_names lists its datasets: "block1_conv1_W_1:0", "block1_conv1_b_1:0" as in the
    published notop files, or "block1_conv1/kernel:0" (nested groups) as later Keras 2 versions wrote them.
    whole_model: put everything under a "model_weights" group, as model.save("x.h5") did.
    """
    with h5py.File(path, "w") as f:
        root = f.create_group("model_weights") if whole_model else f
        names = []
        for name, (kernel, bias) in arrays.items():
            group = root.create_group(name)
            names.append(name)
            if slash_names:
                weight_names = [f"{name}/kernel:0", f"{name}/bias:0"]
            else:
                weight_names = [f"{name}_W_1:0", f"{name}_b_1:0"]
            for wname, value in zip(weight_names, (kernel, bias)):
                group.create_dataset(wname, data=value)
            group.attrs["weight_names"] = np.array([w.encode("utf8") for w in weight_names])
            block = name.split("_")[0]
            if name.endswith("conv2") and block in ("block1", "block2"):
                pool = f"{block}_pool"
                root.create_group(pool).attrs["weight_names"] = np.array([], dtype="S1")
                names.append(pool)
        root.attrs["layer_names"] = np.array([n.encode("utf8") for n in names])
        root.attrs["backend"] = b"tensorflow"
        root.attrs["keras_version"] = b"2.2.4"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: FileServer

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.server.requests.append(self.path)
        body = self.server.files.get(self.path.rsplit("/", 1)[-1])
        if body is None:
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class FileServer(http.server.ThreadingHTTPServer):
    """Serves `files` ({name: bytes}) at http://127.0.0.1:PORT/any/path/NAME and records the paths requested."""

    daemon_threads = True

    def __init__(self, files: dict):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files = dict(files)
        self.requests: list = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/mirror"


@contextlib.contextmanager
def serve(files: dict):
    server = FileServer(files)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: connecting is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/mirror"


@contextlib.contextmanager
def silent_server():
    """A URL on 127.0.0.1 that accepts connections (the kernel does) but never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(4)
        yield f"http://127.0.0.1:{s.getsockname()[1]}/mirror"
