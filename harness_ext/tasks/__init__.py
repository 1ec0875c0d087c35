"""lm-eval task classes for XTREME, one module per request kind.

The generated YAML names them with ``class: !function harness_ext.tasks.<kind>.<Class>``.
"""
