"""Tests for katas/07_training/tokenisers.py: the character tokeniser by exact ids, byte-level BPE by
hand-worked examples, properties (round trips, compression) and Hugging Face `tokenizers` as the oracle.

The corpus is a slice of Python's own documentation, shipped with the standard library
(pydoc_data.topics: about 79 pages of English). A few thousand characters keep training well under a second.

The oracle for BPE encoding is Hugging Face's BPE model given the same merges. Its merges are strings,
not ids: GPT-2's byte-level scheme writes each byte as one printable character (bytes_to_unicode below,
GPT-2's own table), a token as the characters of its bytes, and a merge as the pair of its tokens'
strings. Its ByteLevel pre-tokenizer is built with use_regex=False, so that, like minbpe's
BasicTokenizer, it does not split the text into words first, and add_prefix_space=False. With these
settings (and the BPE model's defaults: no dropout, ignore_merges off, no byte fallback) it applies the
merges exactly as encode must: the merge learned first (lowest rank) among the pairs present, every
occurrence from left to right. One corner cannot be expressed in it: two merges of minbpe that build
the same bytes in two ways ((ab, c) and (a, bc)) become one string, that is one id, in Hugging Face.
The merges given to it here are learned by its own BpeTrainer (which never makes such a pair), or
written by hand without one, and the test checks that.
"""

import collections
import itertools
import json
import os
import pydoc_data.topics
import random

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

SEED = int(os.environ.get("KATAS_SEED", "0"))
PAGES = pydoc_data.topics.topics
CORPUS = "".join(PAGES[key] for key in sorted(PAGES))[:3000]
# Text the merges never saw: a later slice of the same documentation, and a few other scripts.
UNSEEN = "".join(PAGES[key] for key in sorted(PAGES))[200_000:201_500]
TEXTS = [
    "",
    "a",
    "hello world",
    "aaaaaaa",
    "The assert statement, 'assert' statements; def f(x): return x ** 2\n\ttabs\r\n",
    "naïve café, Zürich, Ελληνικά, русский",
    "你好，世界！机器学习和机制可解释性",
    "emoji 🙂👍🏽 and a family 👨‍👩‍👧 🇫🇷",
    UNSEEN,
]


def random_text(rng: random.Random, length: int) -> str:
    """A random string of ASCII, Latin, CJK and emoji code points (no lone surrogates: those are not UTF-8)."""
    ranges = [(0x20, 0x7E), (0xA0, 0x24F), (0x4E00, 0x4E80), (0x1F600, 0x1F64F)]
    return "".join(chr(rng.randint(*rng.choice(ranges))) for _ in range(length))


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's table: every byte value -> one printable character (printable Latin-1 bytes map to
    themselves, the others to the characters from U+0100 on, in order)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    characters = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            characters.append(256 + extra)
            extra += 1
    return {byte: chr(code) for byte, code in zip(printable, characters, strict=True)}


BYTE_CHAR = bytes_to_unicode()
assert sorted(BYTE_CHAR.values()) == sorted(pre_tokenizers.ByteLevel.alphabet()), "test setup: GPT-2's byte table"


def token_strings(merges: dict[tuple[int, int], int]) -> dict[int, str]:
    """Our id -> its Hugging Face token string: the GPT-2 characters of its bytes (built here, not by the learner)."""
    strings = {byte: BYTE_CHAR[byte] for byte in range(256)}
    for (left, right), new_id in sorted(merges.items(), key=lambda item: item[1]):
        strings[new_id] = strings[left] + strings[right]
    return strings


def hf_tokenizer(merges: dict[tuple[int, int], int]) -> Tokenizer:
    """Hugging Face's byte-level BPE with exactly these merges, whose token ids are our ids."""
    strings = token_strings(merges)
    assert len(set(strings.values())) == len(strings), "test setup: two merges build the same bytes"
    vocab = {string: token_id for token_id, string in strings.items()}
    ordered = sorted(merges.items(), key=lambda item: item[1])
    hf_merges = [(strings[left], strings[right]) for (left, right), _ in ordered]
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=hf_merges))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


