/* Paged attention for decode tokens on the CPU, reading keys and values straight from the block pool.
 *
 * The pure-torch path gathers every sequence's context into a padded tensor before attention: at batch 32
 * that copies ~20 MB per layer, twice the bytes the attention itself needs, and the padded scaled-dot-product
 * call costs as much again. This kernel walks each sequence's block table instead (what vLLM's CPU backend and
 * PagedAttention do), so each key and value is read once, in place.
 *
 * Layouts (float32, contiguous):
 *   q        [num_seqs, num_heads, head_dim]       query heads h = kv_head * group + g (grouped-query); rows
 *                                                  q_stride floats apart (a view of the fused QKV output)
 *   kv_cache [slots, 2, num_kv_heads, head_dim]    slot = block * block_size + offset; [.., 0] key, [.., 1] value
 *   tables   [num_seqs, table_width] int32         block ids of each sequence's context
 *   lengths  [num_seqs] int32                      context length (keys 0 .. length-1 are attended)
 *   out      [num_seqs, num_heads, head_dim]
 *
 * A prefill token is a query like a decode's, over its sequence's table with length = its position + 1
 * (causal), so one call serves a whole step; the model runner passes one table row per token.
 *
 * One task per sequence, run on the OpenMP pool: loaded after torch, this library shares
 * torch's libgomp (same soname), so it uses the same threads torch.set_num_threads set.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* glibc's vector expf (libmvec): declared here rather than through -ffast-math, which would also assume no
   infinities, and the online softmax starts from -inf. */
#pragma omp declare simd notinbranch
extern float expf(float);

#define MAX_HEADS 128

int paged_attention_max_heads(void) { return MAX_HEADS; }

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define HAVE_AVX2 1

/* scores of 8 consecutive keys (slot_stride apart) against one query head: 8 independent FMA chains, where
   the one-key-at-a-time loop was a single chain bound by FMA latency; head_dim % 8 == 0 */
static inline __m256 dot8(const float *restrict qh, const float *restrict k, int64_t slot_stride, const int head_dim) {
    __m256 a[8];
    for (int j = 0; j < 8; ++j) a[j] = _mm256_setzero_ps();
    for (int d = 0; d < head_dim; d += 8) {
        const __m256 q = _mm256_loadu_ps(qh + d);
        for (int j = 0; j < 8; ++j) a[j] = _mm256_fmadd_ps(q, _mm256_loadu_ps(k + j * slot_stride + d), a[j]);
    }
    const __m256 s0 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
    const __m256 s1 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
    return _mm256_add_ps(_mm256_permute2f128_ps(s0, s1, 0x20), _mm256_permute2f128_ps(s0, s1, 0x31));
}

/* oh[0:head_dim] = oh * correction + sum_t p[t] v_t, the output row held in registers 64 dims at a time */
static inline void weighted_values(float *restrict oh, float correction, const float *restrict p,
                                   const float *restrict v, int n, int64_t slot_stride, const int head_dim) {
    for (int d0 = 0; d0 < head_dim; d0 += 64) {
        const int w = head_dim - d0 < 64 ? (head_dim - d0) / 8 : 8;
        __m256 acc[8];
        const __m256 c = _mm256_set1_ps(correction);
        for (int j = 0; j < w; ++j) acc[j] = _mm256_mul_ps(_mm256_loadu_ps(oh + d0 + 8 * j), c);
        for (int t = 0; t < n; ++t) {
            const __m256 pt = _mm256_set1_ps(p[t]);
            const float *vt = v + t * slot_stride + d0;
            for (int j = 0; j < w; ++j) acc[j] = _mm256_fmadd_ps(pt, _mm256_loadu_ps(vt + 8 * j), acc[j]);
        }
        for (int j = 0; j < w; ++j) _mm256_storeu_ps(oh + d0 + 8 * j, acc[j]);
    }
}
#endif

/* One sequence's attention, one block of the table at a time with the online softmax of flash-decoding:
   a block's slots (each key then value, all heads) lie back to back, so each block is one sequential read,
   and the next block is prefetched while this one is computed. head_dim is a compile-time constant in the
   specialised copies below, so the dot products and the value updates unroll into straight vector code. */
