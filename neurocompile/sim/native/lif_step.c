/* One step of Lava's fixed-point LIF (leaky, with or without a synaptic current), fused into one pass.
 *
 * The reference engine (neurocompile/sim/engine.py, _Neurons) keeps u and v in int32,
 * as Lava does, and calls this for every spiking or readout population that is not on
 * the integrate-and-fire fast path (if_step.c). Each Lava rule (lif/models.py,
 * AbstractPyLifModelFixed.subthr_dynamics; sim/fixed_point.py names the lines) is one
 * expression here, and it is exact for every parameter and every input -- no bound
 * is assumed:
 *
 *   act  = wrap32(wrap32(a_in) << 6)           sum_k alpha_k * msg_k  (mod 2^32; alpha_k = 2^(e_k + 6) mod 2^32)
 *   cur  = wrap32(decay(u, 4095 - du) + act)   unsigned 32-bit add (mod 2^32)
 *   u    = cur - 2^24 if cur > 2^23,           one conditional wrap at 24 bits (never overflows:
 *          cur + 2^24 if cur <= -2^23          cur > 2^23 before a subtraction, <= -2^23 before an addition)
 *   volt = wrap32(decay(v, 4096 - dv) + u + bias)   unsigned 32-bit adds (mod 2^32)
 *   v    = clip(volt, -(2^23 - 1), 2^23 - 1)
 *   s    = v > vth << 6;   v -= vth << 6 (subtract reset) or v = 0 (zero reset) where s
 *   counts += s
 *
 * Lava's int32 stores wrap modulo 2^32, and so do unsigned additions and
 * multiplications in C (signed overflow, undefined in C, never happens here:
 * every wrapping sum is unsigned; the unsigned -> int32 conversions are modulo
 * 2^32 on every compiler torch supports).
 *
 * decay(x, f) = sign(x·f) · (|x·f| >> 12), i.e. x·f / 4096 rounded toward zero, for
 * any int32 x and 0 <= f <= 4096. The product needs up to 43 bits: in int64,
 * p = x·f, trunc0(p / 2^12) = (p + (p < 0 ? 2^12 - 1 : 0)) >> 12 (a floor of the
 * shifted-up value: ceil for negative p). The result satisfies |result| <= |x|,
 * so it is an int32 again and Lava's np.int32 cast after the decay is an identity.
 * (With -DNC_DECAY_SPLIT the product is split in 32-bit halves instead:
 * |x| = a·2^12 + b, |x·f| >> 12 = a·f + (b·f >> 12), with a·f <= 2^19·2^12 = 2^31 and
 * b·f < 2^24 in uint32 -- measured slower on AVX-512, kept for targets without
 * 64-bit vector multiplies.)
 *
 * Rows are processed in chunks that stay in L1: first the messages are summed into
 * a chunk of act, then the fused update runs over it. OpenMP splits the batch over
 * torch's thread count, as in if_step.c, when the step is large enough to gain from it.
 */
#include <stdint.h>

#include "syn_core.h"

#define CHUNK 512

static inline __attribute__((always_inline)) int32_t nc_decay(int32_t x, int32_t f, int32_t shift)
{
#ifdef NC_DECAY_SPLIT
    uint32_t m = x < 0 ? 0u - (uint32_t)x : (uint32_t)x;
    uint32_t lowmask = (1u << shift) - 1u;
    uint32_t d = (m >> shift) * (uint32_t)f + (((m & lowmask) * (uint32_t)f) >> shift);
    return (int32_t)(x < 0 ? 0u - d : d);
#else
    int64_t p = (int64_t)x * (int64_t)f;
    return (int32_t)((p + ((p >> 63) & (((int64_t)1 << shift) - 1))) >> shift);
#endif
}

/* The fused update over one chunk; the flags are compile-time constants at every call
 * (always_inline), so each combination is its own branch-free, vectorised loop. */
