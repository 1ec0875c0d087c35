"""Reports: XTREME's scoring rules applied to prediction folders and results.

``official`` scores a folder in the official submission layout
(``<task>/test-<lang>.{tsv,json}``) the way XTREME's evaluate.py does.
Import-light on purpose: submodules are imported by whoever needs them.
"""