def hf_trained_merges(text: str, n_merges: int) -> dict[tuple[int, int], int]:
    """Merges learned by Hugging Face's BpeTrainer on text, in our form (ids 256, 257, ... in its order)."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    trainer = trainers.BpeTrainer(
        vocab_size=256 + n_merges, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tokenizer.train_from_iterator([text], trainer)
    hf_merges = json.loads(tokenizer.to_str())["model"]["merges"]
    ids = {char: byte for byte, char in BYTE_CHAR.items()}
    merges = {}
    for new_id, (left, right) in enumerate(hf_merges, start=256):
        merges[(ids[left], ids[right])] = new_id
        ids[left + right] = new_id
    return merges


@pytest.fixture(scope="module")
def corpus_merges() -> dict[tuple[int, int], int]:
    """60 merges learned by Hugging Face on the corpus: BPETokeniser's tests do not rely on train_bpe."""
    return hf_trained_merges(CORPUS, 60)


# --- CharTokeniser ---------------------------------------------------------------------------------


@pytest.mark.kata("CharTokeniser")
def test_char_ids_are_positions_in_the_sorted_vocabulary(impl):
    tokeniser = impl.CharTokeniser("hello world")
    # sorted(set("hello world")) == [' ', 'd', 'e', 'h', 'l', 'o', 'r', 'w']
    assert tokeniser.vocab_size == 8, (
        f"vocab_size should be 8 (the distinct characters of 'hello world'), got {tokeniser.vocab_size}"
    )
    got = tokeniser.encode("hello world")
    assert got == [3, 2, 4, 4, 5, 0, 7, 5, 6, 4, 1], (
        f"encode('hello world') gave {got}: an id is the character's position in the SORTED list of distinct "
        "characters [' ', 'd', 'e', 'h', 'l', 'o', 'r', 'w'] (a set's order is arbitrary; ord(ch) is not an id)"
    )
    assert tokeniser.encode("") == [], "the empty string encodes to []"


@pytest.mark.kata("CharTokeniser")
def test_char_vocabulary_of_non_ascii_text(impl):
    text = "Zürich, 東京 and Zürich again!"
    tokeniser = impl.CharTokeniser(text)
    chars = sorted(set(text))
    assert tokeniser.vocab_size == len(chars), f"vocab_size should be {len(chars)}, got {tokeniser.vocab_size}"
    expected = [chars.index(ch) for ch in "東ü Z"]
    got = tokeniser.encode("東ü Z")
    assert got == expected, f"encode('東ü Z') gave {got}, expected {expected} (positions in sorted(set(text)))"


@pytest.mark.kata("CharTokeniser")
def test_char_decode_gives_the_characters_back(impl):
    tokeniser = impl.CharTokeniser("hello world")
    got = tokeniser.decode([3, 2, 4, 4, 5, 0, 7, 5, 6, 4, 1])
    assert got == "hello world", f"decode gave {got!r}, expected 'hello world'"
    assert tokeniser.decode([7, 5, 6, 1]) == "word", "decode([7, 5, 6, 1]) should be 'word'"
    assert tokeniser.decode([]) == "", "decode([]) should be ''"
    for text in [CORPUS, "你好，世界！🙂 naïve"]:
        tokeniser = impl.CharTokeniser(text)
        ids = tokeniser.encode(text)
        assert sorted(set(ids)) == list(range(tokeniser.vocab_size)), "the ids should be exactly 0 .. vocab_size - 1"
        assert tokeniser.decode(ids) == text, "decode(encode(text)) should give text back"


@pytest.mark.kata("CharTokeniser")
def test_char_encode_refuses_an_unknown_character(impl):
    tokeniser = impl.CharTokeniser("hello world")
    for text, unknown in [("hold z", "z"), ("hello wörld", "ö")]:
        with pytest.raises(KeyError) as error:
            tokeniser.encode(text)
        message = str(error.value)
        # The message must name the character, and not merely repeat the text (which contains it anyway).
        assert unknown in message and text not in message, (
            f"encode({text!r}) raised KeyError({message}); it should name the unknown character {unknown!r} "
            "alone (a dictionary lookup of the character raises exactly that)"
        )


# --- pair_counts -----------------------------------------------------------------------------------


@pytest.mark.kata("pair_counts")
def test_pair_counts_overlap(impl):
    got = impl.pair_counts([97, 97, 97])
    assert got == {(97, 97): 2}, (
        f"'aaa' has the pair (a, a) twice, at positions 0-1 and 1-2; got {got} (counting non-overlapping pairs?)"
    )
    got = impl.pair_counts([1, 2, 1, 2, 1])
    assert got == {(1, 2): 2, (2, 1): 2}, f"[1, 2, 1, 2, 1] should count {{(1, 2): 2, (2, 1): 2}}, got {got}"
    assert impl.pair_counts([]) == {}, "an empty list has no pairs"
    assert impl.pair_counts([5]) == {}, "a single id has no pairs"


