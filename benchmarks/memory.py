"""Peak memory of the `align` and `train_codec` stages on the mini corpus and on one N times larger.

Both stages stream: `align` sends keys and pronunciations (not audio) back from its per-shard scans and
trains the aligner on a bounded sample (`align.max_train_utterances`); `train_codec` reads batches from
the shards through a shuffle buffer. So their peak RSS must not grow with the corpus. This runs the real
CLI stages (`ns3 corpus`, `ns3 shard`, then the measured `ns3 align` and `ns3 train-codec`) in a throw-away
project per scale and prints each stage's peak RSS and its ratio to the 1x corpus, measured in this run.

Peak RSS is the kernel's high-water mark of the largest process of the stage (``wait4``'s ``ru_maxrss``);
"tree" adds the stage's workers and helper processes sampled every 0.2 s.

    python benchmarks/memory.py                     # 1x and 4x the mini corpus, 20 codec steps
    python benchmarks/memory.py --scales 1 2 --steps 5 --utts 10
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

import ns3  # noqa: F401  (sets the OpenMP policy for the child processes' environment too)

PROJECT = Path(__file__).resolve().parent.parent


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def measure(cmd: list[str], cwd: Path, env: dict) -> tuple[float, float, float]:
    """Run ``cmd``; returns (seconds, peak RSS of its largest process in MiB, peak summed tree RSS in MiB)."""
    t0 = time.perf_counter()
    child = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak_tree, done = 0, threading.Event()

    def sample():
        nonlocal peak_tree
        proc = psutil.Process(child.pid)
        while not done.is_set():
            try:
                peak_tree = max(peak_tree, _tree_rss(proc))
            except psutil.Error:
                return
            done.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stderr = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    done.set()
    sampler.join()
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({child.returncode}):\n{stderr.decode()[-3000:]}")
    return time.perf_counter() - t0, usage.ru_maxrss / 1024, peak_tree / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scales", type=int, nargs="+", default=[1, 4], help="corpus sizes as multiples of the mini speakers")
    ap.add_argument("--speakers", type=int, default=24, help="speakers of the 1x corpus (params.yaml: 24)")
    ap.add_argument("--utts", type=int, default=40, help="utterances per speaker (params.yaml: 40)")
    ap.add_argument("--steps", type=int, default=20, help="codec training steps")
    ap.add_argument("--keep", type=Path, help="keep the projects under this folder")
    args = ap.parse_args()
    ns3_exe = str(Path(sys.executable).parent / "ns3")
    work = Path(args.keep or tempfile.mkdtemp(prefix="ns3-memory-"))
    rows = []
    try:
        for scale in args.scales:
            root = work / f"x{scale}"
            root.mkdir(parents=True, exist_ok=True)
            for name in ("params.yaml", "dvc.yaml"):
                shutil.copy(PROJECT / name, root / name)
            shutil.copytree(PROJECT / "configs", root / "configs", dirs_exist_ok=True)
            env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}", "PREFECT_HOME": str(root / "prefect")}
            sets = [f"corpus.synth.num_speakers={args.speakers * scale}", f"corpus.synth.utts_per_speaker={args.utts}",
                    f"codec.train.max_steps={args.steps}", "codec.train.max_minutes=null", "codec.train.eval_every=100000"]
            base = [ns3_exe, *[a for s in sets for a in ("--set", s)]]
            for stage in ("corpus", "shard"):
                measure([*base, stage], root, env)
            utts = sum(1 for _ in open(root / "data" / "shards" / "manifest.jsonl"))
            for stage in ("align", "train-codec"):
                seconds, peak, tree = measure([*base, stage], root, env)
                rows.append((scale, utts, stage, seconds, peak, tree))
                print(f"  x{scale} {stage}: {seconds:.0f} s, peak {peak:.0f} MiB (tree {tree:.0f} MiB)", flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    ref = {stage: (peak, tree) for scale, _, stage, _, peak, tree in rows if scale == args.scales[0]}
    print(f"\n{'corpus':<8}{'utts':>6}  {'stage':<12}{'wall s':>8}{'peak MiB':>10}{'ratio':>7}{'tree MiB':>10}{'ratio':>7}")
    for scale, utts, stage, seconds, peak, tree in rows:
        print(f"{'x' + str(scale):<8}{utts:>6}  {stage:<12}{seconds:>8.0f}{peak:>10.0f}{peak / ref[stage][0]:>7.2f}"
              f"{tree:>10.0f}{tree / ref[stage][1]:>7.2f}")


if __name__ == "__main__":
    main()
