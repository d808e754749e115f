/* Binary spikes through a sparse projection, dense over the batch: out = s @ W^T in int32.
 *
 * The reference engine (neurocompile/sim/engine.py, _Synapses) calls this for sparse
 * projections of spiking sources (s in {0, 1}, int8 (batch, n_src)) whose sums are
 * proven to fit int32 (no wrap: the engine's _row_l1_bound), in place of the dense int8
 * GEMM -- which does the work of every pruned synapse too. W is CSR by target:
 *
 *   out[b, i] = sum over k in rowptr[i] .. rowptr[i+1] of s[b, col[k]] * val[k]
 *
 * Spikes are random (an event list per sample would branch on every one of them);
 * weights are fixed and sparse. So the batch is the vector dimension: samples go in
 * blocks of L = 32 lanes, the block's spikes are transposed into one all-ones/zero
 * mask of L int32 per source (s = 1 -> -1, s = 0 -> 0), and each synapse adds
 * `mask & w` to its target's L lanes -- nnz * L / 16 vector adds per block, whatever
 * the spike rate. Both transposes (spikes in, sums out) are 16 x 16 int32 tile
 * transposes in registers on AVX-512; elsewhere the same loops in plain C.
 *
 * Exactness: every partial sum is bounded by the row's L1 norm (< 2^31, checked by
 * the engine), so the int32 sums are the exact integers; the additions are done as
 * unsigned (plain C) or lane-wise wrapping (AVX-512) arithmetic, so no signed
 * overflow can occur even if the caller's bound were wrong.
 */
#include "syn_core.h"

/* s: int8 (batch, n_src), values 0 or 1; rowptr (n_tgt + 1), col, val: W (n_tgt, n_src) as CSR;
 * out: int32 (batch, n_tgt). Returns 0, or -1 when the scratch memory could not be allocated
 * (nothing is written then: the engine computes it another way). */
int nc_spmm_step(const int8_t *s, int64_t batch, int64_t n_src, const int64_t *rowptr, const int32_t *col,
                 const int32_t *val, int32_t *out, int64_t n_tgt, int32_t threads)
{
    int64_t blocks = (batch + NC_L - 1) / NC_L;
    int team = threads > 0 && blocks > 1 && batch * n_tgt >= 32768 ? threads : 1;
    size_t st_bytes = (size_t)((n_src > 0 ? n_src : 1) * NC_L * 4);  /* a multiple of 64 */
    int32_t *scratch = aligned_alloc(64, (size_t)team * st_bytes);
    if (!scratch) return -1;
    /* dynamic: blocks are equal, but on a loaded machine a thread may lose its core for a while;
     * the others then take its share instead of waiting for it at the end */
    #pragma omp parallel for schedule(dynamic, 1) num_threads(team)
    for (int64_t blk = 0; blk < blocks; blk++) {
        int32_t *sT = (int32_t *)((char *)scratch + (size_t)nc_thread() * st_bytes);
        int64_t b0 = blk * NC_L, nb = batch - b0 < NC_L ? batch - b0 : NC_L;
        nc_spmm_block(s + b0 * n_src, n_src, nb, n_src, rowptr, col, val, sT, out + b0 * n_tgt, n_tgt, 0, 0, 1);
    }
    free(scratch);
    return 0;
}

/* Graded input through a small dense projection: out = (x @ W^T) >> shift in int32.
 *
 * For the direct (graded) input of a few channels: a float GEMM with K of ~20 runs far
 * below its peak, and around it the engine made three more passes (the input to float,
 * the sums to int32, the shift). Here x is read where it lies (int64 or int32, rows
 * x_stride apart: a step's slice of the frames) and each row's sums are built from
 * wt = W^T (n_in, n_out) int32, four rows at a time so that each weight vector loaded
 * serves four samples. All arithmetic is modulo 2^32 (unsigned): the engine calls this
 * only where the row's L1 bound times the largest |x| is below 2^31, so the true sum is
 * an int32 and its residue is that sum -- whatever the input dtype. The shift is
 * Lava's floor shift (arithmetic >>) of a negative weight exponent, 0 otherwise. */
/* x: int64 (x_i64 = 1) or int32 (batch rows x_stride elements apart, n_in contiguous values each);
 * wt: int32 (n_in, n_out); out: int32 (batch, n_out); 0 <= shift < 32. */
void nc_dense_step(const void *x, int32_t x_i64, int64_t x_stride, int64_t batch, int64_t n_in,
                   const int32_t *wt, int64_t n_out, int32_t shift, int32_t *out, int32_t threads)
{
    int64_t blocks = (batch + NC_DENSE_R - 1) / NC_DENSE_R;
    #pragma omp parallel for schedule(static) num_threads(threads > 0 ? threads : 1) if (batch * n_out * n_in >= 262144)
    for (int64_t blk = 0; blk < blocks; blk++) {
        int64_t b0 = blk * NC_DENSE_R, r = batch - b0 < NC_DENSE_R ? batch - b0 : NC_DENSE_R;
        nc_dense_rows(x, x_i64, x_stride, b0, r, n_in, wt, n_out, shift, out + b0 * n_out, 0, 1);
    }
}
