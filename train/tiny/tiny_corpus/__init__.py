"""The parts of ``corpus.py`` (the generator of the tiny corpus), one subsystem per module."""
