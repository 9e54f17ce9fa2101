"""Generated text folders in PTB's convention, for the corpus tests and scripts/time_corpus.py."""

import numpy as np

UNK = "<unk>"


def write_corpus(folder, tokens_per_split, words=50_000, seed=0):
    """A folder of Zipf-distributed words in lines of 1 to 40 words; valid and test hold words that
    train lacks (w<words>...), and train holds '<unk>' now and then."""
    rng = np.random.default_rng(seed)
    names = np.array([f"w{i}" for i in range(words + 100)] + [UNK])
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in tokens_per_split.items():
        ids = np.minimum(rng.zipf(1.3, n), words) - 1
        if split != "train":
            ids[rng.integers(0, n, n // 50)] = words + rng.integers(0, 100, n // 50)  # unseen in train
        ids[rng.integers(0, n, n // 1000)] = len(names) - 1
        cuts = np.cumsum(rng.integers(1, 41, n // 20 + 41))
        cuts = cuts[cuts < n]
        lines = np.split(names[ids], cuts)
        (folder / f"{split}.txt").write_text("".join(" " + " ".join(line) + " \n" for line in lines))
    return folder
