/*
 * test_compare.c — tests for `ropegpt compare`, `eval` and `viz`
 * (src/model/cmd_compare.c, compare_report.c, compare_extrap.c, cmd_eval.c,
 * cmd_viz.c, stats.c). One tiny comparison (1 layer, C 16, context 16, 4
 * steps, every encoding, 2 seeds, extrapolation to 4x) is run once and shared
 * by the tests that read its outputs: fairness (every encoding of a seed saw
 * the same training batches, via the batch hash in runs.csv), well-formed
 * figures, and the extrapolation table (finite losses at 4x for none, rope,
 * alibi, sinusoidal; "n/a" for learned). eval_at_context is also tested on
 * its own on untrained models.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/cmd_compare.h"
#include "model/cmd_eval.h"
#include "model/cmd_viz.h"
#include "model/stats.h"
#include "test.h"

int test_xml_wellformed(const char *s, char *why, size_t why_n);   /* test_svg.c */
char *test_read_text(const char *path);                             /* test_svg.c */

static const char *DATA = "data/tinyshakespeare.txt";

static int count_str(const char *s, const char *needle) {
    int n = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

static int xml_ok(const char *path) {
    char *t = test_read_text(path);
    if (!t) { printf("    cannot read %s\n", path); return 0; }
    char why[128];
    int ok = test_xml_wellformed(t, why, sizeof why);
    if (!ok) printf("    %s: %s\n", path, why);
    free(t);
    return ok;
}

/* The shared tiny comparison; returns its exit status (run once). */
static char cmp_dir[512];
static int cmp_rc = -1;
static int run_tiny_compare(void) {
    if (cmp_rc >= 0) return cmp_rc;
    snprintf(cmp_dir, sizeof cmp_dir, "%s/cmp", test_tmp_dir());
    char *argv[] = {"--pe", "none,learned,sinusoidal,rope,alibi", "--seeds", "2", "--seed", "7", "--steps", "4",
                    "--eval-every", "2", "--eval-batches", "1", "--layers", "1", "--heads", "2", "--dim", "16",
                    "--ctx", "16", "--batch", "2", "--warmup", "1", "--extrapolate", "1,4", "--ext-batches", "1",
                    "--threads", "1", "--quiet", "--data", (char *)DATA, "--out", cmp_dir};
    char out_path[600];
    snprintf(out_path, sizeof out_path, "%s/cmp_stdout.txt", test_tmp_dir());
    FILE *out = fopen(out_path, "w");
    if (!out) return cmp_rc = 99;
    cmp_rc = compare_main((int)(sizeof argv / sizeof argv[0]), argv, out, NULL);
    fclose(out);
    return cmp_rc;
}

/* Splits one CSV line in place into at most max fields; returns the count. */
static int split_csv(char *line, char **f, int max) {
    int n = 0;
    f[n++] = line;
    for (char *p = line; *p && n < max; p++)
        if (*p == ',') { *p = 0; f[n++] = p + 1; }
        else if (*p == '\n') *p = 0;
    return n;
}

TEST(stats_mean_std_thresholds) {
    double x[5] = {1, 2, NAN, 3, 6};
    CHECK_NEAR(stats_mean(x, 5), 3.0, 1e-15);                    /* (1+2+3+6)/4, NaN skipped */
    CHECK_NEAR(stats_std(x, 5), sqrt(14.0 / 3.0), 1e-15);        /* sample std, divisor 3 */
    CHECK_NEAR(stats_min(x, 5), 1.0, 0.0);
    CHECK_NEAR(stats_max(x, 5), 6.0, 0.0);
    CHECK_EQ_INT(stats_count(x, 5), 4);
    CHECK(isnan(stats_std(x, 1)));                              /* one value: no spread */
    CHECK(isnan(stats_mean(x + 2, 1)));
    int64_t steps[4] = {0, 50, 100, 150};
    double y[4] = {5.5, 2.4, 2.1, 2.2};
    CHECK_EQ_INT(stats_first_below(steps, y, 4, 2.2), 100);
    CHECK_EQ_INT(stats_first_below(steps, y, 4, 2.4), 50);      /* "at or below" */
    CHECK_EQ_INT(stats_first_below(steps, y, 4, 2.0), -1);
    CHECK_NEAR(stats_diff_in_std(2.0, 0.1, 1.8, 0.1), 2.0, 1e-12);
    CHECK(isnan(stats_diff_in_std(2.0, 0.0, 1.8, 0.0)));
}

TEST(compare_run_configs_differ_only_in_pe_and_seed) {
    compare_state c;
    memset(&c, 0, sizeof c);
    c.cfg = gpt_config_default();
    c.tc = train_config_default();
    c.pes[0] = PE_LEARNED;
    c.pes[1] = PE_ROPE;
    c.n_pe = 2;
    c.n_seeds = 2;
    c.seed0 = 100;
    gpt_config g0, g1;
    train_config t0, t1;
    compare_run_configs(&c, 1, 0, &g0, &t0);
    compare_run_configs(&c, 1, 1, &g1, &t1);
    CHECK(g0.pe == PE_LEARNED && g1.pe == PE_ROPE);
    CHECK_EQ_INT(t0.seed, 101);
    g1.pe = g0.pe;
    CHECK(memcmp(&g0, &g1, sizeof g0) == 0);   /* every other model field equal */
    CHECK(memcmp(&t0, &t1, sizeof t0) == 0);   /* identical training settings and seed */
}

TEST(compare_runs_of_a_seed_see_identical_batches) {
    CHECK_EQ_INT(run_tiny_compare(), 0);
    char path[700];
    snprintf(path, sizeof path, "%s/runs.csv", cmp_dir);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (!f) return;
    char line[1024], hash[2][64] = {"", ""};
    int rows = 0, per_seed[2] = {0, 0};
    CHECK(fgets(line, sizeof line, f) != NULL);
    CHECK(strstr(line, "batch_hash") != NULL);
    while (fgets(line, sizeof line, f)) {
        char *fl[16];
        int n = split_csv(line, fl, 16);
        CHECK_EQ_INT(n, 10);
        if (n != 10) break;
        int s = atoi(fl[1]) - 7;   /* seeds 7 and 8 */
        CHECK(s == 0 || s == 1);
        if (s != 0 && s != 1) break;
        CHECK_EQ_INT(atoi(fl[2]), 1);   /* run finished */
        CHECK(strlen(fl[9]) == 16);
        if (!hash[s][0]) snprintf(hash[s], sizeof hash[s], "%s", fl[9]);
        /* Every encoding of one seed drew the same training batches. */
        CHECK(strcmp(hash[s], fl[9]) == 0);
        per_seed[s]++;
        rows++;
    }
    fclose(f);
    CHECK_EQ_INT(rows, 10);
    CHECK_EQ_INT(per_seed[0], 5);
    /* ...and a different seed draws different batches (the hash sees them). */
    CHECK(strcmp(hash[0], hash[1]) != 0);
}

TEST(compare_writes_wellformed_figures_and_summary) {
    CHECK_EQ_INT(run_tiny_compare(), 0);
    const char *svgs[4] = {"val_loss.svg", "train_loss.svg", "extrapolation.svg", "extrapolation_positions.svg"};
    char path[700];
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", cmp_dir, svgs[i]);
        CHECK(xml_ok(path));
    }
    snprintf(path, sizeof path, "%s/val_loss.svg", cmp_dir);
    char *t = test_read_text(path);
    CHECK(t && strstr(t, ">sinusoidal</text>") && strstr(t, ">alibi</text>"));   /* legend */
    CHECK(t && strstr(t, "#0072B2"));                                            /* Okabe-Ito blue = rope */
    free(t);
    /* Left panel: every encoding once (rope included); right: rope and its 5
     * scalings. So rope's legend entry appears twice, the others once. */
    const char *names[2] = {"extrapolation.svg", "extrapolation_positions.svg"};
    for (int f = 0; f < 2; f++) {
        snprintf(path, sizeof path, "%s/%s", cmp_dir, names[f]);
        t = test_read_text(path);
        CHECK(t != NULL);
        if (!t) continue;
        CHECK_EQ_INT(count_str(t, ">rope</text>"), 2);
        CHECK_EQ_INT(count_str(t, ">alibi</text>"), 1);
        CHECK_EQ_INT(count_str(t, ">none</text>"), 1);
        CHECK_EQ_INT(count_str(t, ">sinusoidal</text>"), 1);
        CHECK_EQ_INT(count_str(t, ">rope+llama3</text>"), 1);
        CHECK_EQ_INT(count_str(t, ">rope+linear</text>"), 1);
        /* learned: its 1x point in extrapolation.svg; no curve past its table. */
        CHECK_EQ_INT(count_str(t, ">learned</text>"), f == 0 ? 1 : 0);
        free(t);
    }
    snprintf(path, sizeof path, "%s/summary.csv", cmp_dir);
    t = test_read_text(path);
    CHECK(t != NULL);
    if (t) {
        int lines = 0;
        for (char *p = t; *p; p++) lines += *p == '\n';
        CHECK_EQ_INT(lines, 6);   /* header + 5 encodings */
        CHECK(strstr(t, "\nlearned,2,") != NULL);
        CHECK(strstr(t, "nan") == NULL);
    }
    free(t);
    snprintf(path, sizeof path, "%s/rope_s8/log.csv", cmp_dir);
    t = test_read_text(path);
    CHECK(t && strncmp(t, "step,train_loss,val_loss", 24) == 0);
    free(t);
    snprintf(path, sizeof path, "%s/cmp_stdout.txt", test_tmp_dir());
    t = test_read_text(path);
    CHECK(t && strstr(t, "(baseline)") && strstr(t, "length extrapolation"));
    free(t);
}

