"""Time building a text folder's token-id cache and loading it again (fastlstm.dataset.corpus), on
a generated corpus (tests/generated_text.py: Zipf-distributed words, lines of 1 to 40 words).

    python scripts/time_corpus.py --tokens 5000000 --folder /tmp/corpus5m

It writes the folder unless it holds the text already, removes its cache, then times in this
process the build (the first load) and a second load, and in a fresh process a load (the import
of fastlstm excluded), each with what it spends hashing the text.
"""

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from generated_text import write_corpus  # noqa: E402

from fastlstm.dataset import corpus  # noqa: E402
from fastlstm.files import sha256_of  # noqa: E402

FRESH = """
import sys, time
from fastlstm.dataset import corpus
t = time.perf_counter(); corpus.load(sys.argv[1]); print(time.perf_counter() - t)
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=5_000_000, help="tokens of train.txt (valid and test: 5%%)")
    parser.add_argument("--folder", type=Path, required=True, help="where the generated text lies or goes")
    args = parser.parse_args()
    if not (args.folder / "train.txt").is_file():
        extra = args.tokens // 20
        write_corpus(args.folder, {"train": args.tokens, "valid": extra, "test": extra})
    shutil.rmtree(args.folder / corpus.CACHE, ignore_errors=True)
    text_mb = sum(p.stat().st_size for p in corpus.text_files(args.folder).values()) / 1e6

    t = time.perf_counter()
    built = corpus.load(args.folder)
    build_s = time.perf_counter() - t
    tokens = sum(len(ids) for ids in built.splits.values())
    t = time.perf_counter()
    corpus.load(args.folder)
    again_s = time.perf_counter() - t
    t = time.perf_counter()
    for path in corpus.text_files(args.folder).values():
        sha256_of(path)
    hash_s = time.perf_counter() - t
    fresh = subprocess.run([sys.executable, "-c", FRESH, str(args.folder)], capture_output=True, text=True,
                           check=True, env={"PYTHONPATH": str(ROOT)})
    print(f"{tokens:,} tokens ({text_mb:.1f} MB of text, {len(built.vocab):,} words): build {build_s:.2f} s "
          f"({tokens / build_s / 1e6:.2f} M tokens/s); load again {again_s:.3f} s, in a fresh process "
          f"{float(fresh.stdout):.3f} s; of which hashing the text {hash_s:.3f} s")


if __name__ == "__main__":
    main()