static inline void attend_one(const float *restrict qs, const float *restrict kv_cache,
                              const int32_t *restrict table, int length, float *restrict os, int num_heads,
                              int group, const int head_dim, int block_size, int64_t slot_stride,
                              int64_t value_offset, float scale, float *restrict scores) {
    float maxes[MAX_HEADS], sums[MAX_HEADS];
    for (int h = 0; h < num_heads; ++h) {
        maxes[h] = -INFINITY;
        sums[h] = 0.0f;
    }
    memset(os, 0, sizeof(float) * (size_t)num_heads * (size_t)head_dim);
    const int num_blocks = (length + block_size - 1) / block_size;
    for (int b = 0; b < num_blocks; ++b) {
        const float *base = kv_cache + (int64_t)table[b] * block_size * slot_stride;
        /* The next block's address is a table lookup the hardware prefetcher cannot guess, so it is prefetched
           by hand, into L2, a slice before each head's work: issued all at once (hundreds of lines) the
           requests filled the miss buffers and stalled this block's own loads. */
        const char *next = b + 1 < num_blocks
                               ? (const char *)(kv_cache + (int64_t)table[b + 1] * block_size * slot_stride)
                               : NULL;
        const int64_t next_bytes = (int64_t)block_size * slot_stride * (int64_t)sizeof(float);
        const int64_t slice = ((next_bytes / num_heads + 63) / 64) * 64;
        const int n = (b == num_blocks - 1) ? length - b * block_size : block_size;
        for (int h = 0; h < num_heads; ++h) {
            if (next != NULL) {
                const int64_t end = (int64_t)(h + 1) * slice < next_bytes ? (int64_t)(h + 1) * slice : next_bytes;
                for (int64_t at = (int64_t)h * slice; at < end; at += 64) __builtin_prefetch(next + at, 0, 2);
            }
            const float *qh = qs + (int64_t)h * head_dim;
            const int64_t head_offset = (int64_t)(h / group) * head_dim;
            float *row = scores + (int64_t)h * block_size;
            float block_max = -INFINITY;
            int t = 0;
#ifdef HAVE_AVX2
            if (head_dim % 8 == 0) {
                for (; t + 8 <= n; t += 8)
                    _mm256_storeu_ps(row + t, _mm256_mul_ps(dot8(qh, base + t * slot_stride + head_offset, slot_stride,
                                                                 head_dim), _mm256_set1_ps(scale)));
                for (int u = 0; u < t; ++u) block_max = row[u] > block_max ? row[u] : block_max;
            }
#endif
            for (; t < n; ++t) {
                const float *k = base + t * slot_stride + head_offset;
                float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
                for (int d = 0; d < head_dim; ++d) dot += qh[d] * k[d];
                dot *= scale;
                row[t] = dot;
                block_max = dot > block_max ? dot : block_max;
            }
            const float m = block_max > maxes[h] ? block_max : maxes[h];
            const float correction = expf(maxes[h] - m);   /* exp(-inf) = 0 on the first block */
            float *oh = os + (int64_t)h * head_dim;
            float total = sums[h] * correction;
#pragma omp simd reduction(+ : total)
            for (int t = 0; t < n; ++t) {
                row[t] = expf(row[t] - m);
                total += row[t];
            }
            maxes[h] = m;
            sums[h] = total;
#ifdef HAVE_AVX2
            if (head_dim % 8 == 0) {
                weighted_values(oh, correction, row, base + value_offset + head_offset, n, slot_stride, head_dim);
                continue;
            }
#endif
#pragma omp simd
            for (int d = 0; d < head_dim; ++d) oh[d] *= correction;
            for (int t = 0; t < n; ++t) {
                const float pr = row[t];
                const float *v = base + t * slot_stride + value_offset + head_offset;
#pragma omp simd
                for (int d = 0; d < head_dim; ++d) oh[d] += pr * v[d];
            }
        }
    }
    for (int h = 0; h < num_heads; ++h) {
        const float inv = 1.0f / sums[h];
        float *oh = os + (int64_t)h * head_dim;
#pragma omp simd
        for (int d = 0; d < head_dim; ++d) oh[d] *= inv;
    }
}

int paged_attention_decode(const float *q, const float *kv_cache, const int32_t *tables, const int32_t *lengths,
                           float *out, int num_seqs, int num_heads, int num_kv_heads, int head_dim,
                           int block_size, int table_width, int64_t q_stride, float scale, int num_threads) {
    const int group = num_heads / num_kv_heads;
    if (num_heads > MAX_HEADS || group * num_kv_heads != num_heads) return 1;
    const int64_t slot_stride = (int64_t)2 * num_kv_heads * head_dim;
    const int64_t value_offset = (int64_t)num_kv_heads * head_dim;

    int failed = 0;
#pragma omp parallel num_threads(num_threads)
    {
        /* one block of scores per head, per thread (on the heap: worker threads may have small stacks) */
        float *scores = (float *)malloc(sizeof(float) * (size_t)num_heads * (size_t)block_size);
        if (scores == NULL) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int s = 0; s < num_seqs; ++s) {
            if (scores == NULL) continue;
            const float *qs = q + (int64_t)s * q_stride;
            float *os = out + (int64_t)s * num_heads * head_dim;
            const int32_t *table = tables + (int64_t)s * table_width;
            if (head_dim == 32)
                attend_one(qs, kv_cache, table, lengths[s], os, num_heads, group, 32, block_size, slot_stride,
                           value_offset, scale, scores);
            else if (head_dim == 64)
                attend_one(qs, kv_cache, table, lengths[s], os, num_heads, group, 64, block_size, slot_stride,
                           value_offset, scale, scores);
            else if (head_dim == 128)
                attend_one(qs, kv_cache, table, lengths[s], os, num_heads, group, 128, block_size, slot_stride,
                           value_offset, scale, scores);
            else
                attend_one(qs, kv_cache, table, lengths[s], os, num_heads, group, head_dim, block_size,
                           slot_stride, value_offset, scale, scores);
        }
        free(scores);
    }
    return failed ? 2 : 0;
}
