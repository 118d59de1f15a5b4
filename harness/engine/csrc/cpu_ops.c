/* The engine's other per-layer CPU kernels (float32): few-row projections, residual add + RMSNorm, rotary
 * embedding fused with the K/V cache write, and SiLU-and-multiply.
 *
 * Why: a decode step of the small preset is ~20 ops per layer over tensors of a few kilobytes. At batch 1
 * the projections are memory-bound matrix-vector products, where oneDNN streamed the weights at 5-8 GB/s
 * on one core; and each of the ~12 other torch ops per layer (split, cat, neg, index, stack, index_copy_,
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

#define MAX_ROWS 8

#if defined(__AVX2__) && defined(__FMA__)
static inline float hsum(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}
#endif

/* y[m, o] = sum_i x[m, i] * w[o, i] for o in [o0, o0 + 4), all m < rows. The four weight rows are read from
   memory once: after the first pair of input rows they sit in L1/L2 for the next pairs. */
static void four_outputs(const float *restrict x, const float *restrict w, float *restrict y, int rows,
                         int in, int out, int o0) {
    const float *w0 = w + (int64_t)o0 * in, *w1 = w0 + in, *w2 = w1 + in, *w3 = w2 + in;
    for (int m = 0; m < rows; m += 2) {
        const int two = (m + 1 < rows);
        const float *x0 = x + (int64_t)m * in, *x1 = two ? x0 + in : x0;
        int i = 0;
        float acc[8] = {0};
#if defined(__AVX2__) && defined(__FMA__)
        __m256 a00 = _mm256_setzero_ps(), a01 = a00, a02 = a00, a03 = a00;
        __m256 a10 = a00, a11 = a00, a12 = a00, a13 = a00;
        for (; i + 8 <= in; i += 8) {
            const __m256 v0 = _mm256_loadu_ps(x0 + i), v1 = _mm256_loadu_ps(x1 + i);
            const __m256 k0 = _mm256_loadu_ps(w0 + i), k1 = _mm256_loadu_ps(w1 + i);
            const __m256 k2 = _mm256_loadu_ps(w2 + i), k3 = _mm256_loadu_ps(w3 + i);
            a00 = _mm256_fmadd_ps(v0, k0, a00); a01 = _mm256_fmadd_ps(v0, k1, a01);
            a02 = _mm256_fmadd_ps(v0, k2, a02); a03 = _mm256_fmadd_ps(v0, k3, a03);
            a10 = _mm256_fmadd_ps(v1, k0, a10); a11 = _mm256_fmadd_ps(v1, k1, a11);
            a12 = _mm256_fmadd_ps(v1, k2, a12); a13 = _mm256_fmadd_ps(v1, k3, a13);
        }
        acc[0] = hsum(a00); acc[1] = hsum(a01); acc[2] = hsum(a02); acc[3] = hsum(a03);
        acc[4] = hsum(a10); acc[5] = hsum(a11); acc[6] = hsum(a12); acc[7] = hsum(a13);
#endif
        for (; i < in; ++i) {
            acc[0] += x0[i] * w0[i]; acc[1] += x0[i] * w1[i]; acc[2] += x0[i] * w2[i]; acc[3] += x0[i] * w3[i];
            acc[4] += x1[i] * w0[i]; acc[5] += x1[i] * w1[i]; acc[6] += x1[i] * w2[i]; acc[7] += x1[i] * w3[i];
        }
        memcpy(y + (int64_t)m * out + o0, acc, 4 * sizeof(float));
        if (two) memcpy(y + (int64_t)(m + 1) * out + o0, acc + 4, 4 * sizeof(float));
    }
}

/* y [rows, out] = x [rows, in] @ w [out, in]^T for 1 <= rows <= MAX_ROWS (decode batches), out % 4 == 0. */
int small_linear(const float *x, const float *w, float *y, int rows, int in, int out, int num_threads) {
    if (rows < 1 || rows > MAX_ROWS || out % 4 != 0) return 1;
    const int blocks = out / 4;
    /* dynamic chunks: on a shared machine one descheduled thread must not hold the other back */
#pragma omp parallel for num_threads(num_threads) schedule(dynamic, 8)
    for (int b = 0; b < blocks; ++b) four_outputs(x, w, y, rows, in, out, b * 4);
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
