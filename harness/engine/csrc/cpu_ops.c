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
#include <omp.h>
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

#pragma omp declare simd notinbranch
extern float expf(float);

/* Panel GEMM for few rows: y [rows, out] = x [rows, in] @ W^T with W pre-packed as panels [out / 16, in, 16]
   (16 outputs' weights interleaved by input index: one contiguous stream per panel). The 6 x 16
   micro-kernel keeps 12 accumulators in registers. Used for up to PANEL_LINEAR_MAX_ROWS rows
   (cpu_kernels.py): a decode step's projections, where one row is bound by reading the weights and a few
   rows by the FMAs.
   Measured on this machine (2-vCPU AMD EPYC, Zen 1, one thread, CPU time, 2026-12-02): with the
   accumulators in an array gcc kept them on the stack (a store after every FMA), 16 GFLOP/s at 6-32 rows,
   below oneDNN from 8 rows; as named variables and with the panel prefetched 4 KB ahead, 23-32 GFLOP/s at
   8-32 rows (oneDNN 15-27) and 12 % faster at one row, so the panels now serve every decode batch. */
#define NR 16
#define MR 6
#define PREFETCH_AHEAD 64      /* panel rows (64 bytes each) ahead of the one read */

#if defined(__AVX2__) && defined(__FMA__)
/* one input row of the 6 x 16 block: named accumulators, so they stay in registers */
#define ROW_FMA(r) if (mr > r) { const __m256 b = _mm256_broadcast_ss(x + r * ldx + i); \
        a##r##0 = _mm256_fmadd_ps(b, w0, a##r##0); a##r##1 = _mm256_fmadd_ps(b, w1, a##r##1); }
#define ROW_STORE(r) if (mr > r) { _mm256_storeu_ps(y + r * ldy, a##r##0); _mm256_storeu_ps(y + r * ldy + 8, a##r##1); }

static inline __attribute__((always_inline)) void micro(const float *restrict x, int64_t ldx,
                                                         const float *restrict panel, int in, float *restrict y,
                                                         int64_t ldy, const int mr) {
    __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00,
           a31 = a00, a40 = a00, a41 = a00, a50 = a00, a51 = a00;
    for (int i = 0; i < in; ++i) {
        const float *p = panel + (int64_t)i * NR;
        _mm_prefetch((const char *)(p + PREFETCH_AHEAD * NR), _MM_HINT_T0);
        const __m256 w0 = _mm256_loadu_ps(p), w1 = _mm256_loadu_ps(p + 8);
        ROW_FMA(0) ROW_FMA(1) ROW_FMA(2) ROW_FMA(3) ROW_FMA(4) ROW_FMA(5)
    }
    ROW_STORE(0) ROW_STORE(1) ROW_STORE(2) ROW_STORE(3) ROW_STORE(4) ROW_STORE(5)
}

/* one row (batch-1 decode): four FMA chains (even and odd inputs), where two were bound by FMA latency */
static inline void micro1(const float *restrict x, const float *restrict panel, int in, float *restrict y) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, b0 = a0, b1 = a0;
    int i = 0;
    for (; i + 1 < in; i += 2) {
        const float *p = panel + (int64_t)i * NR;
        _mm_prefetch((const char *)(p + PREFETCH_AHEAD * NR), _MM_HINT_T0);
        _mm_prefetch((const char *)(p + PREFETCH_AHEAD * NR + NR), _MM_HINT_T0);
        const __m256 x0 = _mm256_broadcast_ss(x + i), x1 = _mm256_broadcast_ss(x + i + 1);
        a0 = _mm256_fmadd_ps(x0, _mm256_loadu_ps(p), a0);
        a1 = _mm256_fmadd_ps(x0, _mm256_loadu_ps(p + 8), a1);
        b0 = _mm256_fmadd_ps(x1, _mm256_loadu_ps(p + 16), b0);
        b1 = _mm256_fmadd_ps(x1, _mm256_loadu_ps(p + 24), b1);
    }
    for (; i < in; ++i) {
        const float *p = panel + (int64_t)i * NR;
        const __m256 x0 = _mm256_broadcast_ss(x + i);
        a0 = _mm256_fmadd_ps(x0, _mm256_loadu_ps(p), a0);
        a1 = _mm256_fmadd_ps(x0, _mm256_loadu_ps(p + 8), a1);
    }
    _mm256_storeu_ps(y, _mm256_add_ps(a0, b0));
    _mm256_storeu_ps(y + 8, _mm256_add_ps(a1, b1));
}

