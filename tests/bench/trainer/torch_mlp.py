#!/usr/bin/env python3
"""The PyTorch peer of mlscale-train: the same MLP, optimizer, batch and data, on the CPU.

Prints one JSON line: samplesPerSecond (over the training loop, per-epoch evaluation
included, as mlscale-train measures it), accuracy and loss on the test file.

With WORLD_SIZE > 1 (and RANK, MASTER_ADDR, MASTER_PORT) it is one rank of a
DistributedDataParallel job over gloo: every rank draws the same global batch, takes
positions rank, rank + WORLD_SIZE, ... of it (as mlscale-train's ranks do), and evaluates
its share of the test set; rank 0 prints the global figures.
"""
import argparse
import json
import os
import time

import numpy as np
import torch
import torch.distributed as dist


def load(path, fmt, labels_path=None):
    if fmt == "csv":
        data = np.loadtxt(path, delimiter=",", dtype=np.float32, ndmin=2)
        return data[:, :-1], data[:, -1].astype(np.int64)
    with open(path, "rb") as f:
        raw = f.read()
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(raw[3])]
    x = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * len(dims)).reshape(dims[0], -1).astype(np.float32)
    with open(labels_path, "rb") as f:
        y = np.frombuffer(f.read(), dtype=np.uint8, offset=8).astype(np.int64)
    return x, y


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--train", required=True)
    p.add_argument("--train-labels")
    p.add_argument("--test", required=True)
    p.add_argument("--test-labels")
    p.add_argument("--format", default="csv")
    p.add_argument("--hidden", default="128,64")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=42)
    a = p.parse_args()
    world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    xtr, ytr = load(a.train, a.format, a.train_labels)
    xte, yte = load(a.test, a.format, a.test_labels)
    mean, std = xtr.mean(0), xtr.std(0)
    std[std < 1e-8] = 1
    xtr, xte = (xtr - mean) / std, (xte - mean) / std
    xtr, ytr, xte, yte = map(torch.from_numpy, (xtr, ytr, xte, yte))
    classes = int(max(ytr.max(), yte.max())) + 1
    layers, width = [], xtr.shape[1]
    for h in [int(v) for v in a.hidden.split(",") if v]:
        layers += [torch.nn.Linear(width, h), torch.nn.ReLU(), torch.nn.Dropout(a.dropout)]
        width = h
    model = torch.nn.Sequential(*layers, torch.nn.Linear(width, classes))
    if world > 1:
        dist.init_process_group("gloo", rank=rank, world_size=world)
        model = torch.nn.parallel.DistributedDataParallel(model)
        xte, yte = xte[rank::world], yte[rank::world]
    optimizer = torch.optim.Adam(model.parameters(), lr=a.lr, weight_decay=a.weight_decay)
    loss_fn = torch.nn.CrossEntropyLoss()

    def evaluate():
        model.eval()
        with torch.no_grad():
            logits = model(xte)
            totals = torch.tensor([float(torch.nn.functional.cross_entropy(logits, yte, reduction="sum")),
                                   float((logits.argmax(1) == yte).sum()), float(len(yte))], dtype=torch.float64)
        if world > 1:
            dist.all_reduce(totals)
        model.train()
        return float(totals[0] / totals[2]), float(totals[1] / totals[2])

    n = xtr.shape[0]
    start = time.perf_counter()
    for _ in range(a.epochs):
        order = torch.randperm(n)
        for first in range(0, n, a.batch):
            idx = order[first:first + a.batch][rank::world]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(xtr[idx]), ytr[idx])
            loss.backward()
            optimizer.step()
        test_loss, accuracy = evaluate()
    seconds = time.perf_counter() - start
    if rank == 0:
        print(json.dumps({"samplesPerSecond": n * a.epochs / seconds, "accuracy": accuracy, "testLoss": test_loss,
                          "wallSeconds": seconds, "threads": a.threads, "worldSize": world,
                          "torch": torch.__version__}))
    if world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
