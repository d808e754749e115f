/* Synapse kernels shared by syn_step.c (a projection's message on its own) and lif_step.c (the
 * messages summed inside the fused LIF step). See syn_step.c for what each computes and why
 * it is exact. Every function is static: each translation unit gets its own copy. */
#ifndef NC_SYN_CORE_H
#define NC_SYN_CORE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NC_L 32  /* samples per block of the sparse kernel: two 16-lane vectors */

#ifdef _OPENMP
#include <omp.h>
static inline int nc_thread(void) { return omp_get_thread_num(); }
#else
static inline int nc_thread(void) { return 0; }
#endif

/* Every alpha the engine passes is 2^a modulo 2^32 (a = exponent + act_shift): alpha * y modulo 2^32
 * is then y << a, a shift instead of a 32-bit multiply (several cycles on AVX-512), with a >= 32
 * (alpha = 0) shifting every bit out, as the multiply does. */
static inline int32_t nc_alpha_shift(uint32_t alpha) { return alpha ? __builtin_ctz(alpha) : 32; }

#if defined(__AVX512F__)
#include <immintrin.h>

/* r[0..15] (16 rows of 16 int32) -> its transpose, in place */
static inline __attribute__((always_inline)) void nc_tr16(__m512i r[16])
{
    __m512i t[16], u[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        u[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
        u[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
        u[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
        u[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    /* u[4q + c] holds, in each 128-bit lane m, rows 4q..4q+3 of column 4m + c */
    for (int c = 0; c < 4; c++) {
        __m512i a = _mm512_shuffle_i32x4(u[c], u[4 + c], 0x88), b = _mm512_shuffle_i32x4(u[c], u[4 + c], 0xDD);
        __m512i e = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0x88), f = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0xDD);
        r[c] = _mm512_shuffle_i32x4(a, e, 0x88);
        r[8 + c] = _mm512_shuffle_i32x4(a, e, 0xDD);
        r[4 + c] = _mm512_shuffle_i32x4(b, f, 0x88);
        r[12 + c] = _mm512_shuffle_i32x4(b, f, 0xDD);
    }
}
#endif

/* The block's spikes by source, for the nb <= NC_L samples (0 for the lanes beyond):
 * AVX-512: sT[j] = the NC_L-bit mask of the samples where source j fired (bit l: sample l),
 * 4 bytes per source, so that the table stays in L1 and each synapse is two masked adds;
 * plain C: sT[j * NC_L + l] = -(s[l * s_stride + j] != 0), an all-ones/zero mask per sample. */
static void nc_spikes_in(const int8_t *restrict s, int64_t s_stride, int64_t nb, int64_t ns, int32_t *restrict sT)
{
#if defined(__AVX512F__)
    uint16_t *bits = (uint16_t *)sT;  /* bits[2 j + g / 16]: lanes g .. g + 15 of source j */
    for (int64_t g = 0; g < NC_L; g += 16) {
        for (int64_t j0 = 0; j0 < ns; j0 += 16) {
            int64_t m = ns - j0 < 16 ? ns - j0 : 16;
            __mmask16 k = (__mmask16)((1u << m) - 1u);
            __m512i r[16];
            for (int l = 0; l < 16; l++)
                r[l] = g + l < nb ? _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(k, s + (g + l) * s_stride + j0)) : _mm512_setzero_si512();
            nc_tr16(r);
            for (int64_t jj = 0; jj < m; jj++)
                bits[2 * (j0 + jj) + g / 16] = (uint16_t)_mm512_test_epi32_mask(r[jj], r[jj]);
        }
    }
#else
    for (int64_t l = 0; l < NC_L; l++) {
        if (l < nb) {
            const int8_t *restrict sr = s + l * s_stride;
            for (int64_t j = 0; j < ns; j++) sT[j * NC_L + l] = -(int32_t)(sr[j] != 0);
        } else {
            for (int64_t j = 0; j < ns; j++) sT[j * NC_L + l] = 0;
        }
    }
#endif
}

/* aT[ii * NC_L + l]: the sums of targets i0 .. i0 + m - 1 (m <= 16) for every lane */
static inline void nc_sums(const int32_t *restrict sT, const int64_t *restrict rowptr, const int32_t *restrict col,
                           const int32_t *restrict val, int64_t i0, int64_t m, int32_t *restrict aT)
{
    for (int64_t ii = 0; ii < m; ii++) {
        int64_t k0 = rowptr[i0 + ii], k1 = rowptr[i0 + ii + 1];
#if defined(__AVX512F__)
        const uint32_t *restrict bits = (const uint32_t *)sT;
        __m512i a0 = _mm512_setzero_si512(), a1 = _mm512_setzero_si512();
        for (int64_t k = k0; k < k1; k++) {
            uint32_t b = bits[col[k]];
            __m512i w = _mm512_set1_epi32(val[k]);
            a0 = _mm512_mask_add_epi32(a0, (__mmask16)(b & 0xFFFFu), a0, w);
            a1 = _mm512_mask_add_epi32(a1, (__mmask16)(b >> 16), a1, w);
        }
        _mm512_store_si512(aT + ii * NC_L, a0);
        _mm512_store_si512(aT + ii * NC_L + 16, a1);
#else
        uint32_t acc[NC_L];
        for (int l = 0; l < NC_L; l++) acc[l] = 0;
        for (int64_t k = k0; k < k1; k++) {
            const int32_t *restrict mk = sT + (int64_t)col[k] * NC_L;
            uint32_t w = (uint32_t)val[k];
            #pragma omp simd
            for (int l = 0; l < NC_L; l++) acc[l] += (uint32_t)mk[l] & w;
        }
        for (int l = 0; l < NC_L; l++) aT[ii * NC_L + l] = (int32_t)acc[l];
#endif
    }
}

/* aT (m targets x NC_L lanes) -> rows l < nb, columns i0 .. i0 + m - 1 of out (row stride nt):
 * add = 0: out = sums; add = 1: out += alpha * (sums >> shift) modulo 2^32 (act of a fused step) */
static inline __attribute__((always_inline)) void nc_sums_out(
    const int32_t *restrict aT, int64_t nb, int64_t i0, int64_t m, int32_t *restrict out, int64_t nt,
    const int add, int32_t shift, uint32_t alpha)
{
#if defined(__AVX512F__)
    __mmask16 k = (__mmask16)((1u << m) - 1u);
    const __m128i sa = _mm_cvtsi32_si128(nc_alpha_shift(alpha));
    for (int64_t g = 0; g < NC_L && g < nb; g += 16) {
        __m512i r[16];
        for (int ii = 0; ii < 16; ii++)
            r[ii] = ii < m ? _mm512_load_si512(aT + ii * NC_L + g) : _mm512_setzero_si512();
        nc_tr16(r);
        for (int64_t l = 0; l < 16 && g + l < nb; l++) {
            int32_t *o = out + (g + l) * nt + i0;
            if (add) {
                __m512i x = _mm512_sll_epi32(_mm512_srai_epi32(r[l], (unsigned)shift), sa);
                _mm512_mask_storeu_epi32(o, k, _mm512_add_epi32(_mm512_maskz_loadu_epi32(k, o), x));
            } else {
                _mm512_mask_storeu_epi32(o, k, r[l]);
            }
        }
    }
#else
    for (int64_t l = 0; l < nb; l++)
        for (int64_t ii = 0; ii < m; ii++) {
            int32_t x = aT[ii * NC_L + l];
            if (add) {
                uint32_t *o = (uint32_t *)out + l * nt + i0 + ii;
                *o += alpha * (uint32_t)(x >> shift);
            } else {
                out[l * nt + i0 + ii] = x;
            }
        }
#endif
}

/* One block of nb <= NC_L samples through the sparse projection (s rows s_stride apart) into
 * out's rows (row stride nt): sums, or act += alpha * (sums >> shift) (add = 1). sT: scratch of
 * ns * NC_L int32, 64-byte aligned. */
static inline __attribute__((always_inline)) void nc_spmm_block(
    const int8_t *s, int64_t s_stride, int64_t nb, int64_t ns, const int64_t *rowptr, const int32_t *col,
    const int32_t *val, int32_t *sT, int32_t *out, int64_t nt, const int add, int32_t shift, uint32_t alpha)
{
    int32_t aT[16 * NC_L] __attribute__((aligned(64)));
    nc_spikes_in(s, s_stride, nb, ns, sT);
    for (int64_t i0 = 0; i0 < nt; i0 += 16) {
        int64_t m = nt - i0 < 16 ? nt - i0 : 16;
        nc_sums(sT, rowptr, col, val, i0, m, aT);
        nc_sums_out(aT, nb, i0, m, out, nt, add, shift, alpha);
    }
}

#define NC_DENSE_R 4
#define NC_DENSE_C 256

#if defined(__AVX512F__)
/* A tile's sums (rows q < r, 4 x 16 outputs masked by k) to out: out = sums >> shift, or out += alpha * (sums >> shift). */
static inline __attribute__((always_inline)) void nc_store_tile(__m512i acc[NC_DENSE_R][4], const __mmask16 k[4], int64_t r,
                                                               int32_t *restrict out, int64_t n_out, int32_t shift, int add, __m128i sa)
{
    for (int64_t q = 0; q < r; q++)
        for (int v = 0; v < 4; v++) {
            if (!k[v]) continue;
            int32_t *o = out + q * n_out + 16 * v;
            __m512i y = _mm512_srai_epi32(acc[q][v], (unsigned)shift);
            if (add) y = _mm512_add_epi32(_mm512_maskz_loadu_epi32(k[v], o), _mm512_sll_epi32(y, sa));
            _mm512_mask_storeu_epi32(o, k[v], y);
        }
}
#endif

/* Rows b0 .. b0 + r - 1 (r <= NC_DENSE_R) of graded x (int64 or int32, rows x_stride apart) through
 * wt = W^T (n_in, n_out) int32: add = 0: out = sums >> shift; add = 1: out += alpha * (sums >> shift)
 * modulo 2^32 (act of a fused step; alpha a power of two or 0). out points at row b0, rows n_out apart. */
static inline __attribute__((always_inline)) void nc_dense_rows(
    const void *x, int x_i64, int64_t x_stride, int64_t b0, int64_t r, int64_t n_in,
    const int32_t *restrict wt, int64_t n_out, int32_t shift, int32_t *restrict out, const int add, uint32_t alpha)
{
#if defined(__AVX512F__)
    /* a tile of 4 rows x 64 outputs in 16 registers: each weight vector loaded serves 4 samples */
    const __m128i sa = _mm_cvtsi32_si128(nc_alpha_shift(alpha));
    for (int64_t c0 = 0; c0 < n_out; c0 += 64) {
        int64_t m = n_out - c0 < 64 ? n_out - c0 : 64;
        __mmask16 k[4];
        for (int v = 0; v < 4; v++) {
            int64_t left = m - 16 * v;
            k[v] = left >= 16 ? (__mmask16)0xFFFF : (left <= 0 ? (__mmask16)0 : (__mmask16)((1u << left) - 1u));
        }
        __m512i acc[NC_DENSE_R][4];
        for (int q = 0; q < NC_DENSE_R; q++)
            for (int v = 0; v < 4; v++) acc[q][v] = _mm512_setzero_si512();
        for (int64_t j = 0; j < n_in; j++) {
            __m512i w[4];
            for (int v = 0; v < 4; v++) w[v] = _mm512_maskz_loadu_epi32(k[v], wt + j * n_out + c0 + 16 * v);
            for (int q = 0; q < NC_DENSE_R; q++) {
                int64_t at = (b0 + (q < r ? q : 0)) * x_stride + j;
                int32_t xq = q < r ? (x_i64 ? (int32_t)(uint32_t)((const int64_t *)x)[at] : ((const int32_t *)x)[at]) : 0;
                __m512i xb = _mm512_set1_epi32(xq);
                for (int v = 0; v < 4; v++) acc[q][v] = _mm512_add_epi32(acc[q][v], _mm512_mullo_epi32(xb, w[v]));
            }
        }
        nc_store_tile(acc, k, r, out + c0, n_out, shift, add, sa);
    }
#else
    for (int64_t c0 = 0; c0 < n_out; c0 += NC_DENSE_C) {
        int64_t m = n_out - c0 < NC_DENSE_C ? n_out - c0 : NC_DENSE_C;
        uint32_t acc[NC_DENSE_R][NC_DENSE_C] __attribute__((aligned(64)));
        for (int64_t q = 0; q < r; q++)
            for (int64_t i = 0; i < m; i++) acc[q][i] = 0;
        for (int64_t j = 0; j < n_in; j++) {
            uint32_t xv[NC_DENSE_R];
            for (int64_t q = 0; q < NC_DENSE_R; q++) {
                int64_t at = (b0 + (q < r ? q : 0)) * x_stride + j;
                xv[q] = q < r ? (x_i64 ? (uint32_t)((const int64_t *)x)[at] : (uint32_t)((const int32_t *)x)[at]) : 0;
            }
            const uint32_t *restrict w = (const uint32_t *)wt + j * n_out + c0;
            if (r == NC_DENSE_R) {
                #pragma omp simd
                for (int64_t i = 0; i < m; i++) {
                    uint32_t wi = w[i];
                    acc[0][i] += xv[0] * wi;
                    acc[1][i] += xv[1] * wi;
                    acc[2][i] += xv[2] * wi;
                    acc[3][i] += xv[3] * wi;
                }
            } else {
                for (int64_t q = 0; q < r; q++) {
                    #pragma omp simd
                    for (int64_t i = 0; i < m; i++) acc[q][i] += xv[q] * w[i];
                }
            }
        }
        for (int64_t q = 0; q < r; q++) {
            if (add) {
                uint32_t *restrict o = (uint32_t *)out + q * n_out + c0;
                #pragma omp simd
                for (int64_t i = 0; i < m; i++) o[i] += alpha * (uint32_t)(((int32_t)acc[q][i]) >> shift);
            } else {
                int32_t *restrict o = out + q * n_out + c0;
                #pragma omp simd
                for (int64_t i = 0; i < m; i++) o[i] = ((int32_t)acc[q][i]) >> shift;
            }
        }
    }
#endif
}

#define NC_X_I32 0
#define NC_X_I64 1
#define NC_X_I8 2

/* Element j of the row at x + row: int32, int64 or int8 (x_kind, a constant where inlined) */
static inline __attribute__((always_inline)) uint32_t nc_x(const void *x, int x_kind, int64_t at)
{
    return x_kind == NC_X_I64 ? (uint32_t)((const int64_t *)x)[at]
         : x_kind == NC_X_I8 ? (uint32_t)(uint8_t)((const int8_t *)x)[at] : (uint32_t)((const int32_t *)x)[at];
}

/* The scalar fallback (no AVX-512) of the packed dense kernels below: row ``row``'s sum for output i,
 * weights in groups of ``group`` input channels (2: int16 pairs, 4: int8 fours),
 * w[((j / group) * n_out + i) * group + j % group] = W[i, j]. Products and sums modulo 2^32 as in the
 * vector lanes; x as nc_x reads it (the engine bounds it to the lanes' width: |x| < 2^15, or 0 .. 255). */
static inline int32_t nc_packed_dot(const void *x, int x_kind, int64_t row, int64_t n_in, const void *w, int group,
                                    int64_t i, int64_t n_out)
{
    uint32_t acc = 0;
    for (int64_t j = 0; j < n_in; j++) {
        int64_t at = ((j / group) * n_out + i) * group + j % group;
        int32_t wj = group == 2 ? ((const int16_t *)w)[at] : ((const int8_t *)w)[at];
        acc += nc_x(x, x_kind, row + j) * (uint32_t)wj;
    }
    return (int32_t)acc;
}

/* nc_dense_rows with int16 weights and inputs (|w|, |x| < 2^15: the engine checks both), input
 * channels in pairs: w16[(jp * n_out + i) * 2 + h] = W[i, 2 jp + h] (zero past n_in). One
 * multiply-add of int16 pairs into int32 (vpdpwssd / vpmaddwd) does 32 products: a quarter of
 * the int32 multiplies and adds. Each pair's sum is below 2^31 and the lanes wrap modulo 2^32,
 * so the sums are exact as in nc_dense_rows. */
static inline __attribute__((always_inline)) void nc_dense_rows16(
    const void *x, int x_i64, int64_t x_stride, int64_t b0, int64_t r, int64_t n_in,
    const int16_t *restrict w16, int64_t n_out, int32_t shift, int32_t *restrict out, const int add, uint32_t alpha)
{
#if defined(__AVX512F__) && defined(__AVX512BW__)
    int64_t n_pairs = (n_in + 1) / 2;
    const __m128i sa = _mm_cvtsi32_si128(nc_alpha_shift(alpha));
    /* the rows' input pairs, built once for every column tile (up to 32 pairs: 64 channels, the
     * engine's limit; beyond that they are built in the tile loop) */
    uint32_t xp[NC_DENSE_R][32];
    const int pre = n_pairs <= 32;
    for (int64_t q = 0; pre && q < NC_DENSE_R; q++)
        for (int64_t jp = 0; jp < n_pairs; jp++) {
            uint32_t pair = 0;
            if (q < r) {
                int64_t at = (b0 + q) * x_stride + 2 * jp;
                uint32_t lo = x_i64 ? (uint32_t)((const int64_t *)x)[at] : (uint32_t)((const int32_t *)x)[at];
                uint32_t hi = 2 * jp + 1 < n_in ? (x_i64 ? (uint32_t)((const int64_t *)x)[at + 1] : (uint32_t)((const int32_t *)x)[at + 1]) : 0;
                pair = (lo & 0xFFFFu) | (hi << 16);
            }
            xp[q][jp] = pair;
        }
    for (int64_t c0 = 0; c0 < n_out; c0 += 64) {
        int64_t m = n_out - c0 < 64 ? n_out - c0 : 64;
        __mmask16 k[4];
        __mmask32 k2[4];
        for (int v = 0; v < 4; v++) {
            int64_t left = m - 16 * v;
            k[v] = left >= 16 ? (__mmask16)0xFFFF : (left <= 0 ? (__mmask16)0 : (__mmask16)((1u << left) - 1u));
            k2[v] = left >= 16 ? (__mmask32)0xFFFFFFFFu : (left <= 0 ? (__mmask32)0 : (__mmask32)((1u << (2 * left)) - 1u));
        }
        __m512i acc[NC_DENSE_R][4];
        for (int q = 0; q < NC_DENSE_R; q++)
            for (int v = 0; v < 4; v++) acc[q][v] = _mm512_setzero_si512();
        for (int64_t jp = 0; jp < n_pairs; jp++) {
            __m512i w[4];
            for (int v = 0; v < 4; v++) w[v] = _mm512_maskz_loadu_epi16(k2[v], w16 + (jp * n_out + c0 + 16 * v) * 2);
            for (int q = 0; q < NC_DENSE_R; q++) {
                uint32_t pair = 0;
                if (pre) {
                    pair = xp[q][jp];
                } else if (q < r) {
                    int64_t at = (b0 + q) * x_stride + 2 * jp;
                    uint32_t lo = x_i64 ? (uint32_t)((const int64_t *)x)[at] : (uint32_t)((const int32_t *)x)[at];
                    uint32_t hi = 2 * jp + 1 < n_in ? (x_i64 ? (uint32_t)((const int64_t *)x)[at + 1] : (uint32_t)((const int32_t *)x)[at + 1]) : 0;
                    pair = (lo & 0xFFFFu) | (hi << 16);
                }
                __m512i xb = _mm512_set1_epi32((int32_t)pair);
                for (int v = 0; v < 4; v++)
#if defined(__AVX512VNNI__)
                    acc[q][v] = _mm512_dpwssd_epi32(acc[q][v], xb, w[v]);
#else
                    acc[q][v] = _mm512_add_epi32(acc[q][v], _mm512_madd_epi16(xb, w[v]));
#endif
            }
        }
        nc_store_tile(acc, k, r, out + c0, n_out, shift, add, sa);
    }
#else
    for (int64_t q = 0; q < r; q++) {
        int64_t row = (b0 + q) * x_stride;
        for (int64_t i = 0; i < n_out; i++) {
            int32_t y = nc_packed_dot(x, x_i64 ? NC_X_I64 : NC_X_I32, row, n_in, w16, 2, i, n_out) >> shift;
            if (add) ((uint32_t *)out)[q * n_out + i] += alpha * (uint32_t)y;
            else out[q * n_out + i] = y;
        }
    }
#endif
}

/* Input channels 4 jq .. 4 jq + 3 of the row at x + row (values 0 .. 255) as four bytes, zero past n_in */
static inline __attribute__((always_inline)) uint32_t nc_quad(const void *x, int x_kind, int64_t row, int64_t jq, int64_t n_in)
{
    uint32_t quad = 0;
    if (x_kind == NC_X_I8 && 4 * jq + 3 < n_in) {  /* four bytes where they lie */
        memcpy(&quad, (const int8_t *)x + row + 4 * jq, 4);
        return quad;
    }
    for (int h = 0; h < 4; h++) {
        int64_t j = 4 * jq + h;
        quad |= (j < n_in ? nc_x(x, x_kind, row + j) & 0xFFu : 0u) << (8 * h);
    }
    return quad;
}

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
/* One tile of nc_dense_rows8: rows q < r, outputs c0 .. c0 + m - 1 (m <= 16 nv) in nv vectors (a
 * constant: the tile's accumulators stay in registers), input fours from xq (pre) or read here. */
static inline __attribute__((always_inline)) void nc_tile8(
    const void *x, int x_kind, int64_t x_stride, int64_t b0, int64_t r, int64_t n_in, const uint32_t xq[NC_DENSE_R][16],
    const int pre, const int8_t *restrict w8, int64_t n_out, int64_t c0, int64_t m, int32_t shift,
    int32_t *restrict out, __m128i sa, const int nv)
{
    int64_t n_quads = (n_in + 3) / 4;
    __mmask16 k[4];
    __mmask64 k4[4];
    for (int v = 0; v < 4; v++) {
        int64_t left = m - 16 * v;
        k[v] = left >= 16 ? (__mmask16)0xFFFF : (left <= 0 ? (__mmask16)0 : (__mmask16)((1u << left) - 1u));
        k4[v] = left >= 16 ? ~(__mmask64)0 : (left <= 0 ? (__mmask64)0 : (((__mmask64)1 << (4 * left)) - 1));
    }
    __m512i acc[NC_DENSE_R][4];
    for (int q = 0; q < NC_DENSE_R; q++)
        for (int v = 0; v < 4; v++) acc[q][v] = _mm512_setzero_si512();
    for (int64_t jq = 0; jq < n_quads; jq++) {
        __m512i w[4];
        for (int v = 0; v < nv; v++) w[v] = _mm512_maskz_loadu_epi8(k4[v], w8 + (jq * n_out + c0 + 16 * v) * 4);
        for (int q = 0; q < NC_DENSE_R; q++) {
            uint32_t quad = pre ? xq[q][jq] : (q < r ? nc_quad(x, x_kind, (b0 + q) * x_stride, jq, n_in) : 0);
            __m512i xb = _mm512_set1_epi32((int32_t)quad);
            for (int v = 0; v < nv; v++) acc[q][v] = _mm512_dpbusd_epi32(acc[q][v], xb, w[v]);
        }
    }
    nc_store_tile(acc, k, r, out + c0, n_out, shift, 1, sa);
}

#define NC_TILE8(PRE, NV) nc_tile8(x, x_kind, x_stride, b0, r, n_in, xq, PRE, w8, n_out, c0, m, shift, out, sa, NV)
#endif

/* nc_dense_rows for unsigned 8-bit input (0 <= x <= 255: the chip's graded payloads, or 0/1 spikes;
 * int32, int64 or int8 values by x_kind; the engine checks) and int8 weights W' = W >> k (the engine
 * folds the weights' common low zero bits k into shift and alpha), input channels in fours:
 * w8[(jq * n_out + i) * 4 + h] = W'[i, 4 jq + h] (zero past n_in). One u8 x s8 multiply-add (vpdpbusd) does 64 products, summed by fours into int32
 * lanes (each four below 2^17): half the instructions of the int16 pairs. The lanes wrap modulo
 * 2^32 and the engine's bound keeps every sum an int32: the sums are exact. Always adds into out
 * (act of a fused step): out += alpha * (sums >> shift) modulo 2^32. */
static inline __attribute__((always_inline)) void nc_dense_rows8(
    const void *x, int x_kind, int64_t x_stride, int64_t b0, int64_t r, int64_t n_in,
    const int8_t *restrict w8, int64_t n_out, int32_t shift, int32_t *restrict out, uint32_t alpha)
{
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
    int64_t n_quads = (n_in + 3) / 4;
    const __m128i sa = _mm_cvtsi32_si128(nc_alpha_shift(alpha));
    /* the rows' input fours, built once for every column tile (up to 16: 64 channels, the engine's
     * limit for graded input; beyond that -- spikes into a readout -- they are read in the tile) */
    uint32_t xq[NC_DENSE_R][16];
    const int pre = n_quads <= 16;
    for (int64_t q = 0; pre && q < NC_DENSE_R; q++)
        for (int64_t jq = 0; jq < n_quads; jq++) xq[q][jq] = q < r ? nc_quad(x, x_kind, (b0 + q) * x_stride, jq, n_in) : 0;
    for (int64_t c0 = 0; c0 < n_out; c0 += 64) {
        int64_t m = n_out - c0 < 64 ? n_out - c0 : 64;
        /* the number of vectors and where the fours come from as constants: one specialised loop each */
        if (m > 48) { if (pre) NC_TILE8(1, 4); else NC_TILE8(0, 4); }
        else if (m > 32) { if (pre) NC_TILE8(1, 3); else NC_TILE8(0, 3); }
        else if (m > 16) { if (pre) NC_TILE8(1, 2); else NC_TILE8(0, 2); }
        else { if (pre) NC_TILE8(1, 1); else NC_TILE8(0, 1); }
    }
#else
    for (int64_t q = 0; q < r; q++) {
        int64_t row = (b0 + q) * x_stride;
        for (int64_t i = 0; i < n_out; i++)
            ((uint32_t *)out)[q * n_out + i] += alpha * (uint32_t)(nc_packed_dot(x, x_kind, row, n_in, w8, 4, i, n_out) >> shift);
    }
#endif
}

/* Spikes (int8 0/1, or any u8) of rows 0 .. nb - 1 (x_stride apart) through int8 fours W' (as
 * nc_dense_rows8 takes them) into few outputs (n_out <= 64: a readout): out += alpha * (sums >> shift)
 * modulo 2^32, out rows n_out apart. A row at a time, its fours read where they lie, four
 * independent accumulator chains (the multiply-add's latency, not its throughput, would bound one
 * chain of few vectors); sums modulo 2^32 in any order: exact as in nc_dense_rows8. */
static inline void nc_spike_rows8(const int8_t *restrict x, int64_t x_stride, int64_t nb, int64_t n_in,
                                  const int8_t *restrict w8, int64_t n_out, int32_t shift, int32_t *restrict out, uint32_t alpha)
{
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
    const __m128i sa = _mm_cvtsi32_si128(nc_alpha_shift(alpha));
    int64_t n_quads = (n_in + 3) / 4;
    for (int64_t c0 = 0; c0 < n_out; c0 += 16) {
        int64_t m = n_out - c0 < 16 ? n_out - c0 : 16;
        __mmask16 k = (__mmask16)((1u << m) - 1u);
        __mmask64 k4 = m == 16 ? ~(__mmask64)0 : (((__mmask64)1 << (4 * m)) - 1);
        for (int64_t l = 0; l < nb; l++) {
            const int8_t *row = x + l * x_stride;
            __m512i acc[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
            int64_t jq = 0;
            for (; jq + 4 <= n_in / 4; jq += 4)
                for (int c = 0; c < 4; c++) {
                    uint32_t quad;
                    memcpy(&quad, row + 4 * (jq + c), 4);
                    __m512i w = _mm512_maskz_loadu_epi8(k4, w8 + ((jq + c) * n_out + c0) * 4);
                    acc[c] = _mm512_dpbusd_epi32(acc[c], _mm512_set1_epi32((int32_t)quad), w);
                }
            for (; jq < n_quads; jq++) {
                __m512i w = _mm512_maskz_loadu_epi8(k4, w8 + (jq * n_out + c0) * 4);
                acc[0] = _mm512_dpbusd_epi32(acc[0], _mm512_set1_epi32((int32_t)nc_quad(row, NC_X_I8, 0, jq, n_in)), w);
            }
            __m512i y = _mm512_add_epi32(_mm512_add_epi32(acc[0], acc[1]), _mm512_add_epi32(acc[2], acc[3]));
            int32_t *o = out + l * n_out + c0;
            y = _mm512_sll_epi32(_mm512_srai_epi32(y, (unsigned)shift), sa);
            _mm512_mask_storeu_epi32(o, k, _mm512_add_epi32(_mm512_maskz_loadu_epi32(k, o), y));
        }
    }
#else
    for (int64_t l = 0; l < nb; l++)
        nc_dense_rows8(x + l * x_stride, NC_X_I8, 0, 0, 1, n_in, w8, n_out, shift, out + l * n_out, alpha);
#endif
}

#endif