#if defined(__AVX512F__)
/* Up to MR_TALL rows in one pass over a panel (AVX-512: a panel row of 16 outputs is one zmm register, 24
   accumulators fit beside it in the 32). With 6 rows per pass a batch of 17 read each panel three times,
   the first from memory at 3 FLOPs a byte, below what the FMAs could take; one pass reads it once. Each
   accumulator is the same FMA chain over the inputs as in micro(), so 2-6 rows give micro()'s bits.
   Measured 2026-12-02 (AMD EPYC family 25 / Zen 4, AVX-512; decode steps of the small preset, old and
   new build alternated in one process, one thread, CPU time, load 7-8): batch 4 -7 to -12 %, 8 -6 to
   -14 %, 17 -6 to -10 %, 32 -3 to -7 %; batch 1 (micro1, unchanged) and 2 within noise. */
#define MR_TALL 24
#define TALL_FMA(r) if (mr > r) c##r = _mm512_fmadd_ps(_mm512_set1_ps(x[r * ldx + i]), w, c##r);
#define TALL_STORE(r) if (mr > r) _mm512_storeu_ps(y + r * ldy, c##r);
static inline __attribute__((always_inline)) void micro_tall(const float *restrict x, int64_t ldx,
                                                              const float *restrict panel, int in,
                                                              float *restrict y, int64_t ldy, const int mr) {
    __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0, c8 = c0,
           c9 = c0, c10 = c0, c11 = c0, c12 = c0, c13 = c0, c14 = c0, c15 = c0, c16 = c0, c17 = c0, c18 = c0,
           c19 = c0, c20 = c0, c21 = c0, c22 = c0, c23 = c0;
    for (int i = 0; i < in; ++i) {
        const float *p = panel + (int64_t)i * NR;
        _mm_prefetch((const char *)(p + PREFETCH_AHEAD * NR), _MM_HINT_T0);
        const __m512 w = _mm512_loadu_ps(p);
        TALL_FMA(0) TALL_FMA(1) TALL_FMA(2) TALL_FMA(3) TALL_FMA(4) TALL_FMA(5) TALL_FMA(6) TALL_FMA(7)
        TALL_FMA(8) TALL_FMA(9) TALL_FMA(10) TALL_FMA(11) TALL_FMA(12) TALL_FMA(13) TALL_FMA(14) TALL_FMA(15)
        TALL_FMA(16) TALL_FMA(17) TALL_FMA(18) TALL_FMA(19) TALL_FMA(20) TALL_FMA(21) TALL_FMA(22) TALL_FMA(23)
    }
    TALL_STORE(0) TALL_STORE(1) TALL_STORE(2) TALL_STORE(3) TALL_STORE(4) TALL_STORE(5) TALL_STORE(6)
    TALL_STORE(7) TALL_STORE(8) TALL_STORE(9) TALL_STORE(10) TALL_STORE(11) TALL_STORE(12) TALL_STORE(13)
    TALL_STORE(14) TALL_STORE(15) TALL_STORE(16) TALL_STORE(17) TALL_STORE(18) TALL_STORE(19) TALL_STORE(20)
    TALL_STORE(21) TALL_STORE(22) TALL_STORE(23)
}
#endif
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
static inline void micro1(const float *restrict x, const float *restrict panel, int in, float *restrict y) {
    micro(x, 0, panel, in, y, 0, 1);
}
#endif

/* the row count as a compile-time constant in each copy, so the accumulators stay in registers */
#if defined(__AVX512F__)
/* out of line: inlined beside micro1 its 23 copies made batch-1 steps 4-5 % slower (same micro1 code) */
static __attribute__((noinline)) void micro_rows_tall(const float *x, int64_t ldx, const float *panel, int in,
                                                      float *y, int64_t ldy, int mr) {
#define TALL_CASE(r) case r: micro_tall(x, ldx, panel, in, y, ldy, r); return;
    switch (mr) {
    TALL_CASE(24) TALL_CASE(23) TALL_CASE(22) TALL_CASE(21) TALL_CASE(20) TALL_CASE(19) TALL_CASE(18)
    TALL_CASE(17) TALL_CASE(16) TALL_CASE(15) TALL_CASE(14) TALL_CASE(13) TALL_CASE(12) TALL_CASE(11)
    TALL_CASE(10) TALL_CASE(9) TALL_CASE(8) TALL_CASE(7) TALL_CASE(6) TALL_CASE(5) TALL_CASE(4) TALL_CASE(3)
    default: micro_tall(x, ldx, panel, in, y, ldy, 2); return;
    }
}
#endif

