/* push_wav: drive libavatar_engine from plain C, the way an application would.
 *
 * usage: push_wav AVATAR WAV WIDTH HEIGHT Y0 Y1 X0 X1
 *
 * Pushes 1 s of silence, then the WAV (16 kHz mono, 16-bit PCM or float32), then 0.2 s of
 * silence, in 20 ms blocks, pulling every ready frame after each block. For each frame it
 * prints how open the mouth looks in the box rows Y0..Y1, columns X0..X1 (fraction of dark
 * pixels) and how far the box differs from the first frame (mean absolute difference).
 * The last line is a summary with the cost of the calls. Exits 0 when the lips moved with
 * the speech and not in the silence, 3 when they did not, 2 on any API misbehaviour.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "avatar_engine.h"

#define BLOCK (AVATAR_ENGINE_SAMPLE_RATE / 50) /* 20 ms */
#define SILENCE_S 1.0

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void fail(const char* what, int code) {
    fprintf(stderr, "push_wav: %s returned %d: %s\n", what, code, last_error());
    exit(2);
}

static void expect(const char* what, int got, int want) {
    if (got != want) {
        fprintf(stderr, "push_wav: %s returned %d, expected %d (last_error: %s)\n", what,
                got, want, last_error());
        exit(2);
    }
    if (want < 0 && last_error()[0] == 0) {
        fprintf(stderr, "push_wav: %s failed with no last_error message\n", what);
        exit(2);
    }
}

static uint32_t le32(const unsigned char* p) {
    return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A minimal RIFF/WAVE reader: mono 16 kHz, PCM 16-bit or IEEE float 32-bit. */
static float* read_wav(const char* path, int* n_out) {
    FILE* f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "push_wav: cannot open %s\n", path); exit(2); }
    unsigned char hdr[12], ch[8];
    if (fread(hdr, 1, 12, f) != 12 || memcmp(hdr, "RIFF", 4) || memcmp(hdr + 8, "WAVE", 4)) {
        fprintf(stderr, "push_wav: %s is not a RIFF/WAVE file\n", path); exit(2);
    }
    int format = 0, channels = 0, rate = 0, bits = 0;
    while (fread(ch, 1, 8, f) == 8) {
        uint32_t size = le32(ch + 4);
        if (!memcmp(ch, "fmt ", 4)) {
            unsigned char fmt[16];
            if (size < 16 || fread(fmt, 1, 16, f) != 16) break;
            format = fmt[0] | fmt[1] << 8;
            channels = fmt[2] | fmt[3] << 8;
            rate = (int)le32(fmt + 4);
            bits = fmt[14] | fmt[15] << 8;
            fseek(f, (long)(size - 16 + (size & 1)), SEEK_CUR);
        } else if (!memcmp(ch, "data", 4)) {
            if (channels != 1 || rate != AVATAR_ENGINE_SAMPLE_RATE
                    || !((format == 1 && bits == 16) || (format == 3 && bits == 32))) {
                fprintf(stderr, "push_wav: %s must be mono %d Hz 16-bit PCM or float32 "
                        "(format %d, %d ch, %d Hz, %d bits)\n", path,
                        AVATAR_ENGINE_SAMPLE_RATE, format, channels, rate, bits);
                exit(2);
            }
            int n = (int)(size / (bits / 8));
            unsigned char* raw = malloc(size);
            float* pcm = malloc(sizeof(float) * (n ? n : 1));
            if (!raw || !pcm || fread(raw, 1, size, f) != size) {
                fprintf(stderr, "push_wav: %s: short data chunk\n", path); exit(2);
            }
            for (int i = 0; i < n; i++) {
                if (format == 1) {
                    pcm[i] = (int16_t)(raw[2 * i] | raw[2 * i + 1] << 8) / 32768.0f;
                } else {
                    uint32_t u = le32(raw + 4 * i);
                    memcpy(&pcm[i], &u, 4);
                }
            }
            free(raw);
            fclose(f);
            *n_out = n;
            return pcm;
        } else {
            fseek(f, (long)(size + (size & 1)), SEEK_CUR);
        }
    }
    fprintf(stderr, "push_wav: %s has no fmt/data chunks\n", path);
    exit(2);
}

static int W, H, Y0, Y1, X0, X1, frames;
static uint8_t *rgba, *first;
static double pull_ms, push_ms, open_max[2], diff_max[2];
static int pulls;

/* Pull every ready frame and measure its mouth box. */
static void pull_ready(void) {
    for (;;) {
        double t = now_ms();
        int rc = pull_frame(rgba, W, H);
        pull_ms += now_ms() - t;
        if (rc == AVATAR_ENGINE_NO_FRAME) return;
        if (rc != AVATAR_ENGINE_OK) fail("pull_frame", rc);
        pulls++;
        if (frames == 0) memcpy(first, rgba, (size_t)W * H * 4);
        int dark = 0, count = 0;
        double diff = 0;
        for (int y = Y0; y < Y1; y++) {
            for (int x = X0; x < X1; x++) {
                const uint8_t* p = rgba + ((size_t)y * W + x) * 4;
                const uint8_t* q = first + ((size_t)y * W + x) * 4;
                if (p[3] != 255) { fprintf(stderr, "push_wav: alpha is not 255\n"); exit(2); }
                dark += 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2] < 60;
                for (int c = 0; c < 3; c++) diff += abs(p[c] - q[c]);
                count++;
            }
        }
        double pts = (double)frames / AVATAR_ENGINE_FPS, open = (double)dark / count;
        diff /= 3.0 * count;
        int speech = pts >= SILENCE_S;
        if (pts < SILENCE_S - 0.1 || speech) {
            if (open > open_max[speech]) open_max[speech] = open;
            if (diff > diff_max[speech]) diff_max[speech] = diff;
        }
        printf("frame %d pts %.2f speech %d open %.4f diff %.2f\n", frames, pts, speech,
               open, diff);
        frames++;
    }
}

