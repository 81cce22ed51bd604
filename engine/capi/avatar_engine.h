/* avatar_engine.h: the C ABI of the avatar-vcam engine (libavatar_engine).
 *
 * Build:  python -m engine.capi.build --out DIR   (writes DIR/libavatar_engine.so and this
 *         header); link with  cc app.c -IDIR -LDIR -lavatar_engine -Wl,-rpath,DIR
 *
 * Model: one engine per process. A session is one stream of audio on the audio sample
 * clock: push_audio() appends mono float32 samples at AVATAR_ENGINE_SAMPLE_RATE; the n-th
 * frame of a session shows the instant n / AVATAR_ENGINE_FPS seconds into that audio and
 * is ready once audio up to that instant plus the engine's look-ahead (40 ms) has
 * been pushed. pull_frame() writes the next ready frame or says none is ready yet. Pushed
 * audio is queued (up to AVATAR_ENGINE_MAX_QUEUED_S seconds ahead of the frames pulled),
 * so a whole file may be pushed before its frames are pulled. Push silence to keep the
 * avatar alive (idle blinks and breathing) while nobody speaks; to get the frames of the
 * last look-ahead of an utterance, push that much silence after it.
 *
 * Every call returns AVATAR_ENGINE_OK (0) on success, AVATAR_ENGINE_NO_FRAME (1) from
 * pull_frame when no frame is ready, or a negative AVATAR_ENGINE_E_* code; last_error()
 * then holds one line saying what went wrong.
 *
 * Threads: calls may come from any thread; they are serialised by one lock inside the
 * library (the engine is not meant to be driven by two threads at once for speed).
 * last_error() is per thread: the message of this thread's latest call ("" after success).
 */
#ifndef AVATAR_ENGINE_H
#define AVATAR_ENGINE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AVATAR_ENGINE_SAMPLE_RATE 16000 /* Hz, mono float32 in [-1, 1] */
#define AVATAR_ENGINE_FPS 25            /* frames per second of audio */
#define AVATAR_ENGINE_MAX_QUEUED_S 600  /* seconds of audio pushed ahead of pulled frames */
#define AVATAR_ENGINE_MIN_SIZE 64       /* pull_frame width/height: even, in MIN..MAX */
#define AVATAR_ENGINE_MAX_SIZE 2048

#define AVATAR_ENGINE_OK 0
#define AVATAR_ENGINE_NO_FRAME 1       /* pull_frame: no frame ready; push more audio */
#define AVATAR_ENGINE_E_ARGUMENT (-1)  /* NULL pointer, negative length, bad size, ... */
#define AVATAR_ENGINE_E_STATE (-2)     /* wrong order: no init, no session, session open */
#define AVATAR_ENGINE_E_AVATAR (-3)    /* the avatar package is missing or malformed */
#define AVATAR_ENGINE_E_BACKLOG (-4)   /* too much audio queued ahead of pulled frames */
#define AVATAR_ENGINE_E_PYTHON (-5)    /* the embedded Python or the engine cannot load */
#define AVATAR_ENGINE_E_INTERNAL (-6)  /* an unexpected failure inside the engine */

/* Load the avatar: a package folder (with avatar.json) or the name of an installed or
 * bundled avatar ("leo"). Loads the models too, so it takes seconds. Not allowed while a
 * session runs; calling it again replaces the avatar. */
int init_avatar_engine(const char* avatar_root);

/* Start a session: the audio clock and the frame count start at 0, motion state is
 * fresh. E_STATE before init_avatar_engine or while a session runs. */
int start_session(void);

/* Append `length` samples (mono, AVATAR_ENGINE_SAMPLE_RATE, float in [-1, 1]; NaN/inf are
 * treated as silence/full scale). length 0 is a no-op. Nothing is appended on error. */
int push_audio(const float* pcm, int length);

/* Write the next frame into rgba_buffer: width * height * 4 bytes, rows top to bottom, no
 * padding, bytes R, G, B, A per pixel with A = 255. A size other than the avatar's frame
 * (512 x 512) is scaled (square sizes) or composed with the photo's backdrop extended to
 * the sides (other shapes), as avatar-vcam --size does. Returns AVATAR_ENGINE_NO_FRAME and
 * leaves the buffer alone when the next frame needs more audio. */
int pull_frame(uint8_t* rgba_buffer, int width, int height);

/* End the session; queued audio and unpulled frames are dropped. OK when none runs. */
int stop_session(void);

/* One line about this thread's latest call that failed ("" when it succeeded). The
 * pointer stays valid until this thread's next call into the library. */
const char* last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* AVATAR_ENGINE_H */
