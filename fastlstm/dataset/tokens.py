"""The tokens of a text file in Penn Treebank's convention, read a block of whole lines at a time.

A line is what lies before a "\\n" ("\\r\\n" works too: "\\r" is whitespace). Its tokens are its
whitespace-separated words, then "<eos>"; a last line without "\\n" ends so too when it holds a
word. This is the book's PTB reading (every newline becomes "<eos>"), made to hold for any text.
Files are UTF-8, a leading byte-order mark skipped. A NUL byte, bytes that are not UTF-8 and a line
longer than LONGEST_LINE bytes are refused (TextError, naming the file and the line): such a file
is not text in this convention. Reading holds one block and one line of the file at most.
"""

import codecs
import os
import sys
import time

EOS, UNK = "<eos>", "<unk>"
BLOCK = 1 << 20  # bytes read at a time
LONGEST_LINE = 1 << 26
NEWLINE = b"\n"
REDRAW_S = 0.25  # the least time between two redraws of a progress line on a terminal


class TextError(ValueError):
    """A file that is not UTF-8 text in PTB's convention."""


def blocks(path, digest=None, progress=None):
    """Yield the tokens of the file at `path`, a list per block of whole lines. `digest` (a hashlib
    object), when given, is updated with every byte read; `progress(bytes_done, tokens)`, when given,
    is called after each block with the bytes read so far and the block's token count."""
    with open(path, "rb") as f:
        carry, offset, line = b"", 0, 1  # carry: a line begun and not yet ended, at byte offset and line `line`
        while True:
            block = f.read(BLOCK)
            if digest is not None:
                digest.update(block)
            data = carry + block
            if block:
                end = data.rfind(NEWLINE) + 1
                if end == 0:
                    if len(data) > LONGEST_LINE:
                        raise TextError(f"{path}: line {line} runs over {LONGEST_LINE:,} bytes without a line "
                                        "break: not text with a sentence (or a paragraph) a line")
                    carry = data
                    continue
                data, carry = data[:end], data[end:]
            elif not data:
                return
            text = decode(data[len(codecs.BOM_UTF8):] if offset == 0 and data.startswith(codecs.BOM_UTF8) else data,
                           path, line)
            tokens = text.replace("\n", f" {EOS} ").split()
            if not block and tokens:  # the last line, without its "\n"
                tokens.append(EOS)
            offset += len(data)
            line += data.count(NEWLINE)
            if progress is not None:
                progress(offset, len(tokens))
            yield tokens
            if not block:
                return


def decode(data, path, line=1):
    """data (whole lines from line `line` on) as str; TextError naming the line of a NUL or non-UTF-8 byte."""
    nul = data.find(b"\x00")
    if nul >= 0:
        raise TextError(f"{path}: a NUL byte on line {line + data.count(NEWLINE, 0, nul)}: a binary file, not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise TextError(f"{path}: not UTF-8 text: byte 0x{data[e.start]:02x} on line "
                        f"{line + data.count(NEWLINE, 0, e.start)}; convert the file to UTF-8") from None


class Progress:
    """Progress of reading a file, on stderr: percent of its bytes, tokens so far, tokens/s. On a
    terminal the line is redrawn in place; elsewhere (a log) it is written once, when done."""

    def __init__(self, what, path):
        self.what, self.total = f"{what} {path}", max(os.path.getsize(path), 1)
        self.stream = sys.stderr
        self.tty = self.stream.isatty()
        self.t0 = self.shown = time.perf_counter()
        self.tokens = 0

    def __call__(self, done, tokens):
        self.tokens += tokens
        now = time.perf_counter()
        if self.tty and now - self.shown >= REDRAW_S:
            print("\r" + self._line(done, now), end="", file=self.stream, flush=True)
            self.shown = now

    def done(self):
        """The final line."""
        print(("\r" if self.tty else "") + self._line(self.total, time.perf_counter()), file=self.stream, flush=True)

    def _line(self, done, now):
        rate = self.tokens / max(now - self.t0, 1e-9)
        return (f"{self.what}: {100 * done // self.total:3d}%, {self.tokens:,} tokens, {rate / 1e6:.2f} M tokens/s "
                f"in {now - self.t0:.1f} s")