TEST(compare_extrapolation_csv_has_finite_losses_and_learned_na) {
    CHECK_EQ_INT(run_tiny_compare(), 0);
    char path[700];
    snprintf(path, sizeof path, "%s/extrapolation.csv", cmp_dir);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (!f) return;
    char line[1024];
    int ok4 = 0, na = 0, rope_rows = 0;
    CHECK(fgets(line, sizeof line, f) != NULL);
    while (fgets(line, sizeof line, f)) {
        char *fl[16];
        if (split_csv(line, fl, 16) != 10) { CHECK(0); break; }
        int mult = atoi(fl[2]);
        if (strcmp(fl[0], "rope") == 0) rope_rows++;
        if (strcmp(fl[0], "learned") == 0 && mult == 4) {
            CHECK(strcmp(fl[4], "n/a") == 0);
            CHECK(fl[6][0] == 0);   /* no loss where it cannot run */
            na++;
        } else {
            CHECK(strcmp(fl[4], "ok") == 0);
            double loss = atof(fl[6]);
            CHECK(isfinite(loss) && loss > 0 && loss < 10);   /* byte vocab: ln 256 = 5.5 at init */
            if (mult == 4) {
                CHECK(isfinite(atof(fl[8])) && fl[8][0]);      /* positions past the training ctx */
                ok4++;
            }
        }
    }
    fclose(f);
    CHECK_EQ_INT(na, 1);
    CHECK_EQ_INT(ok4, 3 + 6);               /* none, sinusoidal, alibi + rope x 6 scalings */
    CHECK_EQ_INT(rope_rows, 2 * 6);
}

