"""mT5 / T5 checkpoints: every request kind as text to text (``adapter``), in the format the checkpoint was fine-tuned on (``templates``)."""