static inline __attribute__((always_inline)) void lif_chunk(
    int32_t *restrict u, int32_t *restrict v, const uint32_t *restrict act, const int32_t *restrict bias,
    int8_t *restrict spikes, int64_t m, int32_t fu, int32_t fv, int32_t shift, int32_t uv_max, int32_t vth,
    const int32_t *restrict fu_pn, const int32_t *restrict fv_pn, const int32_t *restrict vth_pn,
    const int keep_u, const int decay_u, const int decay_v, const int fire, const int zero_reset, const int per_neuron)
{
    const int32_t lo = -uv_max + 1, hi = uv_max - 1;
    #pragma omp simd
    for (int64_t i = 0; i < m; i++) {
        /* per_neuron: each neuron's own decay factors and threshold (heterogeneous time constants) */
        const int32_t fui = per_neuron ? fu_pn[i] : fu, fvi = per_neuron ? fv_pn[i] : fv, vthi = per_neuron ? vth_pn[i] : vth;
        uint32_t cur = act[i];
        if (decay_u) cur += (uint32_t)nc_decay(u[i], fui, shift);
        int32_t c = (int32_t)cur;
        int32_t un = c > uv_max ? c - 2 * uv_max : (c <= -uv_max ? c + 2 * uv_max : c);
        if (keep_u) u[i] = un;
        int32_t dv = decay_v ? nc_decay(v[i], fvi, shift) : v[i];
        int32_t x = (int32_t)((uint32_t)dv + (uint32_t)un + (uint32_t)bias[i]);
        x = x < lo ? lo : (x > hi ? hi : x);
        if (fire) {
            int32_t s = x > vthi;
            v[i] = s ? (zero_reset ? 0 : x - vthi) : x;
            spikes[i] = (int8_t)s;
        } else {
            v[i] = x;
        }
    }
}

#define NC_CHUNK(KU, DU, DV, FIRE, ZR) \
    lif_chunk(ur, vr, acc, bias + c0, sr, m, fu, fv, shift, uv_max, vth, 0, 0, 0, KU, DU, DV, FIRE, ZR, 0)
/* per-neuron parameters: u kept and both decays applied (a factor of 0 or 4096 is exact in nc_decay) */
#define NC_CHUNK_PN(FIRE, ZR) \
    lif_chunk(ur, vr, acc, bias + c0, sr, m, 0, 0, shift, uv_max, 0, fu_pn + c0, fv_pn + c0, vth_pn + c0, 1, 1, 1, FIRE, ZR, 1)
/* per-neuron dv and vth with du = 4095 for every neuron: nothing decays in u (u = act), stored only
 * where the engine will read it (KU; u NULL on the other steps) */
#define NC_CHUNK_PN1(KU, FIRE, ZR) \
    lif_chunk(ur, vr, acc, bias + c0, sr, m, 0, 0, shift, uv_max, 0, 0, fv_pn + c0, vth_pn + c0, KU, 0, 1, FIRE, ZR, 1)

/* The fused update of one row's chunk i = c0 .. c0 + m - 1 (off = b * n + c0 in u, v and counts; soff in
 * spikes) from its act, then the spike counts: the flag combination picks one of the specialised loops below. */
