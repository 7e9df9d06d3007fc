"""The opt-in ONNX transformer backend, on a tiny randomly initialised model and tokenizer
that the test builds itself (embedding → masked mean-pool → linear); never a download."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

np = pytest.importorskip("numpy")
onnx = pytest.importorskip("onnx", reason="the onnx package builds the test model")
pytest.importorskip("onnxruntime", reason="no onnxruntime wheel for this platform")
tokenizers = pytest.importorskip("tokenizers", reason="no tokenizers wheel for this platform")

from monitor.classify import Classifier  # noqa: E402
from monitor.classify.base import ClassifierError  # noqa: E402
from monitor.classify.transformer import TransformerBackend  # noqa: E402
from tests.conftest import base_config_dict  # noqa: E402

VOCAB = ["[UNK]", "good", "bad", "service", "acme", "बहुत", "खराब", "ভালো", "خوب", "!"]
DIM = 8


def build_model(
    directory: Path,
    id2label: dict[str, str] | None = None,
    seed: int = 0,
    *,
    metadata: dict[str, str] | None = None,
    model_version: int = 0,
    config: dict[str, Any] | None = None,
) -> Any:
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    embedding = rng.normal(size=(len(VOCAB), DIM)).astype(np.float32)
    weights = rng.normal(size=(DIM, 3)).astype(np.float32)
    bias = rng.normal(size=(3,)).astype(np.float32)
    nodes = [
        helper.make_node("Gather", ["embedding", "input_ids"], ["vectors"]),
        helper.make_node("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["mask_f", "axis2"], ["mask3"]),
        helper.make_node("Mul", ["vectors", "mask3"], ["masked"]),
        helper.make_node("ReduceSum", ["masked", "axis1"], ["summed"], keepdims=0),
        helper.make_node("ReduceSum", ["mask3", "axis1"], ["count"], keepdims=0),
        helper.make_node("Div", ["summed", "count"], ["pooled"]),
        helper.make_node("MatMul", ["pooled", "weights"], ["projected"]),
        helper.make_node("Add", ["projected", "bias"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny-sentiment",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])],
        initializer=[
            numpy_helper.from_array(embedding, "embedding"),
            numpy_helper.from_array(weights, "weights"),
            numpy_helper.from_array(bias, "bias"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
            numpy_helper.from_array(np.array([2], dtype=np.int64), "axis2"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    model.model_version = model_version
    for key, value in (metadata or {}).items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    directory.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(directory / "model.onnx"))

    from tokenizers import Tokenizer, models, pre_tokenizers

    tokenizer = Tokenizer(
        models.WordLevel({word: i for i, word in enumerate(VOCAB)}, unk_token="[UNK]")
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()]
    )
    tokenizer.save(str(directory / "tokenizer.json"))
    if id2label is not None or config is not None:
        written = dict(config or {}) | ({"id2label": id2label} if id2label is not None else {})
        (directory / "config.json").write_text(json.dumps(written))
    return embedding, weights, bias


def expected(words: list[str], embedding: Any, weights: Any, bias: Any) -> Any:
    ids = [VOCAB.index(w) if w in VOCAB else 0 for w in words]
    logits = embedding[ids].mean(axis=0) @ weights + bias
    exp = np.exp(logits - logits.max())
    return exp / exp.sum()


def test_scores_are_the_models_softmax(tmp_path: Path) -> None:
    embedding, weights, bias = build_model(tmp_path / "m")
    backend = TransformerBackend(tmp_path / "m", ["en", "hi"])
    result = backend.score("acme service bad !", "en")
    want = expected(["acme", "service", "bad", "!"], embedding, weights, bias)
    got = [result.negative, result.neutral, result.positive]
    assert np.allclose(got, want, atol=1e-5)
    assert result.backend == "transformer/m"
    unknown = backend.score("बहुत खराब zzz", "hi")
    assert np.allclose(
        [unknown.negative, unknown.neutral, unknown.positive],
        expected(["बहुत", "खराब", "zzz"], embedding, weights, bias),
        atol=1e-5,
    )


def test_label_order_comes_from_config_json(tmp_path: Path) -> None:
    embedding, weights, bias = build_model(
        tmp_path / "m", {"0": "Positive", "1": "Negative", "2": "Neutral"}
    )
    result = TransformerBackend(tmp_path / "m", ["en"]).score("good service", "en")
    p = expected(["good", "service"], embedding, weights, bias)
    assert np.allclose([result.positive, result.negative, result.neutral], p, atol=1e-5)


@pytest.mark.parametrize(
    ("metadata", "model_version", "config", "label"),
    [
        ({"version": "2024.06-int8"}, 0, None, "transformer/m@2024.06-int8"),
        ({}, 3, None, "transformer/m@3"),
        (
            {},
            0,
            {
                "_name_or_path": "cardiffnlp/twitter-xlm-roberta-base-sentiment",
                "version": "2",
                "id2label": {"0": "negative", "1": "neutral", "2": "positive"},
            },
            "transformer/twitter-xlm-roberta-base-sentiment@2",
        ),
        ({"name": "acme-sentiment", "version": "7"}, 1, None, "transformer/acme-sentiment@7"),
        ({}, 0, None, "transformer/m"),  # nothing in the metadata: the directory is all we have
    ],
)
def test_label_names_the_model_version_from_its_metadata(
    tmp_path: Path,
    metadata: dict[str, str],
    model_version: int,
    config: dict[str, Any] | None,
    label: str,
) -> None:
    build_model(tmp_path / "m", metadata=metadata, model_version=model_version, config=config)
    backend = TransformerBackend(tmp_path / "m", ["en"])
    assert backend.label == label
    assert backend.score("good service", "en").backend == label


def test_long_input_is_truncated_not_fatal(tmp_path: Path) -> None:
    build_model(tmp_path / "m")
    backend = TransformerBackend(tmp_path / "m", ["en"], max_tokens=8)
    assert backend.score("good " * 5000, "en").label in ("negative", "neutral", "positive")
    assert backend.score("", "en").backend == "transformer/m"


def test_config_routes_its_languages_to_the_transformer(tmp_path: Path) -> None:
    from monitor.config import Config

    build_model(tmp_path / "m")
    data = base_config_dict(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    data["classify"] = {
        "backend": "transformer",
        "transformer": {"model_dir": str(tmp_path / "m"), "languages": ["en", "hi"]},
    }
    classifier = Classifier.from_config(Config.model_validate(data), strict=True)
    assert classifier.sentiment("good service", "en").backend == "transformer/m"
    assert classifier.sentiment("বাজে", "bn").backend == "lexicon/1-bn"  # not in its list


def test_missing_or_broken_model_explains_itself(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from monitor.config import Config

    with pytest.raises(ClassifierError, match=r"model\.onnx not found"):
        TransformerBackend(tmp_path / "absent", ["en"])
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "model.onnx").write_bytes(b"garbage")
    (tmp_path / "bad" / "tokenizer.json").write_text("{}")
    with pytest.raises(ClassifierError, match="cannot load the transformer model"):
        TransformerBackend(tmp_path / "bad", ["en"])
    data = base_config_dict(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    data["classify"] = {"backend": "transformer", "transformer": {"model_dir": str(tmp_path)}}
    classifier = Classifier.from_config(Config.model_validate(data))  # the daemon's way
    assert classifier.sentiment("terrible", "en").backend.startswith("vader")
    assert "using the default backends" in caplog.text
