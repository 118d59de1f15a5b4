/* The engine's other per-layer CPU kernels (float32): few-row projections, residual add + RMSNorm, rotary
 * embedding fused with the K/V cache write, and SiLU-and-multiply.
 *
 * Why: a decode step of the small preset is ~20 ops per layer over tensors of a few kilobytes. At batch 1
 * the projections are memory-bound matrix-vector products, where oneDNN's kernels took ~1.3x the CPU time
 * of one contiguous panel stream per thread (below); and each of the ~12 other torch ops per layer (split, cat, neg, index, stack, index_copy_,
 * rms_norm's own sub-ops) costs its dispatch and an allocation more than its arithmetic. These kernels do
 * one pass over the data each, in place where the data allows.
 *
 * Same threading as paged_attention.c: OpenMP on torch's own libgomp pool, num_threads passed in.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

#pragma omp declare simd notinbranch
extern float expf(float);

/* Panel GEMM for few rows: y [rows, out] = x [rows, in] @ W^T with W pre-packed as panels [out / 16, in, 16]
   (16 outputs' weights interleaved by input index: one contiguous stream per panel). The 6 x 16
   micro-kernel keeps 12 accumulators in registers. Used for 1-4 rows, where the step is bound by reading
   the weights: at one row it took 0.7-0.8x oneDNN's CPU time on this machine; from ~8 rows oneDNN's
   blocked kernels are as fast, from 16 faster (they reuse x better), so the engine switches there. */
#define NR 16
#define MR 6