static void lif_update(int32_t *u, int32_t *v, const uint32_t *acc, const int32_t *bias, int8_t *spikes,
                       void *counts, int32_t counts_wide, int64_t off, int64_t soff, int64_t c0, int64_t m,
                       int32_t fu, int32_t fv, int32_t shift, int32_t uv_max, int32_t vth, int32_t zero_reset,
                       const int32_t *fu_pn, const int32_t *fv_pn, const int32_t *vth_pn,
                       int per_neuron, int decay_u, int decay_v)
{
    int32_t *ur = u ? u + off : 0, *vr = v + off;
    int8_t *sr = spikes ? spikes + soff : 0;
    if (per_neuron && !decay_u && !u) {
        if (!spikes) NC_CHUNK_PN1(0, 0, 0);
        else if (zero_reset) NC_CHUNK_PN1(0, 1, 1);
        else NC_CHUNK_PN1(0, 1, 0);
    } else if (per_neuron && !decay_u) {
        if (!spikes) NC_CHUNK_PN1(1, 0, 0);
        else if (zero_reset) NC_CHUNK_PN1(1, 1, 1);
        else NC_CHUNK_PN1(1, 1, 0);
    } else if (per_neuron) {
        if (!spikes) NC_CHUNK_PN(0, 0);
        else if (zero_reset) NC_CHUNK_PN(1, 1);
        else NC_CHUNK_PN(1, 0);
    } else if (!spikes) {  /* a readout */
        if (!u) { if (decay_v) NC_CHUNK(0, 0, 1, 0, 0); else NC_CHUNK(0, 0, 0, 0, 0); }
        else if (decay_u) { if (decay_v) NC_CHUNK(1, 1, 1, 0, 0); else NC_CHUNK(1, 1, 0, 0, 0); }
        else { if (decay_v) NC_CHUNK(1, 0, 1, 0, 0); else NC_CHUNK(1, 0, 0, 0, 0); }
    } else if (zero_reset) {
        if (!u) { if (decay_v) NC_CHUNK(0, 0, 1, 1, 1); else NC_CHUNK(0, 0, 0, 1, 1); }
        else if (decay_u) { if (decay_v) NC_CHUNK(1, 1, 1, 1, 1); else NC_CHUNK(1, 1, 0, 1, 1); }
        else { if (decay_v) NC_CHUNK(1, 0, 1, 1, 1); else NC_CHUNK(1, 0, 0, 1, 1); }
    } else {
        if (!u) { if (decay_v) NC_CHUNK(0, 0, 1, 1, 0); else NC_CHUNK(0, 0, 0, 1, 0); }
        else if (decay_u) { if (decay_v) NC_CHUNK(1, 1, 1, 1, 0); else NC_CHUNK(1, 1, 0, 1, 0); }
        else { if (decay_v) NC_CHUNK(1, 0, 1, 1, 0); else NC_CHUNK(1, 0, 0, 1, 0); }
    }
    if (!spikes) return;
    if (counts && counts_wide) {
        int32_t *restrict cr = (int32_t *)counts + off;
        #pragma omp simd
        for (int64_t i = 0; i < m; i++) cr[i] += sr[i];
    } else if (counts) {
        int8_t *restrict cr = (int8_t *)counts + off;
        #pragma omp simd
        for (int64_t i = 0; i < m; i++) cr[i] += sr[i];
    }
}

/* u: int32 (batch, n), or NULL when u is not kept (du = 4095: u = act, rebuilt by the engine
 *    from the last messages when asked for); fu = 4095 - du must then be 0.
 * act0: int32 rows of the static input's act (or NULL), act0_stride 0 (one row) or n.
 * msgs[k]: int32 (batch, n); alphas[k] = 2^(e_k + act_shift) mod 2^32.
 * spikes: int8 (batch, n) or NULL (a readout: never fires, nothing counted).
 * counts: NULL, int8 (counts_wide = 0) or int32 (counts_wide = 1), (batch, n).
 * fu_pn, fv_pn, vth_pn: NULL (one fu, fv, vth for all), or int32 (n,) each: per-neuron 4095 - du,
 *    4096 - dv and vth << 6; fu is then a flag: 0 when du = 4095 for every neuron (u = act is stored
 *    where u is non-NULL -- NULL on a step after which nothing reads it -- and fu_pn is not read),
 *    else nonzero (u must be non-NULL: it decays). */