@pytest.mark.kata("pair_counts")
def test_pair_counts_match_counting_by_hand_in_first_occurrence_order(impl):
    rng = random.Random(SEED)
    for length in [2, 3, 50, 500]:
        ids = [rng.choice([3, 7, 7, 9, 300]) for _ in range(length)]
        got = impl.pair_counts(list(ids))
        expected = collections.Counter((ids[i], ids[i + 1]) for i in range(length - 1))
        assert got == dict(expected), f"pair counts of {ids[:10]}...: got {got}, expected {dict(expected)}"
        first_seen = list(dict.fromkeys((ids[i], ids[i + 1]) for i in range(length - 1)))
        assert list(got) == first_seen, (
            "the pairs should be listed in the order of their first occurrence (fill a dict left to right); "
            f"got {list(got)[:5]}..., expected {first_seen[:5]}..."
        )


# --- merge -----------------------------------------------------------------------------------------


@pytest.mark.kata("merge")
def test_merge_does_not_overlap(impl):
    got = impl.merge([97, 97, 97], (97, 97), 256)
    assert got == [256, 97], (
        f"merging (a, a) in 'aaa' should give [256, 97] (left to right; the second a is used up), got {got}"
    )
    got = impl.merge([97, 97, 97, 97], (97, 97), 256)
    assert got == [256, 256], f"merging (a, a) in 'aaaa' should give [256, 256], got {got}"


@pytest.mark.kata("merge")
def test_merge_keeps_the_ends(impl):
    cases = [
        ([1, 2, 3], (1, 2), [99, 3]),
        ([1, 2, 3], (2, 3), [1, 99]),
        ([3, 1, 2, 1], (1, 2), [3, 99, 1]),
        ([1, 2, 1, 2], (1, 2), [99, 99]),
        ([2, 1, 2, 1], (1, 2), [2, 99, 1]),
        ([1, 3, 2], (1, 2), [1, 3, 2]),
        ([7], (7, 7), [7]),
        ([], (1, 2), []),
    ]
    for ids, pair, expected in cases:
        got = impl.merge(ids, pair, 99)
        assert got == expected, f"merge({ids}, {pair}, 99) gave {got}, expected {expected} (the last id dropped?)"


@pytest.mark.kata("merge")
def test_merge_matches_bytes_replace_and_leaves_its_input_alone(impl):
    # bytes.replace also replaces left to right without overlaps: an oracle for ids below 256.
    rng = random.Random(SEED)
    for length in [2, 5, 40, 300]:
        ids = [rng.choice([1, 1, 2, 3]) for _ in range(length)]
        pair = (rng.choice([1, 2]), rng.choice([1, 3]))
        before = list(ids)
        got = impl.merge(ids, pair, 255)
        expected = list(bytes(ids).replace(bytes(pair), bytes([255])))
        assert got == expected, f"merge({ids[:12]}..., {pair}, 255) gave {got[:12]}..., expected {expected[:12]}..."
        assert ids == before, "merge changed the list it was given: build and return a new list instead"


# --- train_bpe -------------------------------------------------------------------------------------

# "aaabdaaabac" (a=97, b=98, c=99, d=100), merged by hand, the first of tied pairs winning:
# (a,a) x4 -> 256: [256 a b d 256 a b a c]; (256,a) and (a,b) x2, (256,a) first -> 257: [257 b d 257 b a c];
# (257,b) x2 -> 258: [258 d 258 a c]; then all pairs once: (258,d) -> 259, (259,258) -> 260, (260,a) -> 261,
# (261,c) -> 262: [262], a single id, and training stops.
WIKI_MERGES = {
    (97, 97): 256,
    (256, 97): 257,
    (257, 98): 258,
    (258, 100): 259,
    (259, 258): 260,
    (260, 97): 261,
    (261, 99): 262,
}


@pytest.mark.kata("train_bpe")
def test_train_bpe_by_hand(impl):
    got = impl.train_bpe("aaabdaaabac", 259)
    expected = dict(list(WIKI_MERGES.items())[:3])
    assert got == expected, (
        f"train_bpe('aaabdaaabac', 259) gave {got}, expected {expected}: the most frequent pair first, counted "
        "again after every merge, new ids from 256, and on a tie the pair that occurs first"
    )
    assert list(got.values()) == [256, 257, 258], "the merges should be recorded in the order they are learned"


