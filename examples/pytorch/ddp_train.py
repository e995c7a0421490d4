#!/usr/bin/env python3
"""A PyTorch DDP training script as a user image runs it under `mlscale-launch --mode env`.

It reads the torchrun environment (WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT),
trains a small MLP on the bundled digits set with DistributedDataParallel (gloo, CPU), and
reports to mlscale by the file protocol of launcher/README.md ("Progress and result from
your own script"): rank 0 rewrites $MLSCALE_PROGRESS_FILE as it goes and writes its final
metrics to $MLSCALE_RESULT_FILE. Nothing here is mlscale-specific beyond `report`.

    python3 ddp_train.py [--data digits.csv] [--epochs 8] [--batch-size 64] [--lr 0.05]
"""
import argparse
import csv
import json
import os
import time

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler


def report(variable, document):
    """Writes `document` as JSON to the file named by the environment variable, atomically
    (the launcher may read it at any moment). Without the variable, nothing happens."""
    path = os.environ.get(variable)
    if not path:
        return
    temporary = f"{path}.tmp-{os.getpid()}"
    with open(temporary, "w") as f:
        json.dump(document, f)
    os.replace(temporary, path)


def default_data():
    here = os.path.dirname(os.path.abspath(__file__))
    folder = os.environ.get("MLSCALE_DATA_DIR", os.path.join(here, "..", "data"))
    return os.path.join(folder, "digits", "digits.csv")


def load_digits(path):
    """64 pixel values (0..16) and a label per line; returns (features, labels) tensors."""
    features, labels = [], []
    with open(path, newline="") as f:
        for row in csv.reader(f):
            features.append([float(value) / 16.0 for value in row[:64]])
            labels.append(int(row[64]))
    return torch.tensor(features), torch.tensor(labels)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=default_data(), help="digits CSV (default: the bundled set)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64, help="global batch size")
    parser.add_argument("--lr", type=float, default=0.05)
    args = parser.parse_args()

    world_size = int(os.environ["WORLD_SIZE"])
    rank = int(os.environ["RANK"])
    # env:// reads MASTER_ADDR and MASTER_PORT: the launcher's torchrun variables.
    dist.init_process_group("gloo", init_method="env://", world_size=world_size, rank=rank)
    torch.manual_seed(0)
    torch.set_num_threads(1)

    features, labels = load_digits(args.data)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(1))
    test_size = len(labels) // 5
    test, train = order[:test_size], order[test_size:]
    train_set = TensorDataset(features[train], labels[train])
    sampler = DistributedSampler(train_set, num_replicas=world_size, rank=rank, shuffle=True, seed=0)
    loader = DataLoader(train_set, batch_size=max(1, args.batch_size // world_size), sampler=sampler)

    model = DistributedDataParallel(torch.nn.Sequential(
        torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10)))
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    loss_function = torch.nn.CrossEntropyLoss()

    total_steps = args.epochs * len(loader)
    step, started, loss = 0, time.monotonic(), torch.tensor(0.0)
    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)
        for batch, target in loader:
            optimizer.zero_grad()
            loss = loss_function(model(batch), target)
            loss.backward()  # DDP averages the gradients over the ranks here
            optimizer.step()
            step += 1
            if rank == 0 and (step == 1 or step % 10 == 0 or step == total_steps):
                elapsed = time.monotonic() - started
                report("MLSCALE_PROGRESS_FILE", {
                    "step": step, "totalSteps": total_steps, "epoch": epoch + 1, "epochs": args.epochs,
                    "loss": loss.item(), "samplesPerSecond": step * args.batch_size / elapsed,
                    "etaSeconds": elapsed / step * (total_steps - step), "elapsedSeconds": elapsed,
                    "phase": "training"})

    # Every rank scores its share of the test set; the counts are summed over the ranks.
    model.eval()
    mine = test[rank::world_size]
    with torch.no_grad():
        correct = (model(features[mine]).argmax(dim=1) == labels[mine]).sum()
    counts = torch.tensor([float(correct), float(len(mine))])
    dist.all_reduce(counts)
    accuracy = (counts[0] / counts[1]).item()
    if rank == 0:
        report("MLSCALE_RESULT_FILE", {"metrics": {"accuracy": accuracy, "loss": loss.item()}})
        print(f"rank 0: accuracy {accuracy:.4f} after {step} steps on {world_size} ranks", flush=True)
    # Every rank past its last collective before any tears gloo down: a rank whose peer's
    # connections close while it is still in destroy_process_group can abort (SIGABRT,
    # "terminate called without an active exception"; seen in CI on rank 1).
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