void nc_lif_step(int32_t *u, int32_t *v, const int32_t *act0, int64_t act0_stride, const int32_t *bias,
                 const int32_t *const *msgs, const uint32_t *alphas, int32_t n_msgs,
                 int8_t *spikes, void *counts, int32_t counts_wide, int64_t batch, int64_t n,
                 int32_t fu, int32_t fv, int32_t shift, int32_t uv_max, int32_t vth, int32_t zero_reset,
                 int32_t threads, const int32_t *fu_pn, const int32_t *fv_pn, const int32_t *vth_pn)
{
    const int per_neuron = fv_pn != 0;
    const int decay_u = fu != 0, decay_v = fv != (1 << shift);
    /* small steps run on one thread: waking the team costs more than they take (and much
     * more on a loaded machine, where a sleeping thread may not get a core for a while) */
    #pragma omp parallel for schedule(static) num_threads(threads > 0 ? threads : 1) if (batch * n >= 32768)
    for (int64_t b = 0; b < batch; b++) {
        uint32_t acc[CHUNK];
        for (int64_t c0 = 0; c0 < n; c0 += CHUNK) {
            int64_t m = n - c0 < CHUNK ? n - c0 : CHUNK, off = b * n + c0;
            if (act0) {
                const int32_t *restrict a0 = act0 + b * act0_stride + c0;
                for (int64_t i = 0; i < m; i++) acc[i] = (uint32_t)a0[i];
            } else {
                for (int64_t i = 0; i < m; i++) acc[i] = 0;
            }
            for (int32_t k = 0; k < n_msgs; k++) {
                const int32_t *restrict x = msgs[k] + off;
                uint32_t a = alphas[k];
                #pragma omp simd
                for (int64_t i = 0; i < m; i++) acc[i] += a * (uint32_t)x[i];
            }
            lif_update(u, v, acc, bias, spikes, counts, counts_wide, off, off, c0, m, fu, fv, shift, uv_max, vth, zero_reset,
                       fu_pn, fv_pn, vth_pn, per_neuron, decay_u, decay_v);
        }
    }
}

/* A projection summed inside the fused step (nc_lif_fused): its source's activity and weights, as
 * syn_step.c's kernels take them, and how its sums enter act: alpha * (sums >> shift) modulo 2^32. */
typedef struct {
    const void *x;          /* kind 0: int8 spikes (0/1); kind 1: int32 graded values; kind 2: int64 graded values;
                               kind 3: int8 spikes through int8 fours (w16 = 2: nc_dense_rows8) */
    int64_t x_stride;       /* elements between rows of x */
    int64_t n_src;          /* values per row of x */
    const int64_t *rowptr;  /* kind 0: W (n, n_src) as CSR */
    const int32_t *col, *val;
    const int32_t *wt;      /* kinds 1, 2: W^T (n_src, n) int32, or int16 pairs as nc_dense_rows16 takes them (w16 = 1),
                               or int8 fours as nc_dense_rows8 takes them (w16 = 2) */
    int32_t kind, shift;    /* shift: Lava's floor shift of a negative weight exponent, else 0 */
    uint32_t alpha;         /* 2^(max(exp, 0) + act_shift) modulo 2^32 */
    int32_t w16;            /* kinds 1, 2: 1: weights and every |x| below 2^15 (int16 products); 2: every x in
                               0 .. 255 and weights (W >> k) in int8 (u8 x s8 products) */
} nc_input_t;

/* act rows 0 .. nb - 1 (row stride n) += input `in` of samples b0 .. b0 + nb - 1 of x (rows x_stride
 * apart; in->x is not read: the caller passes the rows, from the input or a block's spike buffer).
 * sT: scratch for the spike table of kind 0 (in->n_src * NC_L int32, 64-byte aligned). */
static void nc_add_input(const nc_input_t *in, const void *x, int64_t x_stride, int64_t b0, int64_t nb,
                         int32_t *sT, uint32_t *accb, int64_t n)
{
    if (in->kind == 0) {
        nc_spmm_block((const int8_t *)x + b0 * x_stride, x_stride, nb, in->n_src, in->rowptr,
                      in->col, in->val, sT, (int32_t *)accb, n, 1, in->shift, in->alpha);
        return;
    }
    if (in->kind == 3) {  /* spikes into few neurons (w16 = 2) */
        nc_spike_rows8((const int8_t *)x + b0 * x_stride, x_stride, nb, in->n_src, (const int8_t *)in->wt, n, in->shift,
                       (int32_t *)accb, in->alpha);
        return;
    }
    for (int64_t q0 = 0; q0 < nb; q0 += NC_DENSE_R) {
        int64_t r = nb - q0 < NC_DENSE_R ? nb - q0 : NC_DENSE_R;
        int32_t *out = (int32_t *)accb + q0 * n;
        /* the input dtype as a constant: one specialised loop each */
        if (in->w16 == 2 && in->kind == 2)
            nc_dense_rows8(x, NC_X_I64, x_stride, b0 + q0, r, in->n_src, (const int8_t *)in->wt, n, in->shift, out, in->alpha);
        else if (in->w16 == 2)
            nc_dense_rows8(x, NC_X_I32, x_stride, b0 + q0, r, in->n_src, (const int8_t *)in->wt, n, in->shift, out, in->alpha);
        else if (in->w16 && in->kind == 2)
            nc_dense_rows16(x, 1, x_stride, b0 + q0, r, in->n_src, (const int16_t *)in->wt, n, in->shift, out, 1, in->alpha);
        else if (in->w16)
            nc_dense_rows16(x, 0, x_stride, b0 + q0, r, in->n_src, (const int16_t *)in->wt, n, in->shift, out, 1, in->alpha);
        else
            nc_dense_rows(x, in->kind == 2, x_stride, b0 + q0, r, in->n_src, in->wt, n, in->shift, out, 1, in->alpha);
    }
}

