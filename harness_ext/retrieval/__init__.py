"""Retrieval machinery for BUCC 2018 and Tatoeba.

* :mod:`.search`: exact inner-product k-NN (faiss CPU / faiss GPU / torch reference);
* :mod:`.mining`: LASER/XTREME margin mining, dev-tuned threshold, Tatoeba top-1;
* :mod:`.cache`: on-disk embedding cache so re-runs and layer sweeps do not re-embed.

Everything here works on numpy arrays; nothing knows about lm-eval or checkpoints,
which keeps it testable on synthetic vectors with known answers.
"""