TEST(eval_longer_context_finite_except_learned) {
    dataset ds;
    CHECK_EQ_INT(dataset_load(&ds, DATA, 0), DATA_OK);
    for (int pe = 0; pe < PE_COUNT; pe++) {
        gpt_config cfg = gpt_config_default();
        cfg.L = 1; cfg.NH = 2; cfg.C = 16; cfg.maxT = 16; cfg.pe = (pe_type)pe;
        gpt m;
        CHECK_EQ_INT(gpt_init(&m, &cfg, 3), GPT_OK);
        eval_result r = {.pos_loss = NULL};
        char err[256] = "";
        int rc = eval_at_context(&m, &ds, 64, ROPE_SCALING_NONE, 0, 2, 2, &r, err, sizeof err);
        if (pe == PE_LEARNED) {
            CHECK_EQ_INT(rc, 1);
            CHECK(strstr(err, "n/a") != NULL);
            CHECK_EQ_INT(eval_at_context(&m, &ds, 16, ROPE_SCALING_NONE, 0, 2, 2, &r, err, sizeof err), 0);
            CHECK(isnan(r.loss_beyond));   /* no position past the training context */
        } else {
            CHECK_EQ_INT(rc, 0);
            /* Untrained byte model: loss near ln 256 = 5.55. */
            CHECK(isfinite(r.loss) && fabs(r.loss - log(256.0)) < 0.5);
            CHECK(isfinite(r.loss_beyond));
            CHECK_EQ_INT(r.windows, 4);
        }
        gpt_free(&m);
    }
    dataset_free(&ds);
}

