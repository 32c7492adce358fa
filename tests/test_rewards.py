"""Reward library: the seed's definitions on hand-computed examples, adversarial probes with each
reward's documented value, the strict variants, the length variants and the rewards that do not pay
the majority prior."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from sklearn.metrics import f1_score, hamming_loss

from llmscisci.rewards import core
from llmscisci.rewards.probes import probes, wrong_vector
from llmscisci.rewards.registry import REWARDS, RewardContext, build_mix

T = [1, 0, 1, 0, 0]


def ok(label: str, think: str = "because the code was there") -> str:
    return f"<think>{think}</think>\n<label>{label}</label>"


# --- extraction and validity -----------------------------------------------------------------------
def test_label_and_think_text_follow_the_seeds_split_semantics():
    assert core.label_text("<think>a</think><label> [1, 0] </label>") == "[1, 0]"
    assert core.label_text("<label>x</label><label>y</label>") == "y"  # the LAST label block
    assert core.label_text("<label>[1, 0, 1, 0, 0]") == "[1, 0, 1, 0, 0]"  # unclosed: to the end
    assert core.label_text("  [1, 0, 1, 0, 0] ") == "[1, 0, 1, 0, 0]"  # no tag: the whole text
    assert core.label_text("<label></label>") == ""
    assert core.think_text("<think>a</think><think> b c </think>") == "b c"
    assert core.think_text("<think><think>x</think></think>") == "x"
    for s in ["", "<label>", "</label><label>q</label>", "a<label>b</label>c<label>d"]:
        assert core.label_text(s) == s.split("<label>")[-1].split("</label>")[0].strip()


@pytest.mark.parametrize("label,valid", [
    ("[1, 0, 1, 0, 0]", True),
    ("[1,0,1,0,0]", True),
    ("[1, 0, 1, 0, 0,]", True),  # a trailing comma is a Python literal
    ("[\n1,\n0, 1, 0, 0]", True),
    ("[True, False, True, False, False]", True),  # bools are ints to the seed's isinstance test
    ("[0x1, 0, 1, 0, 0]", True),  # Python literal rules, as in the seed
    ("[1, 0, 1, 0, 0] # sure", True),
    ("[1, 0, 1, 0]", False),
    ("[1, 0, 1, 0, 0, 0]", False),
    ("[1.0, 0, 1, 0, 0]", False),
    ("['1', 0, 1, 0, 0]", False),
    ("[2, 0, 1, 0, 0]", False),
    ("(1, 0, 1, 0, 0)", False),
    ("1, 0, 1, 0, 0", False),
    ("[1, 0, 1, 0, 0]]", False),
    ("", False),
    ("[" * 500 + "]" * 500, False),  # too deeply nested for the parser: False, no crash
    ("[" + "1" * 5000 + ", 0, 1, 0, 0]", False),  # an int over the digit limit
    ("__import__('os')", False),
])
def test_is_valid_onehot_is_the_seeds_literal_eval_test(label, valid):
    assert core.is_valid_onehot(label) is valid


def test_validity_generalises_to_n_labels():
    assert core.is_valid_onehot("[1, 0, 1]", 3)
    assert not core.is_valid_onehot("[1, 0, 1]", 5)
    assert core.parse_onehot("[True, 0]", 2) == (1, 0)
    assert core.parse_onehot("[]", 0) == ()


def test_strict_validity_uses_the_project_validator():
    # seed-valid, but the exclusive-none rule needs a repair: not strictly valid
    assert core.parse_onehot("[1, 0, 0, 0, 1]") == (1, 0, 0, 0, 1)
    assert core.parse_strict("[1, 0, 0, 0, 1]") is None
    assert core.parse_strict("[0, 0, 0, 0, 0]") is None
    assert core.parse_strict("[0, 0, 0, 0, 1]") == (0, 0, 0, 0, 1)
    assert core.parse_strict("[1, 0, 1, 0, 0]") == (1, 0, 1, 0, 0)
    # none elsewhere, or no none category at all
    assert core.parse_strict("[1, 0, 0, 0, 1]", none_index=0) is None
    assert core.parse_strict("[0, 0, 0, 0, 1]", none_index=0) == (0, 0, 0, 0, 1)
    assert core.parse_strict("[1, 1, 0]", 3, none_index=0) is None
    assert core.parse_strict("[0, 0, 0]", 3, none_index=None) == (0, 0, 0)
    assert core.parse_strict("[1.0, 0, 1, 0, 0]") is None  # strict is never looser than the seed


def test_format_regex_equivalence_on_tricky_cases():
    cases = [
        "<think>a</think><label>b</label>", "pre <think>a</think> \n\t <label>b</label> post",
        "<think></think><label></label>", "<think>a</think>x<label>b</label>", "<label>b</label><think>a</think>",
        "<think>a<label>b</label>", "<think>a</think><label>b", "</think><label>b</label><think>",
        "<think><think>a</think></think><label>b</label>", "<think>a</think><label>b</label><label>",
        "<think></think></think> <label></label>", "<think>a</think><label></label><label>", "",
        "<think>a</think> <label>" * 3, "<thin>k</think><label>b</label>", "<think>\u00e9</think>\n<label>\u4e2d</label>",
    ]
    for c in cases:
        assert core.format_matches(c) == core.format_matches_regex(c), c


def test_format_check_is_linear_where_the_regex_backtracks():
    # the literal regex needs minutes on this 48 kB completion; the equivalent check is instant
    bad = "<think>a</think> <label>" * 2000
    t0 = time.perf_counter()
    assert core.format_reward(bad) == 0.0
    assert core.label_reward(bad) == 0.0
    assert time.perf_counter() - t0 < 0.5


# --- the seed's rewards, hand-computed ----------------------------------------------------------
def test_seed_examples_hand_computed():
    c = ok("[1, 0, 1, 0, 0]")
    assert core.format_reward(c) == 1.0
    assert core.label_reward(c) == 0.5
    assert core.stepwise_reward(c) == 1.0
    assert core.hamming_reward(c, T) == 1.0
    assert core.hamming_reward(c, [1, 1, 0, 0, 0]) == pytest.approx(0.6)  # 2 of 5 wrong
    assert core.hamming_reward(ok("[0, 0, 0, 0, 1]"), T) == pytest.approx(0.4)
    assert core.hamming_reward(ok("[1, 0, 1, 0]"), T) == 0.0  # invalid -> 0
    # stepwise steps: 0.125 non-empty, 0.125 only 0/1, 0.125 brackets, 0.625 valid
    assert core.stepwise_reward(ok("1, 0, 1, 0, 0")) == 0.25
    assert core.stepwise_reward(ok("[1, 0, 1]")) == 0.375
    assert core.stepwise_reward(ok("[a]")) == 0.25
    assert core.stepwise_reward(ok("[]")) == 0.25
    assert core.stepwise_reward(ok("maybe")) == 0.125
    assert core.stepwise_reward(ok("")) == 0.0
    assert core.stepwise_reward(ok("[1, 0, 1, 0, 2]")) == 0.25
    # label needs the format
    assert core.label_reward("[1, 0, 1, 0, 0]") == 0.0
    assert core.label_reward("<think>x</think><label>[1, 0, 1, 0, 0]</label>") == 0.5
    # so do stepwise and hamming (the seed scores only a completion that matches the format)
    for unformatted in ["[1, 0, 1, 0, 0]", "<label>[1, 0, 1, 0, 0]</label>", "<think>x</think><label>[1, 0, 1, 0, 0]"]:
        assert core.stepwise_reward(unformatted) == 0.0
        assert core.hamming_reward(unformatted, T) == 0.0
        assert core.conditional_reward(unformatted, tau=0.0) == 0.0


def test_hamming_equals_sklearn():
    rng = np.random.default_rng(0)
    for _ in range(50):
        t = rng.integers(0, 2, 5).tolist()
        p = rng.integers(0, 2, 5).tolist()
        c = ok("[" + ", ".join(map(str, p)) + "]")
        assert core.hamming_reward(c, t) == pytest.approx(1 - hamming_loss([t], [p]))


def test_cot_length_and_conditional_seed_values():
    c = ok("[1, 0, 1, 0, 0]", think="one two three four five six seven eight nine ten eleven twelve")
    assert core.cot_tokens(c) == 12
    assert core.cot_length_reward(c) == 12.0
    assert core.conditional_reward(c) == pytest.approx(1.0 + 0.1 * 12)  # stepwise 1 >= tau 1
    half = ok("[1, 0, 1]", think="one two three")
    assert core.conditional_reward(half) == 0.375  # stepwise below tau: no bonus
    assert core.conditional_reward(half, tau=0.3) == pytest.approx(0.375 + 0.1 * 3)
    # the length is 0 without the format, and counted between the LAST <think> and the next </think>
    assert core.cot_tokens("<think>a b c</think> [1, 0, 1, 0, 0]") == 0
    assert core.cot_tokens("<think>a b c</think><think>d</think><label>x</label>") == 1
    # a token counter of the caller's choice
    assert core.cot_tokens(c, count=lambda s: len(s)) == len("one two three four five six seven eight nine ten eleven twelve")


def test_cot_length_under_a_real_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from llmscisci.rewards.tokens import token_counter

    vocab = {"[UNK]": 0, "the": 1, "code": 2, "was": 3, "there": 4}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="[UNK]")
    count, method = token_counter(tok)
    assert method == type(tok).__name__
    c = ok("[1, 0, 1, 0, 0]", think="the code was there, really!")
    # Whitespace pre-tokenizer splits punctuation: the, code, was, there, ",", really, "!" = 7
    assert core.cot_tokens(c, count) == 7
    assert core.cot_tokens(c) == 5  # the whitespace fallback


def test_cot_length_counts_special_tokens_as_the_seed_did():
    # the seed counted tokenizer(think_text): a tokenizer that adds BOS counts one more token
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    from llmscisci.rewards.tokens import token_counter

    vocab = {"[UNK]": 0, "<s>": 1, "the": 2, "code": 3}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="[UNK]", bos_token="<s>")
    c = ok("[1, 0, 1, 0, 0]", think="the code")
    assert core.cot_tokens(c, token_counter(tok)[0]) == 3  # BOS + 2
    assert core.cot_tokens(c, token_counter(tok, special_tokens=False)[0]) == 2
    assert build_mix("cot_length", RewardContext(count_tokens=tok)).score([c])["cot_length"] == [3.0]
    assert token_counter("words")[0]("a  b\u00a0c\x1cd") == len("a  b\u00a0c\x1cd".split()) == 4


def test_length_variants_are_bounded():
    think = " ".join(["w"] * 1000)
    c = ok("[1, 0, 1, 0, 0]", think=think)
    assert core.cot_length_reward(c, mode="raw") == 1000
    assert core.cot_length_reward(c, mode="capped", cap=256) == 256
    assert core.cot_length_reward(c, mode="norm", target=128) == 1.0
    assert core.cot_length_reward(c, mode="target", target=128) == 0.0  # far past the target pays nothing
    at = ok("[1, 0, 1, 0, 0]", think=" ".join(["w"] * 128))
    assert core.cot_length_reward(at, mode="target", target=128) == 1.0
    half = ok("[1, 0, 1, 0, 0]", think=" ".join(["w"] * 64))
    assert core.cot_length_reward(half, mode="norm", target=128) == 0.5
    assert core.cot_length_reward(half, mode="target", target=128) == 0.5
    assert core.conditional_reward(c, alpha=0.25, mode="norm") == 1.25
    with pytest.raises(ValueError):
        core.length_value(3, "nope")


# --- rewards that do not pay the majority prior -----------------------------------------------------
def test_prevalence_is_smoothed_train_share():
    prev = core.prevalence([[1, 0], [1, 0], [0, 0]])
    assert prev == pytest.approx(((2 + 1) / 5, (0 + 1) / 5))
    with pytest.raises(ValueError):
        core.prevalence([])


def test_balanced_weights_rare_classes_up():
    prev = (0.9, 0.1)  # label 0 common, label 1 rare
    # truth [0, 1]: the rare positive weighs 1/0.1 = 10, the common negative 1/0.1 = 10 too
    assert core.balanced_reward(ok("[0, 1]"), [0, 1], prev) == 1.0
    assert core.balanced_reward(ok("[0, 0]"), [0, 1], prev) == pytest.approx(10 / 20)
    # truth [1, 0] (the common case): weights 1/0.9 and 1/0.9
    assert core.balanced_reward(ok("[1, 0]"), [1, 0], prev) == 1.0
    assert core.balanced_reward(ok("[1, 1]"), [1, 0], prev) == pytest.approx(0.5)
    # missing a rare positive costs more than missing a common one under hamming's equal weights
    prev5 = (0.7, 0.4, 0.6, 0.05, 0.05)
    t = [1, 0, 1, 1, 0]
    miss_rare = core.balanced_reward(ok("[1, 0, 1, 0, 0]"), t, prev5)
    miss_common = core.balanced_reward(ok("[0, 0, 1, 1, 0]"), t, prev5)
    assert miss_rare < miss_common
    assert core.hamming_reward(ok("[1, 0, 1, 0, 0]"), t) == core.hamming_reward(ok("[0, 0, 1, 1, 0]"), t)
    assert core.balanced_reward(ok("[1, 0, 1]"), t, prev5) == 0.0  # invalid
    assert core.balanced_reward(ok("[1, 0, 1, 1, 0]"), t, prev5[:3]) == 0.0  # prevalence of another length


def test_f1_per_completion_matches_sklearn():
    rng = np.random.default_rng(1)
    for _ in range(60):
        t = rng.integers(0, 2, 5).tolist()
        p = rng.integers(0, 2, 5).tolist()
        c = ok("[" + ", ".join(map(str, p)) + "]")
        if not any(t) and not any(p):
            assert core.f1_reward(c, t, "micro") == 1.0
            continue
        micro = f1_score(np.array([t]), np.array([p]), average="samples", zero_division=0)
        macro = f1_score(np.array([t]), np.array([p]), average="macro", zero_division=np.nan)
        assert core.f1_reward(c, t, "micro") == pytest.approx(micro)
        assert core.f1_reward(c, t, "macro") == pytest.approx(macro)
    assert core.f1_reward(ok("[1, 1, 1, 1, 1]"), T, "micro") == pytest.approx(4 / 7)
    assert core.f1_reward(ok("[1, 1, 1, 1, 1]"), T, "macro") == pytest.approx(2 / 5)
    assert core.f1_reward(ok("[0, 0, 0, 0, 0]"), T) == 0.0
    with pytest.raises(ValueError):
        core.f1_score_one([1], [1], "weighted")


def test_group_f1_hand_computed():
    # two rows, two labels. M(all): label0 TP1 FP1 -> 2/3, label1 FN1 -> 0; M = 1/3.
    # without row 1: label0 FP1 -> 0, label1 FN1 -> 0: M = 0 -> r1 = 2 * (1/3 - 0) = 2/3
    # without row 2: label0 TP1 -> 1, label1 no events (left out): M = 1 -> r2 = 2 * (1/3 - 1) -> clip -1
    r = core.group_f1_rewards([ok("[1, 0]"), ok("[1, 0]")], [[1, 0], [0, 1]])
    assert r == pytest.approx([2 / 3, -1.0])
    # one row: its own macro-F1
    assert core.group_f1_rewards([ok("[1, 0]")], [[1, 1]]) == [pytest.approx(0.5)]
    # an invalid label gets -1 and counts as predicting nothing for the others
    r = core.group_f1_rewards([ok("[1, 0]"), ok("oops")], [[1, 0], [1, 0]])
    assert r[1] == -1.0
    assert core.group_f1_rewards([ok("[1, 0]"), "[1, 0]"], [[1, 0], [1, 0]]) == r  # no format: invalid too
    assert r[0] == 1.0  # label0 TP1 FN1 = 2/3; without row 0: FN1 -> 0; 2 * 2/3 clipped to 1
    # groups (tasks) are scored separately
    a = core.group_f1_rewards([ok("[1, 0]"), ok("[0, 1]")], [[1, 0], [0, 1]], groups=["easy", "difficult"])
    assert a == [1.0, 1.0]


def test_group_macro_f1_matches_sklearn():
    rng = np.random.default_rng(2)
    for _ in range(30):
        t = rng.integers(0, 2, (6, 5))
        p = rng.integers(0, 2, (6, 5))
        tp = [int(((p[:, j] == 1) & (t[:, j] == 1)).sum()) for j in range(5)]
        fp = [int(((p[:, j] == 1) & (t[:, j] == 0)).sum()) for j in range(5)]
        fn = [int(((p[:, j] == 0) & (t[:, j] == 1)).sum()) for j in range(5)]
        ours = core._macro_f1(tp, fp, fn, 6)
        theirs = f1_score(t, p, average="macro", zero_division=np.nan)
        if math.isnan(theirs):
            assert ours == 1.0
        else:
            assert ours == pytest.approx(theirs)


def test_group_f1_does_not_pay_the_majority_vector():
    # a batch where the rare label 3 is true for two items: answering the common vector everywhere
    truths = [[1, 0, 1, 0, 0], [1, 0, 1, 0, 0], [1, 0, 0, 1, 0], [0, 0, 1, 1, 0]]
    majority = "[1, 0, 1, 0, 0]"
    right = [ok("[" + ", ".join(map(str, t)) + "]") for t in truths]
    lazy = [ok(majority)] * 4
    r_right = core.group_f1_rewards(right + lazy, truths + truths)
    # every right answer is credited at least as much as the lazy one for the same item,
    # and strictly more where the truth differs from the majority
    for i, t in enumerate(truths):
        if t == [1, 0, 1, 0, 0]:
            assert r_right[i] == pytest.approx(r_right[i + 4])
        else:
            assert r_right[i] > r_right[i + 4]
    # hamming pays the lazy answers 0.6 or more of the right answer's reward on the same items
    assert all(core.hamming_reward(ok(majority), t) >= 0.6 for t in truths)


# --- adversarial probes with each reward's documented value ----------------------------------------
NAMES = ["format", "label", "label_strict", "stepwise", "stepwise_strict", "hamming", "hamming_strict",
         "cot_length", "cot_length_capped", "cot_length_norm", "cot_length_target", "conditional", "conditional_norm",
         "f1_micro", "f1_macro"]
# probe -> expected values in NAMES order (truth [1, 0, 1, 0, 0]; think sentence of 13 words;
# lengths with the whitespace counter; cap 256, target 128; conditional alpha 0.1, conditional_norm 0.25).
# Every reward but format pays 0 without the format, as the seed's rewards do: a bare list, a label
# block without think, an unclosed block get nothing from stepwise, hamming or the F1 rewards.
L13 = 13 / 128
EXPECTED = {
    "perfect":               [1, .5, .5, 1, 1, 1, 1, 13, 13, L13, L13, 2.3, 1 + .25 * L13, 1, 1],
    "wrong_valid":           [1, .5, .5, 1, 1, .4, .4, 13, 13, L13, L13, 2.3, 1 + .25 * L13, 0, 0],
    "all_ones":              [1, .5, 0, 1, .375, .4, 0, 13, 13, L13, L13, 2.3, 1 + .25 * L13, 4 / 7, .4],
    "all_zeros":             [1, .5, 0, 1, .375, .6, 0, 13, 13, L13, L13, 2.3, 1 + .25 * L13, 0, 0],
    "bare_list":             [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    "no_think":              [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    "label_before_think":    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    "label_inside_think":    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    "two_labels_last_right": [1, .5, .5, 1, 1, 1, 1, 13, 13, L13, L13, 2.3, 1 + .25 * L13, 1, 1],
    "two_labels_last_wrong": [1, .5, .5, 1, 1, .4, .4, 13, 13, L13, L13, 2.3, 1 + .25 * L13, 0, 0],
    "unclosed_label":        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    "unclosed_think":        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    "nested_tags":           [1, .5, .5, 1, 1, 1, 1, 13, 13, L13, L13, 2.3, 1 + .25 * L13, 1, 1],
    "text_around":           [1, .5, .5, 1, 1, 1, 1, 13, 13, L13, L13, 2.3, 1 + .25 * L13, 1, 1],
    "six_elements":          [1, 0, 0, .375, .375, 0, 0, 13, 13, L13, L13, .375, .375, 0, 0],
    "floats":                [1, 0, 0, .25, .25, 0, 0, 13, 13, L13, L13, .25, .25, 0, 0],
    "bools":                 [1, .5, .5, .875, .875, 1, 1, 13, 13, L13, L13, .875, .875, 1, 1],
    "strings":               [1, 0, 0, .25, .25, 0, 0, 13, 13, L13, L13, .25, .25, 0, 0],
    "names":                 [1, 0, 0, .125, .125, 0, 0, 13, 13, L13, L13, .125, .125, 0, 0],
    "json_object":           [1, 0, 0, .125, .125, 0, 0, 13, 13, L13, L13, .125, .125, 0, 0],
    "huge_think":            [1, .5, .5, 1, 1, 1, 1, 5000, 256, 1, 0, 501, 1.25, 1, 1],
    "empty":                 [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    "whitespace":            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    "empty_blocks":          [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    "non_ascii":             [1, 0, 0, .125, .125, 0, 0, 7, 7, 7 / 128, 7 / 128, .125, .125, 0, 0],
    "non_ascii_ok":          [1, .5, .5, 1, 1, 1, 1, 6, 6, 6 / 128, 6 / 128, 1.6, 1 + .25 * 6 / 128, 1, 1],
}


def test_every_probe_has_documented_values():
    assert {p.name for p in probes(T)} == set(EXPECTED)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_probe_values(name):
    mix = build_mix(",".join(NAMES), RewardContext())
    probe = next(p for p in probes(T) if p.name == name)
    scores = mix.score([probe.completion], labels=[T])
    got = [scores[n][0] for n in NAMES]
    assert got == pytest.approx(EXPECTED[name]), dict(zip(NAMES, got))


def test_balanced_on_probes():
    prev = (0.6, 0.4, 0.6, 0.4, 0.05)
    mix = build_mix("balanced", RewardContext(prevalence=prev))
    ps = {p.name: p.completion for p in probes(T)}
    s = dict(zip(ps, mix.score(list(ps.values()), labels=[T] * len(ps))["balanced"]))
    w_pos, w_neg = 1 / 0.6, [1 / 0.6, 1 / 0.6, 1 / 0.95]
    den = 2 * w_pos + sum(w_neg)
    assert s["perfect"] == 1.0
    assert s["all_zeros"] == pytest.approx(sum(w_neg) / den)
    assert s["all_ones"] == pytest.approx(2 * w_pos / den)
    assert s["wrong_valid"] == pytest.approx((w_neg[0] + w_neg[1]) / den)
    assert s["six_elements"] == s["empty"] == s["floats"] == 0.0
    assert s["bare_list"] == s["no_think"] == s["unclosed_label"] == 0.0  # the right list without the format


def test_wrong_vector_is_valid_and_wrong():
    for t in ([1, 0, 1, 0, 0], [0, 0, 0, 0, 1], [1], [0, 1, 0]):
        w = wrong_vector(t)
        assert len(w) == len(t) and w != list(t)
        assert core.parse_onehot(str(w), len(t)) is not None


def test_every_registered_reward_is_covered_by_a_probe_test():
    covered = set(NAMES) | {"balanced", "group_f1"}
    assert covered == set(REWARDS)
