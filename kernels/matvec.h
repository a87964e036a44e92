// One-row matrix products for decode steps: y = W x with W in bfloat16 (--matmul bf16) or kept in a quantised
// checkpoint's 32-column blocks, x and y float32. A decode step reads every weight once, so its speed is the memory's: this reads the bf16
// matrix as it is (half fp32's bytes) and widens each value in registers, where LibTorch's bf16 matrix-vector
// product runs at a third of that. Each output is one thread's dot product in a fixed order, so the result is the
// same for any thread count. No LibTorch header here.
#pragma once
#include <cstdint>

namespace headscope {

// w: rows x cols bfloat16 bit patterns, row-major; x [cols]; y [rows]. Multi-threaded over rows (LibTorch's pool).
void matvec_bf16(const uint16_t* w, const float* x, float* y, int64_t rows, int64_t cols);

// A matrix kept in blocks of 32 columns, as quantised checkpoints store it (GGUF Q4_0, Q4_1, Q8_0), with each
// block's scale (and offset) widened to float once at load:
//   bits 4: element j of block b of row r is scale[r, b] * n + offset[r, b], n the low nibble of
//           q[r, 16 b + j] for j < 16 and the high nibble of q[r, 16 b + j - 16] for j >= 16 (n in 0..15);
//   bits 8: element j is scale[r, b] * int8(q[r, 32 b + j]); offset unused.
// A decode step reads these bytes instead of fp32 weights: a fifth (4-bit) or a quarter (8-bit) of the traffic.
constexpr int kBlockCols = 32;
struct BlockMatrix {
  int bits = 0;             // 4 or 8
  const uint8_t* q = nullptr;       // [rows, cols / 32 * (bits == 4 ? 16 : 32)]
  const float* scale = nullptr;     // [rows, cols / 32]
  const float* offset = nullptr;    // [rows, cols / 32] (bits 4)
  int64_t rows = 0, cols = 0;       // cols a multiple of 32
};

// y = M x, float accumulation; the same bits for any thread count (one thread per output row, a fixed order).
void matvec_blocks(const BlockMatrix& m, const float* x, float* y);

}  // namespace headscope