TEST(eval_rope_scalings_are_applied_then_reset) {
    dataset ds;
    CHECK_EQ_INT(dataset_load(&ds, DATA, 0), DATA_OK);
    gpt_config cfg = gpt_config_default();
    cfg.L = 1; cfg.NH = 2; cfg.C = 16; cfg.maxT = 16; cfg.pe = PE_ROPE;
    gpt m;
    CHECK_EQ_INT(gpt_init(&m, &cfg, 5), GPT_OK);
    /* Larger q/k weights so that rotations visibly change the scores. */
    for (size_t i = 0; i < (size_t)3 * cfg.C * cfg.C; i++) m.params.qkvw[i] *= 40.0f;
    eval_result base = {.pos_loss = NULL}, r = {.pos_loss = NULL};
    char err[256];
    CHECK_EQ_INT(eval_at_context(&m, &ds, 64, ROPE_SCALING_NONE, 0, 2, 1, &base, err, sizeof err), 0);
    for (int v = 1; v < EVAL_N_SCALINGS; v++) {
        CHECK_EQ_INT(eval_at_context(&m, &ds, 64, eval_scaling_types[v], 0, 2, 1, &r, err, sizeof err), 0);
        CHECK(isfinite(r.loss));
        /* Each scaling changes the frequencies at factor 4, so the loss moves. */
        CHECK(r.loss != base.loss);
        CHECK_EQ_INT(eval_at_context(&m, &ds, 64, ROPE_SCALING_NONE, 0, 2, 1, &r, err, sizeof err), 0);
        /* Reset to no scaling: bit-identical to the first evaluation. */
        CHECK(r.loss == base.loss);
    }
    gpt_free(&m);
    dataset_free(&ds);
}

TEST(compare_rejects_bad_flags) {
    char d[600];
    snprintf(d, sizeof d, "%s/bad", test_tmp_dir());
    char *a1[] = {"--pe", "rope,bogus", "--out", d};
    CHECK_EQ_INT(compare_main(4, a1, stdout, NULL), 2);
    char *a2[] = {"--pe", "rope,rope", "--out", d};
    CHECK_EQ_INT(compare_main(4, a2, stdout, NULL), 2);
    char *a3[] = {"--extrapolate", "1,0", "--out", d};
    CHECK_EQ_INT(compare_main(4, a3, stdout, NULL), 2);
    char *a4[] = {"--extrapolate", "4,2", "--out", d};
    CHECK_EQ_INT(compare_main(4, a4, stdout, NULL), 2);
    char *a5[] = {"--seeds", "0", "--out", d};
    CHECK_EQ_INT(compare_main(4, a5, stdout, NULL), 2);
    /* an --out that cannot be created: refused before any training */
    char *a6[] = {"--pe", "rope", "--seeds", "1", "--steps", "1", "--out", "/proc/ropegpt-test/cmp"};
    CHECK_EQ_INT(compare_main(8, a6, stdout, NULL), 2);
}

TEST(viz_writes_three_wellformed_figures) {
    char d[600], path[700];
    snprintf(d, sizeof d, "%s/viz", test_tmp_dir());
    char *argv[] = {"--out", d, "--head-dim", "64", "--train-ctx", "64"};
    FILE *keep = stdout;
    (void)keep;
    CHECK_EQ_INT(cmd_viz(6, argv), 0);
    const char *files[3] = {"rope_rotation.svg", "rope_decay.svg", "rope_scaling.svg"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", d, files[i]);
        CHECK(xml_ok(path));
    }
    snprintf(path, sizeof path, "%s/rope_scaling.svg", d);
    char *t = test_read_text(path);
    CHECK(t && strstr(t, ">YaRN</text>") && strstr(t, ">Llama 3</text>"));
    free(t);
    char *bad[] = {"--head-dim", "63"};
    CHECK_EQ_INT(cmd_viz(2, bad), 2);
    char *bad_out[] = {"--out", "/proc/ropegpt-test/viz"};
    CHECK_EQ_INT(cmd_viz(2, bad_out), 2);
}

