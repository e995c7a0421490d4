"""The mlscale-mlp model format (worker/MODEL_FORMAT.md) in numpy, for the benchmark's peers:
read an artifact and run its forward pass (z-score, dense layers, softmax), and write an
artifact of any size with seeded weights (the larger MLP is built this way, not trained)."""
import hashlib
import json
import math
import os

import numpy as np


def load(path):
    with open(os.path.join(path, "model.json")) as f:
        model = json.load(f)
    if model["format"] != "mlscale-mlp" or model["formatVersion"] != 1:
        raise ValueError(f"{path}: not an mlscale-mlp model of format version 1")
    arch = model["architecture"]
    blob = open(os.path.join(path, model["weights"]["file"]), "rb").read()
    if hashlib.sha256(blob).hexdigest() != model["weights"]["sha256"]:
        raise ValueError(f"{path}: weights.bin does not match its SHA-256")
    tensors = {}
    for t in model["weights"]["tensors"]:
        count = math.prod(t["shape"])
        tensors[t["name"]] = np.frombuffer(blob, dtype="<f4", count=count, offset=t["offset"]).reshape(t["shape"])
    layers = [(tensors[f"layers.{l}.weight"].T.copy(), tensors[f"layers.{l}.bias"].copy())
              for l in range(len(arch["hiddenLayers"]) + 1)]
    norm = model["normalization"]
    return {
        "mean": np.asarray(norm["mean"], dtype=np.float32),
        "stddev": np.asarray(norm["stddev"], dtype=np.float32),
        "layers": layers,
        "activation": arch["activation"],
        "inputs": arch["inputs"],
        "classes": arch["classes"],
    }


def forward(net, x):
    """x: rows x inputs (float32). Returns (probabilities rows x classes, class per row)."""
    h = (np.asarray(x, dtype=np.float32) - net["mean"]) / net["stddev"]
    last = len(net["layers"]) - 1
    for l, (w, b) in enumerate(net["layers"]):
        h = h @ w + b
        if l < last:
            if net["activation"] == "relu":
                h = np.maximum(h, 0)
            elif net["activation"] == "tanh":
                h = np.tanh(h)
            else:
                raise ValueError("the benchmark peers implement relu and tanh")
    h = h - h.max(axis=1, keepdims=True)
    e = np.exp(h)
    p = e / e.sum(axis=1, keepdims=True)
    return p.astype(np.float32), p.argmax(axis=1).astype(np.int64)


def write(path, inputs, hidden, classes, seed=1):
    """Writes an artifact with uniform(+-1/sqrt(in)) weights (PyTorch's nn.Linear init)."""
    rng = np.random.default_rng(seed)
    os.makedirs(path, exist_ok=True)
    sizes = [inputs] + list(hidden) + [classes]
    blob, tensors = b"", []
    for l in range(len(sizes) - 1):
        fan_in, fan_out = sizes[l], sizes[l + 1]
        bound = 1 / math.sqrt(fan_in)
        for name, shape in ((f"layers.{l}.weight", [fan_out, fan_in]), (f"layers.{l}.bias", [fan_out])):
            values = rng.uniform(-bound, bound, size=shape).astype("<f4")
            tensors.append({"name": name, "shape": shape, "offset": len(blob)})
            blob += values.tobytes()
    with open(os.path.join(path, "weights.bin"), "wb") as f:
        f.write(blob)
    model = {
        "format": "mlscale-mlp", "formatVersion": 1,
        "architecture": {"type": "mlp", "inputs": inputs, "hiddenLayers": list(hidden), "classes": classes,
                         "activation": "relu", "dropout": 0.0, "output": "logits"},
        "normalization": {"type": "zscore", "mean": [0.0] * inputs, "stddev": [1.0] * inputs},
        "weights": {"file": "weights.bin", "dtype": "float32", "byteOrder": "little", "bytes": len(blob),
                    "sha256": hashlib.sha256(blob).hexdigest(), "tensors": tensors},
        "metadata": {"dataset": "none (benchmark weights)", "seed": seed},
    }
    with open(os.path.join(path, "model.json"), "w") as f:
        json.dump(model, f)