/* nc_lif_step with the messages of n_inputs projections computed here, block by block (NC_L samples),
 * into the block's act while it is in cache, instead of each written to memory as a (batch, n)
 * message and read back. Same arguments as nc_lif_step otherwise. Returns 0, or -1 (nothing
 * written, u and v unchanged) when a thread's scratch memory could not be allocated. */
int nc_lif_fused(int32_t *u, int32_t *v, const int32_t *act0, int64_t act0_stride, const int32_t *bias,
                 const int32_t *const *msgs, const uint32_t *alphas, int32_t n_msgs,
                 const nc_input_t *inputs, int32_t n_inputs,
                 int8_t *spikes, void *counts, int32_t counts_wide, int64_t batch, int64_t n,
                 int32_t fu, int32_t fv, int32_t shift, int32_t uv_max, int32_t vth, int32_t zero_reset,
                 int32_t threads, const int32_t *fu_pn, const int32_t *fv_pn, const int32_t *vth_pn)
{
    const int per_neuron = fv_pn != 0;
    const int decay_u = fu != 0, decay_v = fv != (1 << shift);
    int64_t blocks = (batch + NC_L - 1) / NC_L, max_src = 1;
    for (int32_t p = 0; p < n_inputs; p++)
        if (inputs[p].kind == 0 && inputs[p].n_src > max_src) max_src = inputs[p].n_src;
    /* each thread's scratch (a block's act, the spike table) allocated up front: a failure writes
     * nothing, and the team meets only once, at the end */
    int team = threads > 0 && blocks > 1 && batch * n >= 32768 ? threads : 1;
    size_t acc_bytes = (size_t)((NC_L * (n > 0 ? n : 1) * 4 + 63) / 64 * 64), st_bytes = (size_t)(max_src * NC_L * 4);
    char *scratch = aligned_alloc(64, (size_t)team * (acc_bytes + st_bytes));
    if (!scratch) return -1;
    /* dynamic: blocks are equal, but on a loaded machine a thread may lose its core for a while;
     * the others then take its share instead of waiting for it at the end */
    #pragma omp parallel for schedule(dynamic, 1) num_threads(team)
    for (int64_t blk = 0; blk < blocks; blk++) {
        {
            char *mine = scratch + (size_t)nc_thread() * (acc_bytes + st_bytes);
            uint32_t *accb = (uint32_t *)mine;
            int32_t *sT = (int32_t *)(mine + acc_bytes);
            int64_t b0 = blk * NC_L, nb = batch - b0 < NC_L ? batch - b0 : NC_L;
            for (int64_t l = 0; l < nb; l++) {
                uint32_t *restrict row = accb + l * n;
                int64_t b = b0 + l;
                if (act0) {
                    const int32_t *restrict a0 = act0 + b * act0_stride;
                    for (int64_t i = 0; i < n; i++) row[i] = (uint32_t)a0[i];
                } else {
                    for (int64_t i = 0; i < n; i++) row[i] = 0;
                }
                for (int32_t k = 0; k < n_msgs; k++) {
                    const int32_t *restrict x = msgs[k] + b * n;
                    uint32_t a = alphas[k];
                    #pragma omp simd
                    for (int64_t i = 0; i < n; i++) row[i] += a * (uint32_t)x[i];
                }
            }
            for (int32_t p = 0; p < n_inputs; p++)
                nc_add_input(inputs + p, inputs[p].x, inputs[p].x_stride, b0, nb, sT, accb, n);
            for (int64_t l = 0; l < nb; l++)
                for (int64_t c0 = 0; c0 < n; c0 += CHUNK) {
                    int64_t m = n - c0 < CHUNK ? n - c0 : CHUNK;
                    lif_update(u, v, accb + l * n + c0, bias, spikes, counts, counts_wide, (b0 + l) * n + c0, (b0 + l) * n + c0, c0, m,
                               fu, fv, shift, uv_max, vth, zero_reset, fu_pn, fv_pn, vth_pn, per_neuron, decay_u, decay_v);
                }
        }
    }
    free(scratch);
    return 0;
}