#if defined(__AVX2__) && defined(__FMA__)
static inline __attribute__((always_inline)) void micro(const float *restrict x, int64_t ldx,
                                                         const float *restrict panel, int in, float *restrict y,
                                                         int64_t ldy, const int mr) {
    __m256 acc[MR][2];
    for (int r = 0; r < mr; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (int i = 0; i < in; ++i) {
        const __m256 w0 = _mm256_loadu_ps(panel + (int64_t)i * NR), w1 = _mm256_loadu_ps(panel + (int64_t)i * NR + 8);
        for (int r = 0; r < mr; ++r) {
            const __m256 b = _mm256_broadcast_ss(x + r * ldx + i);
            acc[r][0] = _mm256_fmadd_ps(b, w0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(b, w1, acc[r][1]);
        }
    }
    for (int r = 0; r < mr; ++r) {
        _mm256_storeu_ps(y + r * ldy, acc[r][0]);
        _mm256_storeu_ps(y + r * ldy + 8, acc[r][1]);
    }
}
#else
static inline void micro(const float *restrict x, int64_t ldx, const float *restrict panel, int in,
                         float *restrict y, int64_t ldy, const int mr) {
    for (int r = 0; r < mr; ++r) {
        float acc[NR] = {0};
        for (int i = 0; i < in; ++i)
#pragma omp simd
            for (int j = 0; j < NR; ++j) acc[j] += x[r * ldx + i] * panel[(int64_t)i * NR + j];
        memcpy(y + r * ldy, acc, sizeof acc);
    }
}
#endif

/* the row count as a compile-time constant in each copy, so the accumulators stay in registers */
static void micro_rows(const float *x, int64_t ldx, const float *panel, int in, float *y, int64_t ldy, int mr) {
    switch (mr) {
    case 6: micro(x, ldx, panel, in, y, ldy, 6); break;
    case 5: micro(x, ldx, panel, in, y, ldy, 5); break;
    case 4: micro(x, ldx, panel, in, y, ldy, 4); break;
    case 3: micro(x, ldx, panel, in, y, ldy, 3); break;
    case 2: micro(x, ldx, panel, in, y, ldy, 2); break;
    default: micro(x, ldx, panel, in, y, ldy, 1); break;
    }
}

/* panels [out / 16, in, 16] from w [out, in] (done once, when the model is loaded) */
int pack_panels(const float *w, float *panels, int in, int out) {
    if (out % NR != 0) return 1;
    for (int p = 0; p < out / NR; ++p)
        for (int i = 0; i < in; ++i)
            for (int j = 0; j < NR; ++j) panels[((int64_t)p * in + i) * NR + j] = w[(int64_t)(p * NR + j) * in + i];
    return 0;
}

int panel_linear(const float *x, const float *panels, float *y, int rows, int in, int out, int num_threads) {
    if (rows < 1 || out % NR != 0) return 1;
    const int num_panels = out / NR;
#pragma omp parallel for num_threads(num_threads) schedule(dynamic, 4)
    for (int p = 0; p < num_panels; ++p) {
        const float *panel = panels + (int64_t)p * in * NR;
        for (int m = 0; m < rows; m += MR)
            micro_rows(x + (int64_t)m * in, in, panel, in, y + (int64_t)m * out + p * NR, out,
                       rows - m < MR ? rows - m : MR);
    }
    return 0;
}

/* x += delta (when delta is not NULL), then out = x / rms(x) * weight, row by row ([n, h]). */
void add_rms_norm(float *x, const float *delta, const float *weight, float *out, int n, int h, float eps,
                  int num_threads) {
#pragma omp parallel for num_threads(num_threads) schedule(static) if (n >= 16)
    for (int r = 0; r < n; ++r) {
        float *xr = x + (int64_t)r * h;
        float *orow = out + (int64_t)r * h;
        float sq = 0.0f;
        if (delta != NULL) {
            const float *dr = delta + (int64_t)r * h;
#pragma omp simd
            for (int i = 0; i < h; ++i) xr[i] += dr[i];
        }
#pragma omp simd reduction(+ : sq)
        for (int i = 0; i < h; ++i) sq += xr[i] * xr[i];
        const float inv = 1.0f / sqrtf(sq / (float)h + eps);
#pragma omp simd
        for (int i = 0; i < h; ++i) orow[i] = weight[i] * (xr[i] * inv);
    }
}

/* In place on the fused projection output qkv [n, row_stride] = [q heads | k heads | v heads | ...]:
   rotate the query and key heads (rotate_half convention, cos/sin tables [max_position, head_dim]), then
   write each token's rotated key and its value to its cache slot (kv_cache [slots, 2, Hkv, D]). */
void rotary_cache_write(float *qkv, int64_t row_stride, const int64_t *positions, const float *cos_table,
                        const float *sin_table, float *kv_cache, const int64_t *slots, int n, int num_heads,
                        int num_kv_heads, int head_dim, int num_threads) {
    const int half = head_dim / 2;
    const int64_t kv_width = (int64_t)num_kv_heads * head_dim;
#pragma omp parallel for num_threads(num_threads) schedule(static) if (n >= 16)
    for (int t = 0; t < n; ++t) {
        float *row = qkv + (int64_t)t * row_stride;
        const float *c = cos_table + positions[t] * head_dim, *s = sin_table + positions[t] * head_dim;
        for (int hd = 0; hd < num_heads + num_kv_heads; ++hd) {
            float *x = row + (int64_t)hd * head_dim;
#pragma omp simd
            for (int j = 0; j < half; ++j) {
                const float x1 = x[j], x2 = x[j + half];
                x[j] = x1 * c[j] - x2 * s[j];
                x[j + half] = x2 * c[j + half] + x1 * s[j + half];
            }
        }
        float *dst = kv_cache + slots[t] * 2 * kv_width;
        memcpy(dst, row + (int64_t)num_heads * head_dim, sizeof(float) * (size_t)kv_width);
        memcpy(dst + kv_width, row + (int64_t)(num_heads + num_kv_heads) * head_dim,
               sizeof(float) * (size_t)kv_width);
    }
}

/* out [n, inter] = silu(gate) * up, from gate_up [n, 2 * inter] = [gate | up]. */
void silu_mul(const float *gate_up, float *out, int n, int inter, int num_threads) {
#pragma omp parallel for num_threads(num_threads) schedule(static) if (n >= 16)
    for (int r = 0; r < n; ++r) {
        const float *g = gate_up + (int64_t)r * 2 * inter, *u = g + inter;
        float *o = out + (int64_t)r * inter;
#pragma omp simd
        for (int i = 0; i < inter; ++i) o[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
    }
}
