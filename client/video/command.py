"""`roiclass video SOURCE ...`: the subcommand's flags and its run (client/cli.py registers it).

Rows go to --out (.jsonl / .csv, through a temporary file), as JSON lines
with --json, else as a table; the summary line goes to stderr. Exit codes:
those of `roiclass` (0, 1 the server: also when frames failed, 2 bad input: a source that cannot be
read, a range past its end), and 3: a live source stopped for good.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable

from ..cli import _confidence, _non_negative_int, parse_roi
from . import classify_video, frames_where, parse_only_where, segment_order, segments
from .errors import SourceStoppedError
from .output import (FRAME_COLUMNS, SEGMENT_COLUMNS, RowWriter, check_out, format_frame, format_segment,
                     frame_row, segment_row, table_header)
from .pipeline import DEFAULT_WINDOW
from .progress import Progress
from .sources import PIXELS

EXIT_FRAMES_FAILED = 1  # the rows are all written, failed frames' with their error
EXIT_SOURCE_STOPPED = 3


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def add_parser(commands: Any, connection: Callable[[argparse.ArgumentParser], None]) -> None:
    video = commands.add_parser("video", help="classify the frames of a video file, image sequence or camera")
    video.add_argument("source", metavar="SOURCE",
                       help="video file (MP4, MKV, AVI, MOV, WebM...), image folder or glob, "
                            "rtsp:// / http:// URL or /dev/videoN")
    video.add_argument("--frames", metavar="START:END", help="exact frame range, END excluded (default: all)")
    sampling = video.add_mutually_exclusive_group()
    sampling.add_argument("--every", type=_positive_int, metavar="N", help="keep every N-th frame of the range")
    sampling.add_argument("--fps", type=_positive_float, metavar="F", help="resample to F frames per second")
    video.add_argument("--roi", type=parse_roi, action="append", default=[], metavar="X,Y,W,H[,ANGLE]",
                       help="ROI on every frame; repeat for more; none = the whole frame")
    video.add_argument("--model", default="", help="model name (default: the server's default model)")
    video.add_argument("--version", default="", help="model version (default: the latest ready one)")
    video.add_argument("--top-k", type=_non_negative_int, metavar="K", help="classes per ROI, 0 = all")
    video.add_argument("--min-confidence", type=_confidence, metavar="C",
                       help="list classes at or above C; segments need a best score at or above C")
    video.add_argument("--only-where", metavar="LABELS:CLASS[,CLASS...]",
                       help="classify only frames a labels file (this command's rows, or frame,class rows) "
                            "gives one of the classes; the others are reported as skipped")
    video.add_argument("--out", metavar="FILE.jsonl|FILE.csv", help="write the rows to a file")
    video.add_argument("--segments", action="store_true",
                       help="rows are segments: runs of frames with the same best class")
    video.add_argument("--live", action="store_true",
                       help="drop the oldest unsent frame when the server falls behind (default for URLs "
                            "and devices); a file is read at its frame rate")
    video.add_argument("--window", type=_positive_int, metavar="N",
                       help=f"frames in flight (default {DEFAULT_WINDOW}, the server's --stream-window default)")
    video.add_argument("--max-side", type=_positive_int, metavar="PX", help="shrink frames to at most PX a side")
    video.add_argument("--pixels", choices=PIXELS, default=PIXELS[0],
                       help="how frames travel: yuv (default: I420 as decoded, where the decoder gives yuv420p; "
                            "RGB otherwise) or rgb (always converted to RGB here)")
    video.add_argument("--rate", type=_positive_float, metavar="FPS", help="an image sequence's frame rate (30)")
    video.add_argument("--reconnect", type=_non_negative_int, default=3, metavar="N",
                       help="re-open a live source that stops up to N times (default 3)")
    video.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    connection(video)


def run(args: argparse.Namespace, connect: Callable[[argparse.Namespace], Any]) -> int:
    if args.out:
        check_out(args.out)
    only = frames_where(parse_only_where(args.only_where)) if args.only_where else None
    with connect(args) as classifier:
        classifier.wait_until_ready(args.timeout)  # an unreachable server: one line, not a stream's re-opens
        video = classify_video(
            classifier, args.source, frames=args.frames, every=args.every, fps=args.fps,
            rois=args.roi or None, live=True if args.live else None, window=args.window,
            max_side=args.max_side, pixels=args.pixels, only_frames=only, reconnect=args.reconnect, rate=args.rate,
            model=args.model, model_version=args.version, top_k=args.top_k, min_confidence=args.min_confidence,
        )
        columns = SEGMENT_COLUMNS if args.segments else FRAME_COLUMNS
        writer = RowWriter(args.out, columns) if args.out else None
        try:
            _emit(args, video, writer)
        except SourceStoppedError as error:
            _discard(writer)
            print(f"error: {error.message}", file=sys.stderr)
            return EXIT_SOURCE_STOPPED
        except BaseException:
            _discard(writer)
            raise
        if writer is not None:
            writer.commit()
    stats = video.stats
    print(stats.summary(), file=sys.stderr)
    if stats.first_error is not None:
        done = stats.classified + stats.failed
        print(f"error: {stats.failed} of {done} frames failed: {stats.first_error.code.name}: "
              f"{stats.first_error.message}", file=sys.stderr)
        return EXIT_FRAMES_FAILED
    return 0


def _emit(args: argparse.Namespace, video: Any, writer: RowWriter | None) -> None:
    table = writer is None and not args.json
    progress = Progress(video, enabled=not args.json and sys.stderr.isatty())
    if table and not args.segments:
        progress.write(table_header())
    frames = progress.track(video)
    if args.segments:
        rows = (segment_row(s) for s in sorted(segments(frames, args.min_confidence or 0.0), key=segment_order))
        show = format_segment
    else:
        rows = (frame_row(f) for f in frames)
        show = format_frame
    with progress:
        for row in rows:
            if writer is not None:
                writer.write(row)
            elif args.json:
                print(json.dumps(row), flush=True)
            else:
                progress.write(show(row))


def _discard(writer: RowWriter | None) -> None:
    if writer is not None:
        writer.discard()