static void micro_rows(const float *x, int64_t ldx, const float *panel, int in, float *y, int64_t ldy, int mr) {
    if (mr == 1) {      /* batch 1: the weight stream, four chains */
        micro1(x, panel, in, y);
        return;
    }
#if defined(__AVX512F__)
    micro_rows_tall(x, ldx, panel, in, y, ldy, mr);
#else
    switch (mr) {
    case 6: micro(x, ldx, panel, in, y, ldy, 6); break;
    case 5: micro(x, ldx, panel, in, y, ldy, 5); break;
    case 4: micro(x, ldx, panel, in, y, ldy, 4); break;
    case 3: micro(x, ldx, panel, in, y, ldy, 3); break;
    default: micro(x, ldx, panel, in, y, ldy, 2); break;
    }
#endif
}

/* panels [out / 16, in, 16] from w [out, in] (done once, when the model is loaded) */
int pack_panels(const float *w, float *panels, int in, int out) {
    if (out % NR != 0) return 1;
    for (int p = 0; p < out / NR; ++p)
        for (int i = 0; i < in; ++i)
            for (int j = 0; j < NR; ++j) panels[((int64_t)p * in + i) * NR + j] = w[(int64_t)(p * NR + j) * in + i];
    return 0;
}

#if defined(__AVX512F__)
#define ROW_BLOCK MR_TALL
#else
#define ROW_BLOCK MR
#endif

int panel_linear(const float *x, const float *panels, float *y, int rows, int in, int out, int num_threads) {
    if (rows < 1 || out % NR != 0) return 1;
    const int num_panels = out / NR;
    /* equal row blocks (32 rows: 16 + 16, not 24 + 8, whose short second pass re-reads the panel for little) */
    const int blocks = (rows + ROW_BLOCK - 1) / ROW_BLOCK, block = (rows + blocks - 1) / blocks;
#pragma omp parallel for num_threads(num_threads) schedule(dynamic, 4)
    for (int p = 0; p < num_panels; ++p) {
        const float *panel = panels + (int64_t)p * in * NR;
        for (int m = 0; m < rows; m += block)
            micro_rows(x + (int64_t)m * in, in, panel, in, y + (int64_t)m * out + p * NR, out,
                       rows - m < block ? rows - m : block);
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

/* The roofline's read-bandwidth probe: the sum of buf [n] (n % 64 == 0), split over num_threads like the
   engine's kernels. Eight independent vector sums, so the adds never wait on each other and the loop is
   bound by the loads alone (a STREAM-like read). torch's sum() over the same buffer measured less on this
   machine, which would understate the ceiling and overstate the engine's fraction of it. */
double read_probe(const float *buf, int64_t n, int num_threads) {
    double total = 0.0;
#pragma omp parallel num_threads(num_threads) reduction(+ : total)
    {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        const int64_t chunks = n / 64, lo = chunks * t / nt, hi = chunks * (t + 1) / nt;
#if defined(__AVX2__)
        __m256 s[8];
        for (int j = 0; j < 8; ++j) s[j] = _mm256_setzero_ps();
        for (int64_t c = lo; c < hi; ++c) {
            const float *p = buf + c * 64;
            s[0] = _mm256_add_ps(s[0], _mm256_loadu_ps(p));
            s[1] = _mm256_add_ps(s[1], _mm256_loadu_ps(p + 8));
            s[2] = _mm256_add_ps(s[2], _mm256_loadu_ps(p + 16));
            s[3] = _mm256_add_ps(s[3], _mm256_loadu_ps(p + 24));
            s[4] = _mm256_add_ps(s[4], _mm256_loadu_ps(p + 32));
            s[5] = _mm256_add_ps(s[5], _mm256_loadu_ps(p + 40));
            s[6] = _mm256_add_ps(s[6], _mm256_loadu_ps(p + 48));
            s[7] = _mm256_add_ps(s[7], _mm256_loadu_ps(p + 56));
        }
        float lanes[8];
        _mm256_storeu_ps(lanes, _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(s[0], s[1]), _mm256_add_ps(s[2], s[3])),
                                              _mm256_add_ps(_mm256_add_ps(s[4], s[5]), _mm256_add_ps(s[6], s[7]))));
        for (int j = 0; j < 8; ++j) total += lanes[j];
#else
        for (int64_t i = lo * 64; i < hi * 64; ++i) total += buf[i];
#endif
    }
    return total;
}
