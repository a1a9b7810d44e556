"""DPO's loss in a few lines, from the log-probabilities of whole answers (chapter 9).

Direct preference optimisation (Rafailov et al., 2023) trains a policy π on pairs of a
chosen answer y_c and a rejected one y_r to a prompt x, against a frozen reference
π_ref (the SFT model). The implicit reward of an answer is how much more likely the
policy makes it than the reference did, scaled by β:

    r(x, y) = β · (log π(y | x) − log π_ref(y | x))

and the loss asks the chosen answer's reward to beat the rejected one's:

    L = −log σ( r(x, y_c) − r(x, y_r) )

A sequence's log-probability is the sum of its answer tokens' log-probabilities
(the prompt's tokens are given, not chosen): :func:`sequence_logps`. TRL's
``DPOTrainer`` computes the same loss (``loss_type="sigmoid"``); chapter 9 checks the
two against each other on one batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sequence_logps(model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                   completion_mask: torch.Tensor) -> torch.Tensor:
    """The log-probability of each sequence's answer tokens under ``model``.

    Args:
        input_ids: (B, T) prompt and answer tokens, padded.
        attention_mask: (B, T) 1 for real tokens.
        completion_mask: (B, T) 1 for the answer's tokens (the end-of-turn token included).

    Returns:
        (B,) the sum over answer tokens of log p(token | the tokens before it).
    """
    logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
    logprobs = torch.log_softmax(logits[:, :-1].float(), dim=-1)  # (B, T-1, V): predicts token t+1
    token_logps = logprobs.gather(-1, input_ids[:, 1:, None]).squeeze(-1)  # (B, T-1)
    return (token_logps * completion_mask[:, 1:]).sum(dim=-1)  # (B,)


def dpo_margins(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor,
                ref_chosen: torch.Tensor, ref_rejected: torch.Tensor, beta: float) -> torch.Tensor:
    """Reward margins r(x, y_c) − r(x, y_r), each (N,): positive where the pair is ranked right."""
    chosen_rewards = beta * (policy_chosen - ref_chosen)  # (N,)
    rejected_rewards = beta * (policy_rejected - ref_rejected)  # (N,)
    return chosen_rewards - rejected_rewards


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor,
             ref_chosen: torch.Tensor, ref_rejected: torch.Tensor, beta: float) -> torch.Tensor:
    """DPO's sigmoid loss, the mean over pairs of −log σ(reward margin).

    Example:
        >>> zero = torch.zeros(3)
        >>> round(dpo_loss(zero, zero, zero, zero, beta=0.1).item(), 4)  # log 2: no preference yet
        0.6931
    """
    margins = dpo_margins(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta)
    return -F.logsigmoid(margins).mean()
