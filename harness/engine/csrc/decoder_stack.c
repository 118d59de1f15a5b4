/* Every decoder layer of a step in one call, for steps whose projections all go through the panel kernel
 * (up to PANEL_LINEAR_MAX_ROWS tokens, cpu_kernels.py): the same kernels in the same order as
 * model.Llama._forward_fused's Python loop, so the same arithmetic and the same tokens.
 *
 * Why: a batch-1 decode step of the small preset reads 128 MB of weights in ~6 ms at the measured
 * bandwidth, and the Python loop made 9 ctypes calls per layer (72 a step), each with its argument
 * conversion, a torch allocation and a few data_ptr() calls: ~1.5-3 ms of CPU a step on this machine,
 * a quarter of the roofline step. Here the loop is C and the scratch buffers are the caller's.
 *
 * Weights per layer (layer_ptrs [num_layers, 6], addresses): input norm weight [h], qkv panels, o panels,
 * post-attention norm weight [h], gate_up panels, down panels. kv_cache points at layer 0's
 * [slots, 2, Hkv, D]; layer l's starts kv_layer_stride floats further.
 */
#include <stdint.h>
#include <string.h>

int panel_linear(const float *x, const float *panels, float *y, int rows, int in, int out, int num_threads);
void add_rms_norm(float *x, const float *delta, const float *weight, float *out, int n, int h, float eps,
                  int num_threads);
void rotary_cache_write(float *qkv, int64_t row_stride, const int64_t *positions, const float *cos_table,
                        const float *sin_table, float *kv_cache, const int64_t *slots, int n, int num_heads,
                        int num_kv_heads, int head_dim, int num_threads);
int paged_attention_decode(const float *q, const float *kv_cache, const int32_t *tables, const int32_t *lengths,
                           float *out, int num_seqs, int num_heads, int num_kv_heads, int head_dim,
                           int block_size, int table_width, int64_t q_stride, float scale, int num_threads);
void silu_mul(const float *gate_up, float *out, int n, int inter, int num_threads);

/* x [n, h]: the residual stream, added to in place; on return delta [n, h] holds the last layer's MLP
   output (not yet added, as in the Python loop: the final norm adds it). Scratch: normed [n, h],
   qkv [n, (H + 2 Hkv) D], attn [n, H D], gate_up [n, 2 I], act [n, I].
   With lm_panels (not NULL) the step's tail runs here too, as Llama._forward_fused's Python did it: the
   num_samples rows sample_rows[] of x and delta are gathered (into sample_x, sample_delta [num_samples, h]),
   added and normed with final_norm (into normed) and projected to logits [num_samples, vocab]: the same
   kernels in the same order, so the same bits, without five torch ops and a ctypes call a step.
   Returns 0, or the failing kernel's code + 10 * layer. */
int decoder_stack(float *x, float *delta, float *normed, float *qkv, float *attn, float *gate_up, float *act,
                  const int64_t *layer_ptrs, int num_layers, float *kv_cache, int64_t kv_layer_stride,
                  const int64_t *positions, const int64_t *slots, const float *cos_table, const float *sin_table,
                  const int32_t *tables, const int32_t *lengths, int table_width, int block_size, int n,
                  int hidden, int num_heads, int num_kv_heads, int head_dim, int inter, float eps, float scale,
                  int num_threads, const int64_t *sample_rows, int num_samples, const float *final_norm,
                  const float *lm_panels, int vocab, float *sample_x, float *sample_delta, float *logits) {
    const int q_width = num_heads * head_dim, qkv_width = (num_heads + 2 * num_kv_heads) * head_dim;
    for (int l = 0; l < num_layers; ++l) {
        const int64_t *w = layer_ptrs + (int64_t)l * 6;
        float *kv = kv_cache + (int64_t)l * kv_layer_stride;
        add_rms_norm(x, l ? delta : 0, (const float *)w[0], normed, n, hidden, eps, num_threads);
        int rc = panel_linear(normed, (const float *)w[1], qkv, n, hidden, qkv_width, num_threads);
        if (rc) return rc + 10 * l;
        rotary_cache_write(qkv, qkv_width, positions, cos_table, sin_table, kv, slots, n, num_heads, num_kv_heads,
                           head_dim, num_threads);
        rc = paged_attention_decode(qkv, kv, tables, lengths, attn, n, num_heads, num_kv_heads, head_dim,
                                    block_size, table_width, qkv_width, scale, num_threads);
        if (rc) return rc + 10 * l;
        if ((rc = panel_linear(attn, (const float *)w[2], delta, n, q_width, hidden, num_threads))) return rc + 10 * l;
        add_rms_norm(x, delta, (const float *)w[3], normed, n, hidden, eps, num_threads);
        if ((rc = panel_linear(normed, (const float *)w[4], gate_up, n, hidden, 2 * inter, num_threads)))
            return rc + 10 * l;
        silu_mul(gate_up, act, n, inter, num_threads);
        if ((rc = panel_linear(act, (const float *)w[5], delta, n, inter, hidden, num_threads))) return rc + 10 * l;
    }
    if (lm_panels == 0 || num_samples == 0) return 0;
    for (int r = 0; r < num_samples; ++r) {
        memcpy(sample_x + (int64_t)r * hidden, x + sample_rows[r] * hidden, sizeof(float) * (size_t)hidden);
        memcpy(sample_delta + (int64_t)r * hidden, delta + sample_rows[r] * hidden, sizeof(float) * (size_t)hidden);
    }
    add_rms_norm(sample_x, sample_delta, final_norm, normed, num_samples, hidden, eps, num_threads);
    int rc = panel_linear(normed, lm_panels, logits, num_samples, hidden, vocab, num_threads);
    if (rc) return rc + 10 * num_layers;
    return 0;
}
