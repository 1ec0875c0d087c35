"""Fine-tuned encoders answer with their task head (classify, tag, span) or their hidden states (embed)."""
