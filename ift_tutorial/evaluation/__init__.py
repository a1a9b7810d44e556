"""Evaluating an instruction-tuned model, before and after tuning: one module per suite.

* :mod:`~ift_tutorial.evaluation.exact_match`: greedy answers to held-out verifiable
  questions, and the completion probes of a base model;
* :mod:`~ift_tutorial.evaluation.ifeval`: verifiable instruction following (IFEval's
  format), in English and Chinese, offline;
* :mod:`~ift_tutorial.evaluation.gsm8k`: grade-school maths (GSM8K's format), zero-shot;
* :mod:`~ift_tutorial.evaluation.perplexity`: answer-token perplexity on held-out
  conversations;
* :mod:`~ift_tutorial.evaluation.runner`: the whole evaluation of a config
  (``evaluate_model``, ``evaluate_config``, ``ift-tutorial evaluate``);
* :mod:`~ift_tutorial.evaluation.statistics`: each score's 95 % interval and the paired
  test of each before/after change, from the suites' per-item ``outcomes``;
* :mod:`~ift_tutorial.evaluation.report`: the book's before/after table, the maker's
  Instruct model as a reference point and the lm-evaluation-harness command;
* :mod:`~ift_tutorial.evaluation.merges`: the merged model measured against the 4-bit
  model it came from (merged into W, or into NF4(W)).

Every answer comes from :func:`ift_tutorial.inference.generation.generate_responses`
(evaluation imports inference, never the reverse). Import a name from the module that
defines it; this file imports nothing.
"""
