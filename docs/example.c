/* example.c — the README's librope example: rotate q and k of 8 tokens. */
#include <stdio.h>
#include <rope.h>

int main(void) {
    rope_config cfg = rope_config_default();          /* head_dim 64, base 10000 */
    cfg.layout = ROPE_LAYOUT_HALF;                    /* GPT-NeoX / HF pairing */
    rope_table tab;
    rope_status st = rope_table_init(&tab, &cfg, cfg.max_positions);
    if (st != ROPE_OK) { fprintf(stderr, "rope: %s\n", rope_status_str(st)); return 2; }

    static float q[8 * 4 * 64], k[8 * 2 * 64];       /* (T, heads, head_dim): 4 q heads, 2 kv heads */
    int32_t pos[8] = {0, 1, 2, 3, 4, 5, 6, 7};        /* or any positions: KV-cache offset, packed rows */
    for (int i = 0; i < 8 * 4 * 64; i++) q[i] = (float)(i % 7) - 3.0f;
    for (int i = 0; i < 8 * 2 * 64; i++) k[i] = (float)(i % 5) - 2.0f;
    rope_view qv = rope_view_packed(q, 8, 4, 64), kv = rope_view_packed(k, 8, 2, 64);
    st = rope_apply_qk(&tab, ROPE_FORWARD, &qv, &kv, pos, 1);  /* in place, 1 thread */
    printf("%s: q[7,0,0:2] = %.4f %.4f\n", rope_status_str(st), q[7 * 256], q[7 * 256 + 1]);
    rope_table_free(&tab);
    return st == ROPE_OK ? 0 : 1;
}
