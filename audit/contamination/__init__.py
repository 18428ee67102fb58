"""Train/test contamination: normalize → compiled n-gram hashing and MinHash → index scan → exact verify.

Modules: ``kernels`` (numba), ``normalize`` (text rules and the reference tokenizer), ``corpus``
(streaming readers), ``scan`` (benchmark index and corpus scan). The probe is
``audit.probes.contamination``; ``audit contamination`` runs it without a model.
"""