@pytest.mark.kata("train_bpe")
def test_train_bpe_stops_when_one_id_is_left(impl):
    got = impl.train_bpe("aaabdaaabac", 300)
    assert got == WIKI_MERGES, (
        f"train_bpe('aaabdaaabac', 300) gave {got}, expected the 7 merges that reduce it to one id, then stop"
    )
    assert impl.train_bpe("", 260) == {}, "no text, no pairs: no merges"
    assert impl.train_bpe("aaabdaaabac", 256) == {}, "vocab_size 256 is the bytes alone: no merges"
    with pytest.raises(ValueError):
        impl.train_bpe("aaabdaaabac", 255)


@pytest.mark.kata("train_bpe")
def test_train_bpe_breaks_ties_by_first_occurrence(impl):
    got = impl.train_bpe("xyab", 257)
    assert got == {(120, 121): 256}, (
        f"in 'xyab' every pair occurs once; the first, (x, y) = (120, 121), should win, got {got} "
        "(sorting the pairs, or taking the last of the tied ones?)"
    )


@pytest.mark.kata("train_bpe")
def test_train_bpe_works_on_utf8_bytes(impl):
    # 你 is e4 bd a0 and 好 is e5 a5 bd in UTF-8; (0xe4, 0xbd) is the first of the pairs seen 3 times.
    got = impl.train_bpe("你好你好你好", 258)
    assert got == {(0xE4, 0xBD): 256, (256, 0xA0): 257}, (
        f"train_bpe('你好你好你好', 258) gave {got}: work on the UTF-8 bytes of the text, not on its characters"
    )


@pytest.mark.kata("train_bpe")
def test_train_bpe_on_the_corpus(impl):
    merges = impl.train_bpe(CORPUS, 256 + 50)
    assert list(merges.values()) == list(range(256, 306)), "the new ids should be 256, 257, ..., 305 in order"
    data = CORPUS.encode("utf-8")
    counts = collections.Counter(itertools.pairwise(data))
    most = max(counts.values())
    first = next(pair for pair in itertools.pairwise(data) if counts[pair] == most)
    got = next(iter(merges))
    assert got == first, (
        f"the first merge should be the corpus's most frequent byte pair {first} (seen {most} times), "
        f"got {got} (seen {counts.get(got, 0)} times)"
    )
    for (left, right), new_id in merges.items():
        assert left < new_id and right < new_id, f"merge {(left, right)} -> {new_id} uses an id not yet made"


# --- vocab_from_merges -----------------------------------------------------------------------------


@pytest.mark.kata("vocab_from_merges")
def test_vocab_by_hand_in_any_order(impl):
    for merges in [{(104, 105): 256, (256, 33): 257}, {(256, 33): 257, (104, 105): 256}]:
        vocab = impl.vocab_from_merges(merges)
        assert len(vocab) == 258, f"256 bytes + 2 merges should make 258 entries, got {len(vocab)}"
        assert (vocab[256], vocab[257]) == (b"hi", b"hi!"), (
            f"with merges {merges}: 256 -> {vocab[256]!r} and 257 -> {vocab[257]!r}, expected b'hi' and b'hi!' "
            "(build the merges in order of new id, whatever the dictionary's order)"
        )


@pytest.mark.kata("vocab_from_merges")
def test_vocab_bytes_are_single_bytes_and_concatenations(impl):
    merges = hf_trained_merges(CORPUS + "你好，世界！" * 5, 40)
    vocab = impl.vocab_from_merges(merges)
    assert len(vocab) == 256 + len(merges), f"expected 256 + {len(merges)} entries, got {len(vocab)}"
    for byte in range(256):
        assert vocab[byte] == bytes([byte]), (
            f"id {byte} should be the single byte {bytes([byte])!r}, got {vocab[byte]!r} (chr(i).encode() is 2 "
            "bytes from 128 on)"
        )
    for (left, right), new_id in merges.items():
        assert vocab[new_id] == vocab[left] + vocab[right], f"id {new_id} should be the bytes of {left} then {right}"
        assert isinstance(vocab[new_id], bytes), f"id {new_id} should map to bytes, got {type(vocab[new_id])}"


# --- BPETokeniser ----------------------------------------------------------------------------------


