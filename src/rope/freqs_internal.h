/*
 * freqs_internal.h — librope's internal interface between rope_freqs()
 * (freqs.c: validation, inv0, dispatch) and the one-function-per-scaling
 * maths in scalings.c. Not installed.
 *
 * Every scaling function gets a config that rope_config_validate() accepted,
 * inv0[i] = base^(-2i/d) for i in [0, d/2) (d = rotary_dim), and writes the
 * scaled inverse frequencies to inv (n_pairs = d/2 doubles) and the scaling's own attention factor to *attn. rope_freqs()
 * replaces *attn by cfg->scaling.attention_factor when that is not NaN.
 * Two promises rope_freqs() relies on: inv may be the same array as inv0
 * (inv[i] is written only after inv0[i] is read, never read again), and the
 * attention factor never depends on rotary_dim.
 */
#ifndef ROPE_FREQS_INTERNAL_H
#define ROPE_FREQS_INTERNAL_H

#include <stdint.h>
#include "rope.h"

/* inv[i] = base^(-2i/d), i in [0, d/2): one pow per pair (no running
 * product, whose rounding error grows with i). */
void rope_inv_freq_base(double *inv, double base, int rotary_dim);

void rope_scaling_none(const rope_config *cfg, int64_t seq_len, const double *inv0,
                       double *inv, double *attn);
void rope_scaling_linear(const rope_config *cfg, int64_t seq_len, const double *inv0,
                         double *inv, double *attn);
void rope_scaling_ntk(const rope_config *cfg, int64_t seq_len, const double *inv0,
                      double *inv, double *attn);
void rope_scaling_dynamic(const rope_config *cfg, int64_t seq_len, const double *inv0,
                          double *inv, double *attn);
void rope_scaling_yarn(const rope_config *cfg, int64_t seq_len, const double *inv0,
                       double *inv, double *attn);
void rope_scaling_llama3(const rope_config *cfg, int64_t seq_len, const double *inv0,
                         double *inv, double *attn);
void rope_scaling_longrope(const rope_config *cfg, int64_t seq_len, const double *inv0,
                           double *inv, double *attn);
void rope_scaling_freq_factors(const rope_config *cfg, int64_t seq_len, const double *inv0,
                               double *inv, double *attn);

#endif
