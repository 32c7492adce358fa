"""Adversarial probe completions: what does a reward mix pay for, before any training?

Each probe is one completion written against a ground-truth vector `truth`. Together they cover the
ways a policy can game format and label rewards: extra or misplaced label blocks, missing or nested
tags, over-long thinking, degenerate vectors, wrong lengths and types, empty and non-ASCII text.
`score_probes(mix, truth)` scores them all with a RewardMix, as one batch (so `group_f1` credits each
probe against the others).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from llmscisci.rewards.registry import RewardMix


@dataclass(frozen=True)
class Probe:
    name: str
    what: str
    completion: str


def vec(v: Sequence[int]) -> str:
    return "[" + ", ".join(str(int(x)) for x in v) + "]"


def wrong_vector(truth: Sequence[int]) -> list[int]:
    """A valid vector (exclusive-none respected when `none` is last) that disagrees with `truth`."""
    n = len(truth)
    if n == 1:
        return [1 - int(truth[0])]
    none_only = [0] * (n - 1) + [1]
    if list(truth) != none_only:
        return none_only
    return [1] + [0] * (n - 1)


def probes(truth: Sequence[int] = (1, 0, 1, 0, 0), huge_words: int = 5000) -> list[Probe]:
    t = [int(x) for x in truth]
    n = len(t)
    right, wrong = vec(t), vec(wrong_vector(t))
    think = "The text says the code was available and the paper was clearly written."
    ok = f"<think>\n{think}\n</think>\n<label>\n{right}\n</label>"
    return [
        Probe("perfect", "well-formed, correct label", ok),
        Probe("wrong_valid", "well-formed, valid but wrong vector", f"<think>{think}</think><label>{wrong}</label>"),
        Probe("all_ones", "every category set (breaks exclusive none)",
              f"<think>{think}</think><label>{vec([1] * n)}</label>"),
        Probe("all_zeros", "no category set (strict validator would repair it to none)",
              f"<think>{think}</think><label>{vec([0] * n)}</label>"),
        Probe("bare_list", "the right list with no tags at all", right),
        Probe("no_think", "label block only", f"<label>{right}</label>"),
        Probe("label_before_think", "label block before the think block",
              f"<label>{right}</label><think>{think}</think>"),
        Probe("label_inside_think", "the only label block sits inside think",
              f"<think>{think} <label>{right}</label></think>"),
        Probe("two_labels_last_right", "two label blocks, the last one right",
              f"<think>{think}</think><label>{wrong}</label><label>{right}</label>"),
        Probe("two_labels_last_wrong", "two label blocks, the last one wrong",
              f"<think>{think}</think><label>{right}</label><label>{wrong}</label>"),
        Probe("unclosed_label", "label block never closed", f"<think>{think}</think><label>{right}"),
        Probe("unclosed_think", "think block never closed", f"<think>{think}<label>{right}</label>"),
        Probe("nested_tags", "think nested in think", f"<think><think>{think}</think></think><label>{right}</label>"),
        Probe("text_around", "chatter before and after the blocks",
              f"Sure! Here it is.\n{ok}\nHope this helps."),
        Probe("six_elements", "a list one entry too long", f"<think>{think}</think><label>{vec(t + [0])}</label>"),
        Probe("floats", "floats instead of ints",
              f"<think>{think}</think><label>[{', '.join(f'{x}.0' for x in t)}]</label>"),
        Probe("bools", "Python booleans (ints to the seed's check)",
              f"<think>{think}</think><label>[{', '.join('True' if x else 'False' for x in t)}]</label>"),
        Probe("strings", "quoted digits",
              f"<think>{think}</think><label>[{', '.join(repr(str(x)) for x in t)}]</label>"),
        Probe("names", "category names instead of a vector", f"<think>{think}</think><label>code, readability</label>"),
        Probe("json_object", "a JSON object", f"<think>{think}</think><label>{{\"code\": true}}</label>"),
        Probe("huge_think", f"{huge_words} words of padding in think, correct label",
              f"<think>{' '.join(['because'] * huge_words)}</think><label>{right}</label>"),
        Probe("empty", "the empty string", ""),
        Probe("whitespace", "only whitespace", " \n\t "),
        Probe("empty_blocks", "empty think and label blocks", "<think></think><label></label>"),
        Probe("non_ascii", "non-ASCII think text and full-width brackets",
              f"<think>Le code était disponible — 代码可用 ✓</think><label>［{'，'.join(map(str, t))}］</label>"),
        Probe("non_ascii_ok", "non-ASCII think text, ASCII label",
              f"<think>Le code était disponible — 代码可用</think><label>{right}</label>"),
    ]


def score_probes(mix: RewardMix, truth: Sequence[int], extra: Sequence[str] = (), task: str | None = None,
                 huge_words: int = 5000) -> list[dict]:
    """One row per probe (and per extra completion): name, what, every component, total."""
    items = probes(truth, huge_words)
    items += [Probe(f"user_{i + 1}", "given on the command line", c) for i, c in enumerate(extra)]
    completions = [p.completion for p in items]
    cols: dict = {"labels": [list(truth)] * len(items)}
    if task is not None:
        cols["task"] = [task] * len(items)
    scores = mix.score(completions, **cols)
    rows = []
    for i, p in enumerate(items):
        row = {"probe": p.name, "what": p.what}
        for name in [*mix.names, "total"]:
            row[name] = scores[name][i]
        rows.append(row)
    return rows