@pytest.mark.kata("BPETokeniser")
def test_bpe_encode_applies_merges_in_learned_order(impl):
    cases = [
        # (b, c) is the more frequent pair here, but (a, b) was learned first.
        ({(97, 98): 256, (98, 99): 257}, "abcbcbc", [256, 99, 257, 257]),
        # One merge leads to the next: every merge present must be applied, not just one pass.
        ({(97, 97): 256, (256, 256): 257}, "aaaaa", [257, 97]),
        ({(97, 97): 256, (256, 97): 257, (256, 256): 258}, "aaaaaaa", [258, 257]),
        ({(97, 98): 256}, "ab", [256]),
        ({(97, 97): 256}, "", []),
        ({(97, 97): 256}, "b", [98]),
        ({}, "hé", [104, 0xC3, 0xA9]),
    ]
    for merges, text, expected in cases:
        got = impl.BPETokeniser(merges).encode(text)
        assert got == expected, (
            f"with merges {merges}, encode({text!r}) gave {got}, expected {expected}: merge the pair with the "
            "LOWEST new id among those present, again and again until none is left"
        )
        hf = hf_tokenizer(merges).encode(text).ids
        assert hf == expected, f"test setup: Hugging Face gives {hf} for {text!r}"


@pytest.mark.kata("BPETokeniser")
def test_bpe_encode_matches_hugging_face(impl, corpus_merges):
    tokeniser = impl.BPETokeniser(corpus_merges)
    oracle = hf_tokenizer(corpus_merges)
    texts = [*TEXTS, CORPUS[:800], random_text(random.Random(SEED), 200)]
    for text in texts:
        got = tokeniser.encode(text)
        expected = oracle.encode(text).ids
        assert got == expected, (
            f"encode({text[:40]!r}...) differs from Hugging Face's byte-level BPE with the same merges: got "
            f"{got[:12]}..., expected {expected[:12]}... (merges applied by frequency rather than learned order? "
            "working on characters instead of UTF-8 bytes?)"
        )


@pytest.mark.kata("BPETokeniser")
def test_bpe_round_trip(impl, corpus_merges):
    rng = random.Random(SEED)
    tokeniser = impl.BPETokeniser(corpus_merges)
    for text in [*TEXTS, CORPUS, *(random_text(rng, n) for n in [1, 5, 60])]:
        ids = tokeniser.encode(text)
        assert all(isinstance(i, int) and 0 <= i < 256 + len(corpus_merges) for i in ids), "ids out of the vocabulary"
        got = tokeniser.decode(ids)
        assert got == text, f"decode(encode({text[:40]!r}...)) gave {got[:40]!r}...: the round trip should be exact"


@pytest.mark.kata("BPETokeniser")
def test_bpe_compresses_more_with_more_merges(impl, corpus_merges):
    text = CORPUS[:1000]
    data = text.encode("utf-8")
    lengths = {}
    for n in [0, 10, 30, 60]:
        subset = dict(list(corpus_merges.items())[:n])
        lengths[n] = len(impl.BPETokeniser(subset).encode(text))
    assert lengths[0] == len(data), f"with no merges the ids are the {len(data)} bytes, got {lengths[0]} ids"
    assert lengths[0] > lengths[10] > lengths[30] > lengths[60], (
        f"ids for the corpus with 0, 10, 30, 60 merges: {lengths}; each merge learned on it should shorten it"
    )
    unseen = len(impl.BPETokeniser(corpus_merges).encode(UNSEEN))
    assert unseen < len(UNSEEN.encode("utf-8")), "English text the merges never saw should still be compressed"


@pytest.mark.kata("BPETokeniser")
def test_bpe_decode_replaces_broken_utf8(impl, corpus_merges):
    tokeniser = impl.BPETokeniser(corpus_merges)
    got = tokeniser.decode([0x80])
    assert got == "\ufffd", (
        f"decode([0x80]) (a lone UTF-8 continuation byte) gave {got!r}, expected '\\ufffd': decode with "
        'errors="replace", so a split character does not raise'
    )
    got = tokeniser.decode([104, 0xE4, 0xBD])
    assert got == "h\ufffd", f"decode of 'h' and the first 2 of the 3 bytes of 你 gave {got!r}, expected 'h\\ufffd'"
    oracle = hf_tokenizer(corpus_merges)
    rng = random.Random(SEED)
    for _ in range(20):
        ids = [rng.randrange(256 + len(corpus_merges)) for _ in range(rng.randint(0, 12))]
        got, expected = tokeniser.decode(ids), oracle.decode(ids)
        assert got == expected, f"decode({ids}) gave {got!r}, Hugging Face's ByteLevel decoder gives {expected!r}"
