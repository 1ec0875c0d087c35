"""Pure metric functions with the official XTREME semantics.

Scale: every function returns scores on the official 0-100 scale (as XTREME's
evaluate.py prints them), so per-language numbers, group means and the XTREME
score need no conversions.
"""
