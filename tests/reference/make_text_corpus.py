#!/usr/bin/env python3
"""Build datasets/text/public_domain.txt and datasets/text/sink_items.jsonl.

Standard library only; deterministic; rerunnable.

Usage:
    python3 tests/reference/make_text_corpus.py CACHE_DIR [--out DIR]

CACHE_DIR must hold the two unmodified downloads below (see README.md):

    brotli-1.2.1.tar.gz                  PyPI sdist of "brotli" 1.2.1
        pip download --no-deps --no-binary :all: brotli==1.2.1 -d CACHE_DIR
    r-cran-janeaustenr_1.0.0-1_all.deb   Debian package "r-cran-janeaustenr" 1.0.0-1
        (cd CACHE_DIR && apt-get download r-cran-janeaustenr=1.0.0-1)

Their SHA-256 digests are checked; nothing is fetched from the network.

Works taken (all public domain in the United States, see README.md):
  * Lewis Carroll, "Alice's Adventures in Wonderland" (1865), whole text:
    brotli-1.2.1/tests/testdata/alice29.txt (the Canterbury-corpus copy of the
    Project Gutenberg etext #11, "Millennium Fulcrum Edition 2.9"; the file
    carries no Gutenberg licence header or footer).
  * Jane Austen, "Pride and Prejudice" (1813) and "Persuasion" (1818), the
    opening chapters of each: R data objects `prideprejudice` and `persuasion`
    in ./usr/lib/R/site-library/janeaustenr/data/Rdata.rdb (+ Rdata.rdx) of the
    Debian package (texts from Project Gutenberg ebooks #1342 and #105 with the
    Gutenberg header/footer already removed by the janeaustenr package).

Transformations (formatting only; no words are added, changed or reordered):
  * CRLF -> LF; paragraphs are the blank-line separated blocks; the lines of a
    paragraph are stripped and joined with one space (with no space after a
    line that ends in "-" or "--", which continues a hyphenated word or a
    dash); runs of spaces collapse to one.
  * The _underscore_ italic markers of the Gutenberg texts are removed.
  * Alice: the backtick used as an opening single quote in the etext becomes
    an ASCII apostrophe; the edition line "THE MILLENNIUM FULCRUM EDITION 2.9",
    the "* * *" scene-break lines and the closing "THE END" are dropped.
  * Front matter: a title-page paragraph that is just "by" is joined to the
    author's name that follows it.
  * Austen works are cut after the last whole chapter that keeps the work
    within AUSTEN_BUDGET bytes.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import re
import struct
import sys
import tarfile
import zlib

BROTLI_SDIST = "brotli-1.2.1.tar.gz"
JANEAUSTENR_DEB = "r-cran-janeaustenr_1.0.0-1_all.deb"

EXPECTED_SHA256 = {
    BROTLI_SDIST: "02b2f7b5a83485efe448a44ddf7983def05c3bb1dcf917d4f7154070260e13de",
    JANEAUSTENR_DEB: "df6bddf211906d1ff404f8ff662c21b34e6660e7f54a311084e749050c019c95",
}

ALICE_MEMBER = "brotli-1.2.1/tests/testdata/alice29.txt"
RDATA_DIR = "./usr/lib/R/site-library/janeaustenr/data/"

AUSTEN_BUDGET = 95_000          # bytes per Austen work (whole chapters only)
N_ITEMS = 100
MIN_ITEM_CHARS = 400
MAX_ITEM_CHARS = 1500

HEADING_RE = re.compile(r"^(CHAPTER [IVXLC]+|Chapter \d+)$")


# --------------------------------------------------------------------------
# archive helpers

def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_tar_member(tar_bytes, name):
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:*") as tf:
        fh = tf.extractfile(tf.getmember(name))
        return fh.read()


def deb_data_tar(deb_path):
    """Return the bytes of data.tar.* inside a Debian .deb (an ar archive)."""
    with open(deb_path, "rb") as fh:
        blob = fh.read()
    if blob[:8] != b"!<arch>\n":
        raise ValueError("%s is not an ar archive" % deb_path)
    pos = 8
    while pos + 60 <= len(blob):
        hdr = blob[pos:pos + 60]
        name = hdr[:16].decode("ascii").strip().rstrip("/")
        size = int(hdr[48:58].decode("ascii").strip())
        data = blob[pos + 60:pos + 60 + size]
        if name.startswith("data.tar"):
            return data
        pos += 60 + size + (size & 1)
    raise ValueError("no data.tar member in %s" % deb_path)


# --------------------------------------------------------------------------
# minimal reader for R's XDR serialization (enough for character vectors)

class _RReader:
    def __init__(self, data):
        self.b = data
        self.p = 0
        self.refs = []

    def int(self):
        v = struct.unpack(">i", self.b[self.p:self.p + 4])[0]
        self.p += 4
        return v

    def raw(self, n):
        v = self.b[self.p:self.p + n]
        self.p += n
        return v

    def header(self):
        if self.raw(2) != b"X\n":
            raise ValueError("not an XDR R serialization")
        version = self.int()
        self.int()
        self.int()
        if version == 3:
            self.raw(self.int())

    def item(self):
        flags = self.int()
        t = flags & 0xFF
        has_attr = flags & (1 << 9)
        has_tag = flags & (1 << 10)
        levels = flags >> 12
        if t == 254:                                  # NILVALUE
            return None
        if t in (241, 242, 250, 251, 252, 253):      # special environments
            return ("special", t)
        if t == 255:                                  # REFSXP
            idx = flags >> 8
            if idx == 0:
                idx = self.int()
            return self.refs[idx - 1]
        if t == 1:                                    # SYMSXP
            sym = ("sym", self.item())
            self.refs.append(sym)
            return sym
        if t in (247, 248, 249):                      # persistent / package / namespace
            if self.int() != 0:
                raise ValueError("unexpected namespace info")
            r = ("ns", [self.item() for _ in range(self.int())])
            self.refs.append(r)
            return r
        if t in (2, 3, 5, 6, 239, 240):               # pairlist-like
            attr = self.item() if has_attr else None
            tag = self.item() if has_tag else None
            car = self.item()
            cdr = self.item()
            return ("list", tag, car, cdr, attr)
        if t == 4:                                    # ENVSXP
            env = {}
            self.refs.append(env)
            self.int()
            for key in ("enclos", "frame", "hashtab", "attr"):
                env[key] = self.item()
            return env
        if t == 9:                                    # CHARSXP
            n = self.int()
            if n == -1:
                return None
            enc = "latin-1" if levels & 4 else "utf-8"
            return self.raw(n).decode(enc)
        if t in (10, 13, 14, 15, 16, 19, 20, 24):     # vectors
            n = self.int()
            if n == -1:
                n = (self.int() << 32) + self.int()
            if t in (10, 13):
                v = list(struct.unpack(">%di" % n, self.raw(4 * n)))
            elif t == 14:
                v = list(struct.unpack(">%dd" % n, self.raw(8 * n)))
            elif t == 15:
                v = list(struct.unpack(">%dd" % (2 * n), self.raw(16 * n)))
            elif t == 24:
                v = self.raw(n)
            else:
                v = [self.item() for _ in range(n)]
            attr = self.item() if has_attr else None
            return ("vec", t, v, attr)
        raise ValueError("unsupported R SEXP type %d" % t)


def _r_unserialize(data):
    r = _RReader(data)
    r.header()
    return r.item()


def _r_attr(obj, name):
    node = obj[3]
    while node is not None and node[0] == "list":
        if node[1] == ("sym", name):
            return node[2]
        node = node[3]
    return None


def r_lazyload_objects(rdx_bytes, rdb_bytes):
    """Read an R lazy-load database (Rdata.rdx + Rdata.rdb) -> {name: object}."""
    index = _r_unserialize(gzip.decompress(rdx_bytes))
    top_names = _r_attr(index, "names")[2]
    variables = index[2][top_names.index("variables")]
    names = _r_attr(variables, "names")[2]
    out = {}
    for name, loc in zip(names, variables[2]):
        off, length = loc[2]
        blob = rdb_bytes[off:off + length]
        n = struct.unpack(">I", blob[:4])[0]
        data = zlib.decompress(blob[4:])
        if len(data) != n:
            raise ValueError("bad lazy-load entry for %s" % name)
        out[name] = _r_unserialize(data)
    return out


# --------------------------------------------------------------------------
# text shaping

def paragraphs(text):
    """Blank-line separated blocks -> list of one-line paragraphs."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    out = []
    for block in re.split(r"\n[ \t]*\n", text):
        lines = [ln.strip() for ln in block.split("\n") if ln.strip()]
        if lines:
            para = lines[0]
            for ln in lines[1:]:
                # a line broken after a hyphen or dash ("looking-" / "glass",
                # "present--" / "at least") continues without a space
                para += ln if para.endswith("-") else " " + ln
            out.append(re.sub(r" {2,}", " ", para))
    return out


