"""crowdkit: run human psychophysics studies of CNN explanations on Mechanical Turk.

Importing this package stays light: no torch, pandas, boto3 or matplotlib. Heavy modules are
imported inside the functions that need them, so `crowdkit --help` starts fast.
"""

__version__ = "0.1.0"