/* One population of nc_run_blocks: its state (the caller's (batch, n) arrays, written in place), its
 * parameters as nc_lif_step takes them, and its inputs (edges first_edge .. first_edge + n_edges - 1). */
typedef struct {
    int32_t *u, *v;             /* u: written where it decays (decay_u), else at the last step only */
    void *counts;               /* int8 (counts_wide = 0) or int32; NULL: a readout (never fires: no spikes made) */
    int8_t *trains;             /* (batch, steps, n) spikes of a spiking population, or NULL */
    const int32_t *bias, *fu_pn, *fv_pn, *vth_pn;  /* per-neuron factors as nc_lif_step's, or NULL */
    int64_t n;
    int32_t fu, fv, vth, zero_reset, counts_wide, first_edge, n_edges, pad;
} nc_pop_t;

/* A projection into a population: its weights as nc_input_t (x unused) and where its rows come from:
 * source -1 the frames (step t - 1 of them), else that population's spikes of the previous step. */
typedef struct {
    nc_input_t in;
    int32_t source, pad;
} nc_edge_t;

/* The whole periodic schedule of nc_lif_fused's populations, NC_L samples at a time through every step.
 *
 * The engine's step loop streams every population's state through memory once a step (a 1,024-sample
 * batch of 800 neurons: 6 MB of u, v and counts per step) and pays Python between steps; here a
 * block's state stays in cache for all its steps (samples are independent), and Python calls once.
 * Step 0 resets (v, u, counts, spikes = 0); step t >= 1 sums, for every population, its projections of
 * what was sent at t - 1 (the frames' row t - 1, the sources' spikes of t - 1) into act and applies
 * nc_lif_step's update -- the same functions as nc_lif_fused, in the same order, so the same integers.
 * frames: (batch, steps, n_in) with strides f_sb, f_sp, 1 (elements), int8 / int32 / int64 (kind 0 / 1 / 2,
 * matching each frame edge's nc_input_t kind). Returns 0, or -1 when scratch memory could not be
 * allocated (nothing written). */
