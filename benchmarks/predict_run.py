"""What a ``salrank predict`` run costs besides the model: reading, writing the outputs, the report.

    python benchmarks/predict_run.py [--images DIR] [--model default]

Ranks every photo of ``DIR`` (default: ``../shared/images/coco``) once with the given model, then times,
per image, with the results in memory: reading the photo, and writing each output kind (JSON, colour
map, overlay, rank map, skeleton composite, masks) into a temporary folder; and the contact sheet of the
whole run. Prints medians of wall and CPU time (the CPU time is the steadier number on a busy machine).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _timed(fn):
    w0, c0 = time.perf_counter(), time.process_time()
    value = fn()
    return value, time.perf_counter() - w0, time.process_time() - c0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, default=REPO.parent / "shared" / "images" / "coco")
    parser.add_argument("--model", default="default")
    args = parser.parse_args()

    from salrank.apps.predict import predict_files
    from salrank.apps.report import build_report
    from salrank.outputs import OutputOptions, write_outputs
    from salrank.ranker import Ranker
    from salrank.utils.io import list_images, read_image

    files = list_images([str(args.images)])
    ranker, load_wall, _ = _timed(lambda: Ranker(args.model, device="cpu"))
    rows: dict[str, list[tuple[float, float]]] = {}
    model_times = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, path in enumerate(files):
            image, w, c = _timed(lambda path=path: read_image(path))
            rows.setdefault("read the photo", []).append((w, c))
            result, w, c = _timed(lambda image=image, path=path: ranker(image, names=path.stem))
            if i:  # the first call warms up
                model_times.append((w, c))
            for kind in ("json", "colormap", "overlay", "rank_map", "skeleton", "masks"):
                options = OutputOptions(
                    **{k: k == kind for k in ("json", "colormap", "overlay", "rank_map", "skeleton", "masks")}
                )
                _, w, c = _timed(
                    lambda result=result, image=image, options=options, path=path: write_outputs(
                        result, image, Path(tmp) / "kinds", options, name=path.stem
                    )
                )
                rows.setdefault(f"write {kind}", []).append((w, c))
        run_dir = Path(tmp) / "run"
        summary, run_wall, run_cpu = _timed(lambda: predict_files(ranker, files, run_dir, progress=False))
        _, report_wall, report_cpu = _timed(lambda: build_report(run_dir))

    def med(values: list[tuple[float, float]]) -> str:
        return (
            f"{statistics.median(v[0] for v in values) * 1000:8.1f} ms  {statistics.median(v[1] for v in values) * 1000:8.1f} ms"
        )

    print(f"{len(files)} photos from {args.images}, model {ranker.name} (loaded in {load_wall:.1f} s)")
    print(f"{'step (median per image)':<28}{'wall':>11}  {'CPU':>11}")
    print(f"{'model (warm)':<28}{med(model_times)}")
    for name, values in rows.items():
        print(f"{name:<28}{med(values)}")
    print(
        f"whole run (predict_files): {run_wall / len(files):.2f} s wall, {run_cpu / len(files):.2f} s CPU per image ({summary.objects} objects)"
    )
    print(f"report of the run: {report_wall:.2f} s wall, {report_cpu:.2f} s CPU")


if __name__ == "__main__":
    main()
