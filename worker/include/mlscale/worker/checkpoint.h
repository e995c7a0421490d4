// Checkpoints: the training state written by rank 0 every N steps and on SIGTERM, and
// read back on start.
//
// A checkpoint is one file `<dir>/checkpoint-<step, 12 digits>.mlsckpt`:
//   "MLSCKPT1" | u64 metadata length | metadata JSON | u64 step |
//   u64 n | n float32 parameters | u64 m | m float32 optimizer state |
//   32-byte SHA-256 of everything before it            (integers little-endian)
// It is written to a temporary file, flushed, then renamed into place, so a crash leaves
// either the old or the new file, never a torn one; the checksum catches the rest.
#pragma once

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "mlscale/common/status.h"
#include "mlscale/worker/model.h"

namespace mlscale::worker {

struct Checkpoint {
  TrainingState state;
  nlohmann::json metadata;  // what the trainer needs to check the checkpoint fits its model
  std::string path;
};

// Writes a checkpoint of `state` into `dir` (created if missing) and removes all but the
// newest `keep` checkpoints. Returns the file's path.
StatusOr<std::string> WriteCheckpoint(const std::string& dir, const TrainingState& state,
                                      const nlohmann::json& metadata, int keep = 2);

// Reads and verifies one checkpoint file. DataLoss when it is truncated or corrupt.
StatusOr<Checkpoint> ReadCheckpoint(const std::string& path);

// The newest checkpoint in `dir` that verifies. Corrupt ones are skipped and reported
// through `warn`. NotFound when there is none (or no such folder).
StatusOr<Checkpoint> LoadLatestCheckpoint(const std::string& dir,
                                          const std::function<void(const std::string&)>& warn);

// SHA-256 of `bytes` in lowercase hex.
std::string Sha256Hex(const void* data, size_t bytes);

// Writes `contents` to `path` through a temporary file in the same folder and a rename.
Status WriteFileAtomically(const std::string& path, const std::string& contents);

}  // namespace mlscale::worker
