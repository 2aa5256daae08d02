"""Tokenisers: text to token ids and back. First a character-level tokeniser (one id per character,
the one the tiny GPT-2 of the training module reads), then byte-level BPE as GPT-2 does it, in the
style of Karpathy's minbpe: text becomes UTF-8 bytes (ids 0-255), and training repeatedly merges the
most frequent pair of neighbouring ids into a new id (256, 257, ...).

This is minbpe's BasicTokenizer: no regex splits the text into chunks first, and there are no special
tokens. GPT-2's real tokeniser does split first (minbpe's RegexTokenizer), so that no merge crosses from
one chunk to the next. A chunk is a run of letters, of digits or of punctuation, each with at most the
one space before it (" the" is a single token: the space stays with the word after it), a run of
whitespace, or one of the endings 's, 't, 're, 've, 'm, 'll and 'd. So a merge can join a space and a
letter, but never a letter and the punctuation after it, nor a word and the next.

Read or watch first (curriculum.toml's `reading`):
- Andrej Karpathy, The spelled-out intro to neural networks and backpropagation: building
  micrograd, the last part (the training loop: forward, zero the gradients, backward, update), the
  loop every kata here builds on:
  https://www.youtube.com/watch?v=VMj-3S1tku0
- Andrej Karpathy, Let's build GPT: from scratch, in code, spelled out, all of it: the
  character-level tokeniser, the train/validation split, random batches of contiguous windows, the
  training loop with AdamW, evaluating both losses every few steps, and sampling text from the
  trained model:
  https://www.youtube.com/watch?v=kCc8FmEb1nY
- Andrej Karpathy, Let's build the GPT Tokenizer, the byte-level BPE parts (UTF-8 bytes, counting
  pairs, merging, training, encoding and decoding), with its code, minbpe:
  https://www.youtube.com/watch?v=zduSFxRajkE
- Neel Nanda, transformer template notebook, its 'Training a Model' section: a tiny GPT-2 trained
  with AdamW on real text, its loss falling step by step:
  https://www.neelnanda.io/transformer-template
- fast.ai, Practical Deep Learning for Coders, lessons 1-5 if you want the longer road (the list
  calls it good but more than you need): overfitting, validation sets, learning rates and schedules:
  https://course.fast.ai/
"""

import itertools

from katakit import kata


class CharTokeniser:
    """A character-level tokeniser: every distinct character of a text gets one id.

    The vocabulary is the set of characters of `text`, sorted (by code point, as `sorted` sorts
    strings), and a character's id is its position in that sorted list: for "hello" the vocabulary
    is ['e', 'h', 'l', 'o'] and "hole" encodes to [1, 3, 2, 0]. In __init__, set `vocab_size` (the
    training module reads it) and build the tables encode and decode need: Karpathy's `stoi`
    (character -> id) and `itos` (id -> character), say. encode turns a string into its list of ids;
    decode turns a list of ids back into the string.

    encode raises a KeyError naming the character when it meets one that is not in the vocabulary
    (a character tokeniser cannot encode what it never saw; silently mapping it to some id would
    hide the problem).

    Shapes:
        __init__(text): sets vocab_size: int (and your lookup tables)
        encode(text): str -> list[int], one id per character
        decode(ids): list[int] -> str, one character per id

    Hints (the next one: katas hint CharTokeniser 2):
        1. Which characters occur, each once, in a fixed order: a set gives the first part, and sorting
           gives the second.
    """

    @kata
    def __init__(self, text: str) -> None:
        """Build the sorted vocabulary of `text` and both lookup tables (see the class docstring)."""
        raise NotImplementedError

    @kata
    def encode(self, text: str) -> list[int]:
        """The id of every character of `text`, in order; KeyError for a character not in the vocabulary."""
        raise NotImplementedError

    @kata
    def decode(self, ids: list[int]) -> str:
        """The string whose characters have these ids."""
        raise NotImplementedError


@kata
def pair_counts(ids: list[int]) -> dict[tuple[int, int], int]:
    """Count every pair of consecutive ids in `ids`.

    Pairs overlap: [1, 1, 1] holds the pair (1, 1) twice (at positions 0-1 and 1-2). The dictionary
    lists the pairs in the order of their first occurrence (a plain dict filled left to right does),
    which train_bpe relies on to break ties. A list shorter than 2 has no pairs: {}.

    Shapes:
        ids: list of n ints
        returns: dict (left id, right id) -> count, the counts summing to n - 1 (0 when n < 2)

    Hints (the next one: katas hint pair_counts 2):
        1. Walk along the list looking at each element together with the one after it.
    """
    raise NotImplementedError


