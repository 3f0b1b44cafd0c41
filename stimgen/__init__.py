"""stimgen: the pixels of a study -- natural exemplars and feature visualizations.

Importing this package is light; torch is imported only by the modules that render.
"""