static void push_block(const float* pcm, int n) {
    double t = now_ms();
    int rc = push_audio(pcm, n);
    push_ms += now_ms() - t;
    if (rc != AVATAR_ENGINE_OK) fail("push_audio", rc);
    pull_ready();
}

int main(int argc, char** argv) {
    if (argc != 9) {
        fprintf(stderr, "usage: push_wav AVATAR WAV WIDTH HEIGHT Y0 Y1 X0 X1\n");
        return 2;
    }
    W = atoi(argv[3]); H = atoi(argv[4]);
    Y0 = atoi(argv[5]); Y1 = atoi(argv[6]); X0 = atoi(argv[7]); X1 = atoi(argv[8]);
    int n = 0;
    float* wav = read_wav(argv[2], &n);
    rgba = malloc((size_t)W * H * 4);
    first = malloc((size_t)W * H * 4);
    static float zeros[BLOCK * 5];

    /* the order of calls is checked before anything is loaded */
    expect("start_session before init", start_session(), AVATAR_ENGINE_E_STATE);
    expect("pull_frame before init", pull_frame(rgba, W, H), AVATAR_ENGINE_E_STATE);
    expect("init_avatar_engine(NULL)", init_avatar_engine(NULL), AVATAR_ENGINE_E_ARGUMENT);
    expect("init_avatar_engine(no such folder)", init_avatar_engine("/nonexistent/avatar"),
           AVATAR_ENGINE_E_AVATAR);

    double t = now_ms();
    int rc = init_avatar_engine(argv[1]);
    double init_ms = now_ms() - t;
    if (rc != AVATAR_ENGINE_OK) fail("init_avatar_engine", rc);
    expect("push_audio before start_session", push_audio(zeros, BLOCK), AVATAR_ENGINE_E_STATE);
    t = now_ms();
    if ((rc = start_session()) != AVATAR_ENGINE_OK) fail("start_session", rc);
    double start_ms = now_ms() - t;
    expect("start_session twice", start_session(), AVATAR_ENGINE_E_STATE);
    expect("push_audio(NULL, 10)", push_audio(NULL, 10), AVATAR_ENGINE_E_ARGUMENT);
    expect("push_audio(length -1)", push_audio(zeros, -1), AVATAR_ENGINE_E_ARGUMENT);
    expect("pull_frame(odd width)", pull_frame(rgba, W + 1, H), AVATAR_ENGINE_E_ARGUMENT);
    expect("pull_frame with no audio", pull_frame(rgba, W, H), AVATAR_ENGINE_NO_FRAME);
    if (last_error()[0] != 0) { fprintf(stderr, "push_wav: last_error after success\n"); return 2; }

    for (int i = 0; i < SILENCE_S * AVATAR_ENGINE_SAMPLE_RATE; i += BLOCK) push_block(zeros, BLOCK);
    for (int i = 0; i < n; i += BLOCK) push_block(wav + i, n - i < BLOCK ? n - i : BLOCK);
    for (int i = 0; i < AVATAR_ENGINE_SAMPLE_RATE / 5; i += BLOCK) push_block(zeros, BLOCK);
    int expected = (int)((SILENCE_S + n / (double)AVATAR_ENGINE_SAMPLE_RATE + 0.2) * AVATAR_ENGINE_FPS);
    if (frames < expected - 3) {
        fprintf(stderr, "push_wav: %d frames for %d expected\n", frames, expected);
        return 2;
    }
    if ((rc = stop_session()) != AVATAR_ENGINE_OK) fail("stop_session", rc);
    expect("pull_frame after stop_session", pull_frame(rgba, W, H), AVATAR_ENGINE_E_STATE);

    /* a second session starts from pts 0 again */
    if ((rc = start_session()) != AVATAR_ENGINE_OK) fail("second start_session", rc);
    push_audio(zeros, BLOCK * 5);
    if ((rc = pull_frame(rgba, W, H)) != AVATAR_ENGINE_OK) fail("pull_frame in session 2", rc);
    if ((rc = stop_session()) != AVATAR_ENGINE_OK) fail("second stop_session", rc);

    printf("summary frames %d silence_open %.4f speech_open %.4f silence_diff %.2f "
           "speech_diff %.2f init_ms %.0f start_ms %.0f push_ms_per_frame %.3f "
           "pull_ms_per_frame %.2f\n", frames, open_max[0], open_max[1], diff_max[0],
           diff_max[1], init_ms, start_ms, push_ms / pulls, pull_ms / pulls);
    if (!(open_max[1] > open_max[0] + 0.05 && diff_max[1] > 2 * diff_max[0] + 1.0)) {
        fprintf(stderr, "push_wav: the lips did not move with the speech\n");
        return 3;
    }
    free(wav); free(rgba); free(first);
    return 0;
}
