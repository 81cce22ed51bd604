"""Lip sync and head motion on real human voices, against force-aligned phones.

    python bench/lipsync_aligned.py [--split eval] [--a2m dsp,learned,FILE.npz]
                                    [--lookahead-ms 40] [--json out.json]

Recordings of real people with transcripts come from registry packages
(:mod:`engine.audio2motion.training.real_speech`, split ``eval``: speakers never used for
training or tuning); PocketSphinx aligns their phones
(:mod:`engine.audio2motion.training.alignment`, +10 ms correction). Each model streams
every clip in 20 ms blocks; the mouth is compared with the phone targets
(:mod:`engine.audio2motion.training.evaluation`). Head motion: the speech gestures'
pitch/yaw speed against a train of syllable (vowel) onsets, and their size in silence.
Needs ``pip install 'avatar-vcam[eval]'`` and network access to the registries once.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
from pathlib import Path

import numpy as np

from engine.audio2motion import make_audio2motion
from engine.audio2motion.gestures import SpeechGestures
from engine.audio2motion.training.alignment import to_clip
from engine.audio2motion.training.corpus import Clip
from engine.audio2motion.training.evaluation import Scores, stream_clip
from engine.audio2motion.training.phones import is_pause, pose
from engine.audio2motion.training.real_speech import recordings
from engine.motion import CHANNEL_INDEX

FPS = 100
COLUMNS = [("r_jaw", "r jawOpen", "{:.3f}"), ("silence_closed_all", "silence closed", "{:.1%}"),
           ("closed_after_80ms", "jaw < 0.1 at +80 ms", "{:.1%}"),
           ("bilabial_shut", "p/b/m shut", "{:.1%}"), ("other_shut", "other speech shut", "{:.1%}"),
           ("bilabial_auc", "p/b/m AUC", "{:.2f}"), ("rounded_auc", "round/spread AUC", "{:.2f}"),
           ("labiodental_auc", "f/v AUC", "{:.2f}"),
           ("onset_lag_ms", "onset lag ms", "{:+.0f}"),
           ("jaw_open_vowels", "jaw open vowels", "{:.2f}"),
           ("jaw_consonants", "jaw consonants", "{:.2f}")]


def vowel_onsets(clip: Clip) -> list[float]:
    """Start times of vowels (the nuclei of syllables): target jaw >= 0.3, no closure."""
    return [p.start for p in clip.phones
            if not is_pause(p.name) and pose(p.name)[0] >= 0.3 and pose(p.name)[1] == 0]


def head_scores(clip: Clip, lookahead_ms: float) -> dict[str, float]:
    """r of head speed (|d pitch| + |d yaw|) with a train of syllable onsets (Gaussians of
    60 ms), and the largest gesture angle in pauses that start >= 1.5 s after speech."""
    g = SpeechGestures(lookahead_ms, history_s=1e9)
    x = np.concatenate([clip.pcm, np.zeros(clip.sr, np.float32)])
    for i in range(0, len(x), clip.sr // 50):
        g.push(x[i:i + clip.sr // 50], i / clip.sr, clip.sr)
    n = int(len(clip.pcm) / clip.sr * FPS)
    t = np.arange(n) / FPS
    pose_ = np.stack([g.value_at(float(s))[[CHANNEL_INDEX["pitch"], CHANNEL_INDEX["yaw"]]]
                      for s in t])
    speed = np.abs(np.diff(pose_, axis=0)).sum(axis=1)
    train = np.zeros(n)
    for o in vowel_onsets(clip):
        train += np.exp(-0.5 * ((t - o) / 0.06) ** 2)
    r = float(np.corrcoef(speed, train[1:])[0, 1]) if speed.std() > 0 else 0.0
    speech_end = max((p.end for p in clip.phones if not is_pause(p.name)), default=0.0)
    late = t > speech_end + 1.5
    rest = float(np.abs(pose_[late]).max()) if late.any() else 0.0
    return {"r_head_onsets": r, "head_deg_in_silence": rest}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="eval")
    ap.add_argument("--a2m", default="dsp,learned")
    ap.add_argument("--lookahead-ms", type=float, default=40.0)
    ap.add_argument("--json", type=Path, help="also write every figure to this file")
    args = ap.parse_args()
    recs = recordings(args.split)
    clips = [to_clip(r) for r in recs]
    secs = sum(len(c.pcm) / c.sr for c in clips)
    speakers = sorted({r.speaker for r in recs})
    print(f"{dt.date.today()} {platform.node()}: split {args.split}, {len(clips)} recordings, "
          f"{secs:.0f} s, {len(speakers)} speakers; command: python bench/lipsync_aligned.py "
          f"{' '.join(sys.argv[1:])}")
    out: dict[str, dict] = {}
    print("| model | " + " | ".join(h for _, h, _ in COLUMNS) + " | r per speaker (min) |")
    print("|---|" + "---|" * (len(COLUMNS) + 1))
    for name in args.a2m.split(","):
        total = Scores(lookahead=args.lookahead_ms / 1000)
        per: dict[str, Scores] = {s: Scores(lookahead=args.lookahead_ms / 1000) for s in speakers}
        for rec, clip in zip(recs, clips, strict=True):
            pred = stream_clip(make_audio2motion(name, args.lookahead_ms), clip.pcm, clip.sr,
                               len(clip.targets()))
            total.add(pred, clip)
            per[rec.speaker].add(pred, clip)
        s = total.summary()
        by_speaker = {sp: sc.summary()["r_jaw"] for sp, sc in per.items()}
        out[name] = {"all": s, "r_by_speaker": by_speaker}
        cells = " | ".join(f.format(s[k]) for k, _, f in COLUMNS)
        print(f"| {name} | {cells} | {min(by_speaker.values()):.2f} |", flush=True)
    for name in out:
        print(f"{name} r by speaker: " + ", ".join(f"{k} {v:.2f}"
                                                   for k, v in out[name]["r_by_speaker"].items()))
    heads = [head_scores(c, args.lookahead_ms) for c in clips]
    w = np.array([len(c.pcm) for c in clips], float)
    r_head = float(np.average([h["r_head_onsets"] for h in heads], weights=w))
    rest = max(h["head_deg_in_silence"] for h in heads)
    out["head"] = {"r_head_onsets": r_head, "head_deg_in_silence": rest}
    print(f"head motion (speech gestures): r(speed, syllable onsets) {r_head:.2f} "
          f"(duration-weighted mean over clips); largest angle 1.5 s after speech {rest:.3f} deg")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