def join_front_matter(front):
    out = []
    pending = None
    for p in front:
        if p.lower() == "by":
            pending = p
            continue
        out.append(pending + " " + p if pending else p)
        pending = None
    return out


def shape_alice(raw):
    text = raw.decode("ascii").replace("`", "'")
    text = re.sub(r"_([^_\n]+)_", r"\1", text)
    paras = paragraphs(text)
    first = next(i for i, p in enumerate(paras) if HEADING_RE.match(p))
    front = [p for p in paras[:first] if not p.startswith("THE MILLENNIUM FULCRUM EDITION")]
    body = []
    for p in paras[first:]:
        if re.fullmatch(r"[* ]+", p) or p == "THE END":
            continue
        body.append(p)
    out = [(p, "front") for p in join_front_matter(front)]
    prev_heading = False
    for p in body:
        if HEADING_RE.match(p):
            out.append((p, "heading"))
            prev_heading = True
        elif prev_heading:                     # Alice's chapter titles
            out.append((p, "heading"))
            prev_heading = False
        else:
            out.append((p, "body"))
    return out


def shape_austen(lines, budget):
    text = "\n".join("" if ln is None else ln for ln in lines)
    text = re.sub(r"_([^_\n]+)_", r"\1", text)
    paras = paragraphs(text)
    first = next(i for i, p in enumerate(paras) if HEADING_RE.match(p))
    out = [(p, "front") for p in join_front_matter(paras[:first])]
    chapters = []
    for p in paras[first:]:
        if HEADING_RE.match(p):
            chapters.append([])
        chapters[-1].append(p)
    size = sum(len(p.encode("utf-8")) + 2 for p, _ in out)
    for ch in chapters:
        ch_size = sum(len(p.encode("utf-8")) + 2 for p in ch)
        if size + ch_size > budget:
            break
        size += ch_size
        out.append((ch[0], "heading"))
        out.extend((p, "body") for p in ch[1:])
    return out