TEST(eval_command_on_compare_checkpoints) {
    CHECK_EQ_INT(run_tiny_compare(), 0);
    char model[700];
    snprintf(model, sizeof model, "%s/rope_s7/model.bin", cmp_dir);
    char *a1[] = {"--model", model, "--ctx", "64", "--rope-scaling", "yarn", "--batches", "1", "--batch", "2",
                  "--data", (char *)DATA};
    CHECK_EQ_INT(cmd_eval(12, a1), 0);
    /* A learned-position model cannot go past its table: a clear error, exit 2. */
    snprintf(model, sizeof model, "%s/learned_s7/model.bin", cmp_dir);
    char *a2[] = {"--model", model, "--ctx", "64", "--batches", "1", "--batch", "2", "--data", (char *)DATA};
    CHECK_EQ_INT(cmd_eval(10, a2), 2);
    char *a3[] = {"--model", model, "--ctx", "16", "--batches", "1", "--batch", "2", "--data", (char *)DATA};
    CHECK_EQ_INT(cmd_eval(10, a3), 0);
    /* Scaling is for rope models only. */
    char *a4[] = {"--model", model, "--rope-scaling", "ntk", "--data", (char *)DATA};
    CHECK_EQ_INT(cmd_eval(6, a4), 2);
    char *a5[] = {"--model", "/nonexistent/model.bin"};
    CHECK_EQ_INT(cmd_eval(2, a5), 2);
    /* A run folder stands for its model.bin, as with sample and generate;
     * a folder without one is an error. */
    snprintf(model, sizeof model, "%s/rope_s7", cmp_dir);
    char *a6[] = {"--model", model, "--ctx", "32", "--batches", "1", "--batch", "2", "--data", (char *)DATA};
    CHECK_EQ_INT(cmd_eval(10, a6), 0);
    char *a7[] = {"--model", cmp_dir, "--batches", "1", "--batch", "2", "--data", (char *)DATA};
    CHECK_EQ_INT(cmd_eval(8, a7), 2);
    /* A window longer than the validation split is bad input (exit 2), found
     * before any memory is sized for it. */
    char *a8[] = {"--model", model, "--ctx", "1000000", "--data", (char *)DATA};
    CHECK_EQ_INT(cmd_eval(6, a8), 2);
}

TEST(compare_resume_reuses_finished_runs_and_checks_settings) {
    char d[600];
    snprintf(d, sizeof d, "%s/resume", test_tmp_dir());
    char *argv[] = {"--pe", "rope,alibi", "--seeds", "1", "--steps", "3", "--eval-every", "3", "--eval-batches", "1",
                    "--layers", "1", "--heads", "2", "--dim", "16", "--ctx", "16", "--batch", "2", "--warmup", "1",
                    "--threads", "1", "--quiet", "--data", (char *)DATA, "--out", d, "--resume", "--lr", "0.001"};
    int argc = (int)(sizeof argv / sizeof argv[0]);
    FILE *out = tmpfile();
    CHECK(out != NULL);
    if (!out) return;
    CHECK_EQ_INT(compare_main(argc, argv, out, NULL), 0);   /* nothing to resume yet: trains */
    char path[700];
    snprintf(path, sizeof path, "%s/runs.csv", d);
    char *first = test_read_text(path);
    CHECK_EQ_INT(compare_main(argc, argv, out, NULL), 0);   /* reuses both finished runs */
    char *second = test_read_text(path);
    CHECK(first && second);
    if (first && second) {
        /* Same losses; the reused runs carry no batch hash (line ends in ','). */
        char *a = strchr(first, '\n'), *b = strchr(second, '\n');
        CHECK(a && b && strncmp(a + 1, b + 1, 30) == 0);
        CHECK(strstr(second, ",\n") != NULL);
        CHECK(strstr(first, ",\n") == NULL);
    }
    free(first);
    free(second);
    argv[argc - 1] = "0.002";                                /* another --lr: refused */
    CHECK_EQ_INT(compare_main(argc, argv, out, NULL), 1);
    fclose(out);
}