@kata
def merge(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace every occurrence of `pair` in `ids` by `new_id`, scanning left to right; return a new list.

    Occurrences do not overlap: once two ids are merged, the second cannot start another pair, so
    with pair (a, a), [a, a, a] becomes [new, a] and [a, a, a, a] becomes [new, new]. Every id not in
    a merged pair is kept, the last one included. `ids` itself is left unchanged.

    Shapes:
        ids: list of n ints
        pair: (left id, right id)
        new_id: the id that replaces the pair
        returns: list of n - (number of merges) ints

    Hints (the next one: katas hint merge 2):
        1. Walk an index i along ids, building a new list: at each step either the pair starts at i or
           it does not.
    """
    raise NotImplementedError


@kata
def train_bpe(text: str, vocab_size: int) -> dict[tuple[int, int], int]:
    """Learn byte-level BPE merges on `text` until the vocabulary has `vocab_size` ids.

    Start from the UTF-8 bytes of text (ids 0-255, so the first new id is 256). Then, vocab_size - 256
    times: count the pairs of the current ids, take the most frequent pair, give it the next id (256,
    257, ...), record it, and merge it everywhere in the ids before counting again. Ties go to the pair
    that occurs first in the current ids (the first in pair_counts' order, which is what max over the
    dictionary gives). If the ids shrink to a single id before that, stop: no pair is left to merge,
    so fewer merges come back. Raise a ValueError if vocab_size < 256 (the 256 bytes are always in).

    Shapes:
        text: str
        vocab_size: int >= 256
        returns: dict (left id, right id) -> new id, in the order learned: new ids 256, 257, ...

    Hints (the next one: katas hint train_bpe 2):
        1. Use your pair_counts and merge: each round is count, pick, record, merge.
    """
    raise NotImplementedError


@kata
def vocab_from_merges(merges: dict[tuple[int, int], int]) -> dict[int, bytes]:
    """The bytes each id stands for: ids 0-255 are single bytes, a merged id is its pair's bytes joined.

    For merges {(104, 105): 256, (256, 33): 257}: 104 -> b"h", 256 -> b"hi", 257 -> b"hi!". A merged
    id's pair may contain earlier merged ids, so build them in order of new id (sort by it: do not
    trust the dictionary's order).

    Shapes:
        merges: dict (left id, right id) -> new id, new ids 256, 257, ... (in any order)
        returns: dict id -> bytes, 256 + len(merges) entries

    Hints (the next one: katas hint vocab_from_merges 2):
        1. bytes() of a one-element list of ints makes the one-byte string of that value.
    """
    raise NotImplementedError


class BPETokeniser:
    """A byte-level BPE tokeniser given its merges (as train_bpe learns them).

    encode: start from the UTF-8 bytes of text and repeat: among the pairs of neighbouring ids present,
    find the one whose merge was learned first (the lowest new id), merge it everywhere; stop when no
    pair present has a merge. Merges are applied in the order they were learned, not by how often a
    pair occurs in this text: that is what makes encoding reproduce training.

    decode: join the bytes of every id (self.vocab) and decode them as UTF-8 with errors="replace". A
    list of ids can cut a character's multi-byte encoding in two (a model generating tokens one by one
    does this); the broken piece becomes the replacement character U+FFFD instead of an exception.

    Shapes:
        merges: dict (left id, right id) -> new id; vocab: dict id -> bytes (given)
        encode(text): str -> list[int]
        decode(ids): list[int] -> str

    Hints (the next one: katas hint BPETokeniser 2):
        1. encode loops: count the pairs present, pick one, merge it, until nothing can be merged; your
           pair_counts and merge do the work.
    """

    def __init__(self, merges: dict[tuple[int, int], int]):
        self.merges = dict(merges)
        self.vocab = vocab_from_merges(self.merges)
        self.vocab_size = len(self.vocab)

    @kata
    def encode(self, text: str) -> list[int]:
        """The BPE ids of `text`: its UTF-8 bytes with the merges applied in learned order."""
        raise NotImplementedError

    @kata
    def decode(self, ids: list[int]) -> str:
        """The text these ids stand for; a broken UTF-8 sequence becomes U+FFFD."""
        raise NotImplementedError
