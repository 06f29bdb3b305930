"""English prose from the Python standard library: the help topics in :mod:`pydoc_data.topics`.

:func:`stdlib_prose` cleans them into readable paragraphs (code examples,
grammar rules, tables and headings removed), :func:`stdlib_sentences` into
plain speakable sentences.  Deterministic for a given Python version.
"""
from __future__ import annotations

import re
from functools import lru_cache


_UNDERLINE = re.compile(r"^\s*([*=\-~^#\"'])\1{2,}\s*$")
_BULLET = re.compile(r"^(\s*)([*\-]|\d+\.|\(\d+\))\s+")
_FOOTNOTE_REF = re.compile(r"\s*\[\d+\]")
_EMPHASIS = re.compile(r"\*{1,2}([^*\s][^*]*?)\*{1,2}")
_CODE_SYMBOLS = set("=<>[]{}#@$%^&*|\\~`_+/")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _split_blocks(text: str) -> list[list[str]]:
    """Blank-line separated blocks, with headings and their underlines removed."""
    blocks, current = [], []
    lines = text.expandtabs(8).splitlines()
    skip = set()
    for i, line in enumerate(lines):
        if _UNDERLINE.match(line):
            skip.add(i)
            # the heading above an underline is not prose
            if i > 0 and lines[i - 1].strip():
                skip.add(i - 1)
        elif line.strip().startswith("-[") and line.strip().endswith("]-"):
            skip.add(i)  # "-[ Footnotes ]-" rubrics
    for i, line in enumerate(lines):
        if i in skip or not line.strip():
            if current:
                blocks.append(current)
                current = []
            continue
        current.append(line.rstrip())
    if current:
        blocks.append(current)
    return blocks


def _looks_like_prose(text: str) -> bool:
    words = text.split()
    if len(words) < 5:
        return False
    if not text.endswith((".", ":", "?", "!", ".)")):
        return False
    if ">>>" in text or "::=" in text or text.startswith(("|", "+-", "=", "...")):
        return False
    stripped = text.replace(" ", "")
    symbols = sum(ch in _CODE_SYMBOLS for ch in stripped)
    letters = sum(ch.isalpha() for ch in stripped)
    return symbols <= 0.04 * len(stripped) and letters >= 0.7 * len(stripped)


def _join_lines(lines: list[str]) -> str:
    """Join wrapped lines; a word hyphenated at a line end ("left-", "hand") stays whole."""
    out = ""
    for line in lines:
        line = line.strip()
        if out and not (len(out) > 1 and out[-1] == "-" and out[-2].isalpha()):
            out += " "
        out += line
    return out


def _clean_inline(text: str) -> str:
    text = _FOOTNOTE_REF.sub("", text)
    text = _EMPHASIS.sub(r"\1", text)
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    text = text.replace("\u201c", '"').replace("\u201d", '"')
    text = text.replace("\u2013", "-").replace("\u2014", " - ").replace("\u2026", "...")
    return re.sub(r"\s+", " ", text).strip()


def _topic_paragraphs(text: str) -> list[str]:
    paragraphs = []
    prev_indent, prev_text = 0, ""
    for block in _split_blocks(text):
        indent = _indent(block[0])
        is_code = any(line.lstrip().startswith((">>>", "...", "|", "+-")) for line in block)
        # A deeper-indented block right after "...:" is usually a code or
        # grammar example, unless it reads like sentences ("Note:" bodies).
        after_colon = indent > prev_indent and prev_text.endswith(":")
        lines = list(block)
        m = _BULLET.match(lines[0])
        if m:
            lines[0] = " " * m.end() + lines[0][m.end():]
        indents = [_indent(line) for line in lines]
        if len(set(indents)) > 1:
            if (len(lines) > 1 and len(set(indents[1:])) == 1 and indents[1] > indents[0]
                    and not lines[0].rstrip().endswith(":")):
                lines = lines[1:]  # definition list: drop the term line, keep its body
                indent = indents[1]
            else:
                is_code = True  # ragged indentation: code
        joined = _clean_inline(_join_lines(lines))
        if after_colon and not (joined[:1].isupper() and joined.endswith(".")):
            is_code = True
        if not is_code and _looks_like_prose(joined):
            paragraphs.append(joined)
            prev_indent, prev_text = indent, joined
        else:
            # keep the context of the last prose paragraph for nested examples
            prev_text = prev_text if is_code else joined
    return paragraphs


@lru_cache(maxsize=1)
def _paragraphs() -> tuple[str, ...]:
    from pydoc_data.topics import topics

    seen, out = set(), []
    for key in sorted(topics):
        for para in _topic_paragraphs(topics[key]):
            if para not in seen:
                seen.add(para)
                out.append(para)
    return tuple(out)


def stdlib_prose() -> str:
    """English prose from the standard library's help topics.

    Paragraphs are separated by one blank line; code examples, grammar rules,
    tables, headings and interactive sessions are removed.  The result is
    deterministic for a given Python version (several hundred kB).
    """
    return "\n\n".join(_paragraphs()) + "\n"


_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_QUOTED_WORDS = re.compile(r"\"([A-Za-z][A-Za-z ]*[A-Za-z]|[A-Za-z])\"")
_PLAIN_SENTENCE = re.compile(r"^[A-Z][A-Za-z ,;:'\-]*[a-z][.?!]$")
_ABBREV = re.compile(r"\b[a-zA-Z]\.[a-zA-Z]\.|\betc\.|\bvs\.")


def _plain_sentence(sentence: str) -> str | None:
    """The sentence as plain speakable English, or None if it is not."""
    if _ABBREV.search(sentence):
        return None
    text = _QUOTED_WORDS.sub(r"\1", sentence)
    text = re.sub(r"\s+", " ", text).strip()
    if not _PLAIN_SENTENCE.match(text):
        return None
    words = re.findall(r"[A-Za-z']+", text)
    # single-letter variable names ("if x is true") are code, not English
    if any(len(w) == 1 and w not in ("a", "A", "I") for w in words):
        return None
    if any(len(w) > 20 for w in words):
        return None
    letters = sum(ch.isalpha() for ch in text)
    if letters < 0.75 * len(text):
        return None
    return text


@lru_cache(maxsize=8)
def _sentences(min_chars: int, max_chars: int) -> tuple[str, ...]:
    seen, out = set(), []
    for para in _paragraphs():
        for raw in _SENTENCE_SPLIT.split(para):
            text = _plain_sentence(raw.strip())
            if text is None or not (min_chars <= len(text) <= max_chars):
                continue
            if text.lower() not in seen:
                seen.add(text.lower())
                out.append(text)
    return tuple(out)


def stdlib_sentences(min_chars: int = 20, max_chars: int = 200) -> list[str]:
    """Plain English sentences from :func:`stdlib_prose`, suitable for TTS.

    Each sentence starts with a capital letter, ends with ``.``, ``?`` or
    ``!`` and holds only letters, spaces and ``,;:'-`` (no digits, code or
    symbols; quoted keywords lose their quotes).  Order is the order of the
    text; duplicates (case-insensitive) are dropped.
    """
    if min_chars > max_chars:
        raise ValueError(f"stdlib_sentences: min_chars={min_chars} > max_chars={max_chars}")
    return list(_sentences(int(min_chars), int(max_chars)))
