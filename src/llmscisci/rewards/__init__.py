"""Programmatic rewards for GRPO on the multi-label task (pure functions, TRL adapters, a registry).

    from llmscisci.rewards import build_mix, RewardContext
    mix = build_mix("format:1,label:1,stepwise:1")      # the seed's mix
    GRPOTrainer(..., reward_funcs=mix.funcs, args=GRPOConfig(reward_weights=mix.weights, ...))

See `core` for every reward's definition and bounds, `probes` for adversarial completions; `reward`
(a decorator) registers your own by name.
"""

from llmscisci.rewards.core import (
    FORMAT_PATTERN,
    format_matches,
    is_valid_onehot,
    label_text,
    parse_onehot,
    parse_strict,
    prevalence,
    think_text,
)
from llmscisci.rewards.registry import (
    REWARDS,
    SEED_MIX,
    RewardContext,
    RewardMix,
    RewardRow,
    build_mix,
    parse_mix,
    register_reward,
    reward,
)
from llmscisci.rewards.trl import TrlReward, completion_text, truth_of

__all__ = [
    "FORMAT_PATTERN", "REWARDS", "SEED_MIX", "RewardContext", "RewardMix", "RewardRow", "TrlReward", "build_mix",
    "completion_text", "format_matches", "is_valid_onehot", "label_text", "parse_mix", "parse_onehot",
    "parse_strict", "prevalence", "register_reward", "reward", "think_text", "truth_of",
]
