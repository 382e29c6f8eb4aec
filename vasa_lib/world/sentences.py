"""Sentences for the synthetic world: an endless, deterministic supply of plain English.

VASA-1 trains on thousands of real speakers (VoxCeleb2); our speakers read sentences made by a
small grammar: a dozen templates whose slots are filled from our own word lists. Every
sentence has 4 to 14 words. To test generalisation to unseen speech, the nouns and names are
split in two: training sentences use only the `train` half, test sentences only the `test`
half, and every template has a noun or a name, so no test sentence can occur in training.
A few German sentences (matching `speech.FOREIGN_VOICES`) serve as out-of-distribution speech.
"""

from __future__ import annotations

import numpy as np

NOUNS = {
    "train": ["dog", "teacher", "farmer", "baker", "child", "painter", "sailor", "doctor", "lamp",
              "garden", "window", "river", "bicycle", "letter", "basket", "kitchen", "market",
              "rabbit", "pilot", "neighbour", "boat", "apple", "mirror", "village", "parrot",
              "student", "engine", "blanket", "camera", "bottle", "pencil", "ladder"],
    "test": ["cat", "nurse", "fisherman", "drummer", "kettle", "tunnel", "umbrella", "violin",
             "orchard", "lantern", "monkey", "carpet", "wagon", "helmet", "goose", "bridge"],
}
NAMES = {
    "train": ["Anna", "Peter", "Maria", "Tom", "Lucy", "David", "Sophie", "Martin", "Emma", "Paul",
              "Olivia", "James", "Nora", "Felix"],
    "test": ["Hugo", "Greta", "Victor", "Ruby", "Oscar", "Ivy", "Bruno"],
}
ADJECTIVES = ["small", "old", "happy", "quiet", "bright", "heavy", "tired", "clever", "yellow",
              "friendly", "broken", "famous", "lovely", "strange", "gentle", "busy"]
ADVERBS = ["slowly", "quickly", "happily", "carefully", "quietly", "suddenly", "always", "often"]
VERBS_TRANSITIVE = ["found", "painted", "watched", "carried", "opened", "moved", "cleaned",
                    "followed", "bought", "fixed", "visited", "dropped", "liked", "pushed"]
VERBS_INTRANSITIVE = ["laughed", "waited", "slept", "smiled", "arrived", "stopped", "listened",
                      "danced", "worked", "sang"]
PREPOSITIONS = ["near", "behind", "under", "beside", "inside", "across", "above"]
TIMES = ["this morning", "last night", "every day", "on Monday", "after lunch", "in the summer",
         "before dinner", "at noon"]
PLACES = ["the park", "the station", "the old house", "the beach", "the library", "the hill",
          "the city", "the harbour"]

# Slots: {noun} {noun2} {name} {adj} {adv} {vt} {vi} {prep} {time} {place}
TEMPLATES = [
    "The {adj} {noun} {vt} the {noun2}.",
    "The {noun} {vi} {adv} {prep} the {noun2}.",
    "{name} {vt} a {adj} {noun} {time}.",
    "{name} {vi} {prep} {place} {time}.",
    "{time_cap}, the {noun} {vi} {adv}.",
    "Did {name} see the {adj} {noun} {prep} {place}?",
    "My {noun} {vt} the {adj} {noun2} {prep} {place}.",
    "{name} and the {noun} {vi} {adv} {prep} {place} {time}.",
    "Why did the {noun} stop {prep} the {noun2}?",
    "I think the {adj} {noun} {vi}, but {name} {vt} it {time}.",
    "We {vt} the {noun} and then we {vi} {adv}.",
    "There is a {adj} {noun} {prep} {place}.",
]

FOREIGN_SENTENCES = [
    "Der kleine Hund schläft unter dem Tisch.",
    "Morgen fahren wir mit dem Zug nach Hamburg.",
    "Meine Schwester trinkt gern heißen Tee.",
    "Das Wetter ist heute wirklich schön.",
    "Wo hast du den roten Schlüssel gefunden?",
    "Ich höre jeden Abend ein bisschen Musik.",
    "Der Bäcker öffnet seinen Laden um sechs Uhr.",
    "Kannst du mir bitte das Buch geben?",
    "Im Garten wachsen Äpfel und Birnen.",
    "Wir haben gestern lange über die Reise gesprochen.",
    "Die Kinder spielen fröhlich auf der Wiese.",
    "Zwölf Boxkämpfer jagen Viktor quer über den großen Sylter Deich.",
]

_SPLIT_SEEDS = {"train": 0, "test": 1}


def _check_split(split: str) -> None:
    if split not in _SPLIT_SEEDS:
        raise ValueError(f"unknown split {split!r}; use 'train' or 'test'")


def make_sentence(rng: np.random.Generator, split: str = "train") -> str:
    """A random English sentence of 4-14 words, using only the nouns and names of `split`."""
    _check_split(split)

    def pick(words: list[str]) -> str:
        return str(rng.choice(words))

    noun, noun2 = (str(w) for w in rng.choice(NOUNS[split], size=2, replace=False))
    time_phrase = pick(TIMES)
    slots = {
        "noun": noun, "noun2": noun2, "name": pick(NAMES[split]), "adj": pick(ADJECTIVES),
        "adv": pick(ADVERBS), "vt": pick(VERBS_TRANSITIVE), "vi": pick(VERBS_INTRANSITIVE),
        "prep": pick(PREPOSITIONS), "time": time_phrase, "time_cap": time_phrase.capitalize(),
        "place": pick(PLACES),
    }
    return pick(TEMPLATES).format(**slots)


def sentence_for(index: int, split: str = "train") -> str:
    """The `index`-th sentence of a split: the same string every time, on every machine."""
    _check_split(split)
    if not isinstance(index, (int, np.integer)) or index < 0:
        raise ValueError(f"index must be an int >= 0, got {index!r}")
    return make_sentence(np.random.default_rng([int(index), _SPLIT_SEEDS[split]]), split)


def foreign_sentence(index: int) -> str:
    """The `index`-th German sentence (cycling through `FOREIGN_SENTENCES`)."""
    if not isinstance(index, (int, np.integer)) or index < 0:
        raise ValueError(f"index must be an int >= 0, got {index!r}")
    return FOREIGN_SENTENCES[int(index) % len(FOREIGN_SENTENCES)]
