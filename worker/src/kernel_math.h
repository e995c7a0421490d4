// Per-element math shared by the CPU and GPU kernels (internal): activations, dropout
// masks, the optimizer update. One definition, so both backends train the same model.
#pragma once

#include <cmath>
#include <cstdint>

#ifdef __CUDACC__
#define MLSCALE_HOST_DEVICE __host__ __device__
#else
#define MLSCALE_HOST_DEVICE
#endif

namespace mlscale::worker::kernels {

enum ActivationKind : int { kRelu = 0, kTanh = 1, kGelu = 2 };

MLSCALE_HOST_DEVICE inline float Activate(int kind, float z) {
  if (kind == kRelu) return z > 0.0f ? z : 0.0f;
  if (kind == kTanh) return tanhf(z);
  return 0.5f * z * (1.0f + erff(z * 0.70710678f));  // exact GELU
}

// d activation / d z at z.
MLSCALE_HOST_DEVICE inline float ActivationSlope(int kind, float z) {
  if (kind == kRelu) return z > 0.0f ? 1.0f : 0.0f;
  if (kind == kTanh) {
    float t = tanhf(z);
    return 1.0f - t * t;
  }
  const float cdf = 0.5f * (1.0f + erff(z * 0.70710678f));
  const float pdf = 0.39894228f * expf(-0.5f * z * z);
  return cdf + z * pdf;
}

MLSCALE_HOST_DEVICE inline uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// The dropout multiplier of one hidden unit: 0 with probability p, else 1 / (1 - p).
// A hash of (seed, step, layer, position in the global batch, unit), so the mask of a
// sample does not depend on which rank computes it. Split in two so a CPU loop over the
// units of one sample hashes only the unit (and vectorizes); DropoutScale is the pair.
MLSCALE_HOST_DEVICE inline uint64_t DropoutColumnKey(uint64_t seed, int64_t step, int layer, int64_t position) {
  return Mix(seed ^ Mix(uint64_t(step) * 0x100000001B3ULL + uint64_t(layer))) ^ (uint64_t(position) << 24);
}

// `kept` is 1 / (1 - p). The top 24 bits of the hash, exactly representable as a float.
MLSCALE_HOST_DEVICE inline float DropoutUnitScale(uint64_t column_key, int64_t unit, float p, float kept) {
  const float u = float(int32_t(Mix(column_key ^ uint64_t(unit)) >> 40)) * (1.0f / 16777216.0f);
  return u < p ? 0.0f : kept;
}

MLSCALE_HOST_DEVICE inline float DropoutScale(uint64_t seed, int64_t step, int layer, int64_t position, int64_t unit,
                                             float p) {
  return DropoutUnitScale(DropoutColumnKey(seed, step, layer, position), unit, p, 1.0f / (1.0f - p));
}

enum OptimizerKind : int { kSgd = 0, kAdam = 1, kAdamW = 2 };

// The hyperparameters of one optimizer step (bias corrections precomputed).
struct UpdateParameters {
  int kind;
  float learning_rate, momentum, beta1, beta2, epsilon, weight_decay;
  float bias_correction1, bias_correction2;  // 1 - beta^t
  int64_t parameters;  // the second state slot starts here
};

// Updates one parameter from its gradient, as torch.optim.SGD / Adam / AdamW do.
MLSCALE_HOST_DEVICE inline void UpdateParameter(const UpdateParameters& u, float& w, float g, float* state,
                                                int64_t i) {
  if (u.kind == kSgd) {
    g += u.weight_decay * w;
    float& buffer = state[i];
    buffer = u.momentum * buffer + g;
    w -= u.learning_rate * buffer;
    return;
  }
  if (u.kind == kAdam) g += u.weight_decay * w;
  if (u.kind == kAdamW) w -= u.learning_rate * u.weight_decay * w;
  float& m = state[i];
  float& v = state[u.parameters + i];
  m = u.beta1 * m + (1.0f - u.beta1) * g;
  v = u.beta2 * v + (1.0f - u.beta2) * g * g;
  const float m_hat = m / u.bias_correction1;
  const float v_hat = v / u.bias_correction2;
  w -= u.learning_rate * m_hat / (sqrtf(v_hat) + u.epsilon);
}

}  // namespace mlscale::worker::kernels
