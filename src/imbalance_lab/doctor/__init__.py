"""The doctor: why a model predicts one class.

Data flows one way. Below the run: `findings` (the Finding type), `rules` (the config, the data,
the trained run), `fit_rules` (the inputs' scales, regularisation for the data's size, an
optimiser that stalls) and `probe` (the signal probe); `run.py` uses the rules for every run.
Above the run: `command` (`imbalance-lab-doctor`) and `why` (its --why experiment, which trains
through `run.execute`). Nothing below imports anything above; this package's __init__ imports
nothing, so that the run importing the rules never loads the command.
"""