# --------------------------------------------------------------------------
# sink items

def pick_items(paras, k):
    """k items of consecutive whole body paragraphs, spread evenly over paras."""
    n = len(paras)
    items = []
    next_free = 0
    for j in range(k):
        target = max((2 * j + 1) * n // (2 * k), next_free)
        found = None
        for s in range(target, n):
            if paras[s][1] != "body":
                continue
            total = -2
            for e in range(s, n):
                if paras[e][1] != "body":
                    break
                total += len(paras[e][0]) + 2
                if total > MAX_ITEM_CHARS:
                    break
                if total >= MIN_ITEM_CHARS:
                    found = (s, e)
                    break
            if found:
                break
        if not found:
            raise RuntimeError("could not place item %d of %d" % (j, k))
        s, e = found
        items.append("\n\n".join(p for p, _ in paras[s:e + 1]))
        next_free = e + 1
    return items


# --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cache_dir")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "datasets", "text"))
    ap.add_argument("--skip-hash-check", action="store_true",
                    help="do not insist on the recorded SHA-256 of the downloads")
    args = ap.parse_args()

    paths = {name: os.path.join(args.cache_dir, name) for name in EXPECTED_SHA256}
    for name, path in paths.items():
        if not os.path.exists(path):
            sys.exit("missing %s (see the docstring / README.md for how to get it)" % path)
        digest = sha256_file(path)
        if digest != EXPECTED_SHA256[name]:
            msg = "%s: sha256 %s, expected %s" % (name, digest, EXPECTED_SHA256[name])
            if not args.skip_hash_check:
                sys.exit(msg)
            print("warning: " + msg, file=sys.stderr)

    with open(paths[BROTLI_SDIST], "rb") as fh:
        alice_raw = read_tar_member(fh.read(), ALICE_MEMBER)
    data_tar = deb_data_tar(paths[JANEAUSTENR_DEB])
    rdx = read_tar_member(data_tar, RDATA_DIR + "Rdata.rdx")
    rdb = read_tar_member(data_tar, RDATA_DIR + "Rdata.rdb")
    austen = r_lazyload_objects(rdx, rdb)

    works = [
        ("Alice's Adventures in Wonderland", shape_alice(alice_raw)),
        ("Pride and Prejudice", shape_austen(austen["prideprejudice"][2], AUSTEN_BUDGET)),
        ("Persuasion", shape_austen(austen["persuasion"][2], AUSTEN_BUDGET)),
    ]

    os.makedirs(args.out, exist_ok=True)
    corpus = "\n\n".join(p for _, paras in works for p, _ in paras) + "\n"
    corpus_path = os.path.join(args.out, "public_domain.txt")
    with open(corpus_path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(corpus)

    counts = [N_ITEMS // len(works) + (1 if i < N_ITEMS % len(works) else 0)
              for i in range(len(works))]
    records = []
    for (title, paras), k in zip(works, counts):
        for text in pick_items(paras, k):
            assert text in corpus
            records.append({"text": text, "source": title})
    items_path = os.path.join(args.out, "sink_items.jsonl")
    with open(items_path, "w", encoding="utf-8", newline="\n") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")

    print("sources:")
    for name, path in paths.items():
        print("  %s  sha256 %s" % (name, sha256_file(path)))
    for title, paras in works:
        body = [p for p, kind in paras if kind == "body"]
        chapters = sum(1 for p, kind in paras if kind == "heading" and HEADING_RE.match(p))
        print("  %-34s %3d chapters %5d paragraphs %7d bytes" % (
            title, chapters, len(body), sum(len(p.encode("utf-8")) + 2 for p, _ in paras)))
    print("public_domain.txt  %d bytes" % os.path.getsize(corpus_path))
    print("sink_items.jsonl   %d bytes, %d lines, shortest item %d chars, longest %d chars" % (
        os.path.getsize(items_path), len(records),
        min(len(r["text"]) for r in records), max(len(r["text"]) for r in records)))


if __name__ == "__main__":
    main()