int nc_run_blocks(const nc_pop_t *pops, int32_t n_pops, const nc_edge_t *edges, const void *frames, int32_t frames_kind,
                  int64_t f_sb, int64_t f_sp, int64_t batch, int64_t steps, int32_t shift, int32_t uv_max, int32_t threads)
{
    int64_t blocks = (batch + NC_L - 1) / NC_L, max_n = 1, max_src = 1, spk = 0;
    for (int32_t p = 0; p < n_pops; p++) {
        max_n = pops[p].n > max_n ? pops[p].n : max_n;
        spk += pops[p].n;
        for (int32_t e = pops[p].first_edge; e < pops[p].first_edge + pops[p].n_edges; e++)
            if (edges[e].in.kind == 0 && edges[e].in.n_src > max_src) max_src = edges[e].in.n_src;
    }
    /* per thread: a block's act, the spike table, two spike buffers (steps t - 1 and t) of every population */
    size_t acc_bytes = (size_t)((NC_L * max_n * 4 + 63) / 64 * 64), st_bytes = (size_t)(max_src * NC_L * 4);
    size_t spk_bytes = (size_t)((NC_L * spk + 63) / 64 * 64), per = acc_bytes + st_bytes + 2 * spk_bytes;
    int team = threads > 0 && blocks > 1 ? threads : 1;
    char *scratch = aligned_alloc(64, (size_t)team * per);
    if (!scratch) return -1;
    const int esize = frames_kind == 2 ? 8 : (frames_kind == 1 ? 4 : 1);  /* bytes per frame value */
    #pragma omp parallel for schedule(dynamic, 1) num_threads(team)
    for (int64_t blk = 0; blk < blocks; blk++) {
        char *mine = scratch + (size_t)nc_thread() * per;
        uint32_t *accb = (uint32_t *)mine;
        int32_t *sT = (int32_t *)(mine + acc_bytes);
        int8_t *prev = (int8_t *)(mine + acc_bytes + st_bytes), *cur = prev + spk_bytes;
        int64_t b0 = blk * NC_L, nb = batch - b0 < NC_L ? batch - b0 : NC_L;
        memset(prev, 0, 2 * spk_bytes);  /* the reset step's spikes, and a readout's (never written) for good */
        for (int32_t p = 0; p < n_pops; p++) {  /* step 0: the reset */
            const nc_pop_t *P = pops + p;
            memset(P->v + b0 * P->n, 0, (size_t)(nb * P->n) * 4);
            if (P->u) memset(P->u + b0 * P->n, 0, (size_t)(nb * P->n) * 4);
            if (P->counts) memset((char *)P->counts + b0 * P->n * (P->counts_wide ? 4 : 1), 0, (size_t)(nb * P->n) * (P->counts_wide ? 4 : 1));
            for (int64_t l = 0; P->trains && l < nb; l++) memset(P->trains + (b0 + l) * steps * P->n, 0, (size_t)P->n);
        }
        for (int64_t t = 1; t < steps; t++) {
            int64_t so = 0;  /* population p's rows in the spike buffers start at NC_L * so */
            for (int32_t p = 0; p < n_pops; p++) {
                const nc_pop_t *P = pops + p;
                int64_t n = P->n;
                memset(accb, 0, (size_t)(nb * n) * 4);
                for (int32_t e = P->first_edge; e < P->first_edge + P->n_edges; e++) {
                    const nc_edge_t *E = edges + e;
                    if (E->source < 0) {
                        nc_add_input(&E->in, (const char *)frames + (size_t)((t - 1) * f_sp) * esize, f_sb, b0, nb, sT, accb, n);
                    } else {
                        int64_t o = 0;
                        for (int32_t q = 0; q < E->source; q++) o += pops[q].n;
                        nc_add_input(&E->in, prev + NC_L * o, E->in.n_src, 0, nb, sT, accb, n);
                    }
                }
                const int per_neuron = P->fv_pn != 0, decay_u = P->fu != 0, decay_v = P->fv != (1 << shift);
                int32_t *u = decay_u || t == steps - 1 ? P->u : 0;  /* u = act that nothing reads before the last step */
                int8_t *spikes = P->counts ? cur + NC_L * so : 0;
                for (int64_t l = 0; l < nb; l++) {
                    for (int64_t c0 = 0; c0 < n; c0 += CHUNK) {
                        int64_t m = n - c0 < CHUNK ? n - c0 : CHUNK;
                        lif_update(u, P->v, accb + l * n + c0, P->bias, spikes, P->counts, P->counts_wide, (b0 + l) * n + c0,
                                   l * n + c0, c0, m, P->fu, P->fv, shift, uv_max, P->vth, P->zero_reset,
                                   P->fu_pn, P->fv_pn, P->vth_pn, per_neuron, decay_u, decay_v);
                    }
                    if (P->trains && spikes) memcpy(P->trains + ((b0 + l) * steps + t) * n, spikes + l * n, (size_t)n);
                }
                so += n;
            }
            int8_t *tmp = prev; prev = cur; cur = tmp;
        }
    }
    free(scratch);
    return 0;
}
