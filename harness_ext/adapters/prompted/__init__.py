"""Any lm-eval model (decoder LLMs, API models) answers XTREME requests through prompts (``prompts``) and its own loglikelihood / generate_until (``adapter``)."""
